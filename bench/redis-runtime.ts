/** The Redis bus with the in-process store: the embedded default without a mongod, for benchmarks. */
import {SystemClock} from '../src/runtime/clock.js'
import {createMemoryLeaderboards, createMemoryStore} from '../src/runtime/memory/index.js'
import {createMetrics} from '../src/runtime/metrics/index.js'
import {createRedisBus} from '../src/runtime/redis/bus.js'
import type {Runtime} from '../src/runtime/runtime.js'

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
