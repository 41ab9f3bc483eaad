import {busContract} from '../contracts/bus.contract.js'
import {MemoryBus} from '../../src/adapters/memory/memory-bus.js'

// A short session timeout so the crash-takeover test does not wait 30 s.
busContract('MemoryBus', async () => ({bus: new MemoryBus({sessionTimeoutMs: 1_000})}), {visibilityTimeoutMs: 400})
