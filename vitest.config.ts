import {availableParallelism} from 'node:os'
import {defineConfig} from 'vitest/config'

// Two tiers (by file name): *.test.ts needs nothing running; *.int.test.ts talks to real servers
// (redis-server, a MongoDB wire-protocol server, a Kafka broker) started once in globalSetup and shared via inject().
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', 'node_modules/**'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          // Vitest's default (one fewer than the cores) is one file at a time on the 2-core CI
          // machines: two take the tier from ~330 s to ~200 s there, and it still passes.
          maxWorkers: Math.max(2, availableParallelism() - 1),
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Fault tests stop and restart servers: run files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
})
