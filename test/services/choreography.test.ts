/** The three choreographies of seed 000 on the in-process engine; the oracle agrees with the result. */
import {afterEach, beforeAll, describe} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import {openRuntime} from '../../src/adapters/open.js'
import type {Runtime} from '../../src/core/runtime.js'
import {choreographyTests} from './choreography-cases.js'

let catalog: Catalog
const runtimes: Runtime[] = []
beforeAll(async () => {
  catalog = await loadCatalog()
})
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})
async function inProcess(): Promise<Runtime> {
  const runtime = await openRuntime({inProcess: true, log: () => undefined})
  runtimes.push(runtime)
  return runtime
}

describe('choreographies on the in-process engine', () => {
  choreographyTests(inProcess, () => catalog)
})
