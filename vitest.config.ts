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
