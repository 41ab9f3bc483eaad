import {storeContract} from '../contracts/store.contract.js'
import {MemoryStore} from '../../src/adapters/memory/memory-store.js'

storeContract('MemoryStore', async () => ({store: new MemoryStore()}))
