/**
 * The Leaderboards contract against the store-backed leaderboards (the Kafka bus has no sorted
 * sets), on a SQLite store and on the in-process store.
 */
import {leaderboardsContract} from '../contracts/leaderboards.contract.js'
import {createStoreLeaderboards} from '../../src/adapters/store-leaderboards/index.js'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'
import {createMemoryStore} from '../../src/adapters/memory/index.js'

leaderboardsContract('StoreLeaderboards (SQLite)', async () => {
  const store = await createSqliteStore({path: ':memory:'})
  return {leaderboards: createStoreLeaderboards(store.projections), cleanup: () => store.close()}
})

leaderboardsContract('StoreLeaderboards (in-process store)', async () => {
  const store = createMemoryStore()
  return {leaderboards: createStoreLeaderboards(store.projections), cleanup: () => store.close()}
})
