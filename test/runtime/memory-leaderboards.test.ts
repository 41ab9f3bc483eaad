import {leaderboardsContract} from '../contracts/leaderboards.contract.js'
import {MemoryLeaderboards} from '../../src/adapters/memory/memory-leaderboards.js'

leaderboardsContract('MemoryLeaderboards', async () => ({leaderboards: new MemoryLeaderboards()}))
