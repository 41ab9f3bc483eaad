import {leaderboardsContract} from '../contracts/leaderboards.contract.js'
import {MemoryLeaderboards} from '../../src/runtime/memory/memory-leaderboards.js'

leaderboardsContract('MemoryLeaderboards', async () => ({leaderboards: new MemoryLeaderboards()}))
