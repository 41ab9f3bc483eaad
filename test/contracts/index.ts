/** The contract suites every adapter runs unchanged (see each file's header for the wiring). */
export {busContract, type BusContractOptions, type BusFactory} from './bus.contract.js'
export {storeContract, type StoreFactory} from './store.contract.js'
export {leaderboardsContract, type LeaderboardsFactory} from './leaderboards.contract.js'
export {until, uniqueName, consumeUntil, makeEvent, makeDlqRecord} from './helpers.js'
