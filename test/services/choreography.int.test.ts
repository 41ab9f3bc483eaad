/**
 * The three choreographies on real servers: the Redis Streams bus and leaderboards on redis-server,
 * the store on the MongoDB wire-protocol server of the integration tier. Each test has its own key
 * prefix and database, so runs never see each other's groups or projections.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, beforeAll, describe, inject} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import {SystemClock} from '../../src/core/clock.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {createMongoStore} from '../../src/adapters/mongo/index.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {createRedisLeaderboards} from '../../src/adapters/redis/leaderboards.js'
import type {Runtime} from '../../src/core/runtime.js'
import {choreographyTests} from './choreography-cases.js'

const redisUrl = inject('redisUrl')
const mongoUrl = inject('mongoUrl')
const missing = [!redisUrl && `redis: ${inject('redisUnavailable')}`, !mongoUrl && `mongo: ${inject('mongoUnavailable')}`].filter(Boolean).join('; ')

let catalog: Catalog
const runtimes: Runtime[] = []
beforeAll(async () => {
  catalog = await loadCatalog()
})
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

async function servers(): Promise<Runtime> {
  const prefix = `t${randomUUID().slice(0, 8)}`
  const bus = await createRedisBus({url: redisUrl!, prefix})
  const leaderboards = await createRedisLeaderboards({url: redisUrl!, prefix})
  const store = await createMongoStore({url: mongoUrl!, database: `tektree_${prefix}`})
  const runtime: Runtime = {
    bus,
    store,
    leaderboards,
    clock: new SystemClock(),
    metrics: createMetrics(),
    endpoints: {bus: null, store: null}, // prefixed keys and a test database: not for workers
    describe: () => ({
      bus: {kind: 'redis', location: redisUrl!, origin: 'external'},
      store: {kind: 'mongodb', location: mongoUrl!, origin: 'external'},
      leaderboards: {kind: 'redis', location: redisUrl!, origin: 'external'},
    }),
    close: async () => {
      await bus.close()
      await leaderboards.close()
      await store.close()
    },
  }
  runtimes.push(runtime)
  return runtime
}

describe.skipIf(missing !== '')(`choreographies on Redis + MongoDB ${missing ? `(skipped: ${missing})` : `(${inject('mongoServer')})`}`, () => {
  choreographyTests(servers, () => catalog)
})
