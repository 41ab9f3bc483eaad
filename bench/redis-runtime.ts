/**
 * Runtimes on a Redis bus for the benchmarks: with the in-process store (the bus's numbers, not a
 * store's; one thread), or with a fresh SQLite store file (the embedded default: shareable, so the
 * services can run in worker threads).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {SystemClock} from '../src/core/clock.js'
import {createMemoryLeaderboards, createMemoryStore} from '../src/adapters/memory/index.js'
import {createMetrics} from '../src/engine/metrics/index.js'
import {openRuntime} from '../src/adapters/open.js'
import {createRedisBus} from '../src/adapters/redis/bus.js'
import type {Runtime} from '../src/core/runtime.js'

export async function redisBusWithMemoryStore(url: string): Promise<Runtime> {
  const bus = await createRedisBus({url})
  const store = createMemoryStore()
  const leaderboards = createMemoryLeaderboards()
  const part = (kind: string, location: string) => ({kind, location, origin: 'external' as const})
  return {
    bus, store, leaderboards, clock: new SystemClock(), metrics: createMetrics(),
    endpoints: {bus: url, store: null}, // the store is in-process: not shareable
    describe: () => ({bus: part('redis', url), store: part('memory', 'in-process'), leaderboards: part('memory', 'in-process')}),
    close: async () => {
      await bus.close()
      await store.close()
      await leaderboards.close()
    },
  }
}

/** The bus at `url` (Redis or Kafka) and a SQLite store in a fresh temp dir, removed on close. */
export async function busWithSqliteStore(url: string): Promise<Runtime> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tektree-bench-sqlite-'))
  const runtime = await openRuntime({busUrl: url, storeUrl: `sqlite:${path.join(dir, 'store.db')}`, ephemeral: true})
  return {
    ...runtime,
    describe: () => runtime.describe(),
    close: async () => {
      await runtime.close()
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
