/** The in-process adapters: no server, same contracts as Redis / MongoDB (test/contracts/). */
import {MemoryBus, type MemoryBusOptions} from './memory-bus.js'
import {MemoryLeaderboards} from './memory-leaderboards.js'
import {MemoryStore, type MemoryStoreOptions} from './memory-store.js'

export {MemoryBus, MemoryLeaderboards, MemoryStore}
export type {MemoryBusOptions, MemoryStoreOptions}

/** One instance can be shared by every subscriber of the process. */
export function createMemoryBus(options: MemoryBusOptions = {}): MemoryBus {
  return new MemoryBus(options)
}

export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options)
}

export function createMemoryLeaderboards(): MemoryLeaderboards {
  return new MemoryLeaderboards()
}
