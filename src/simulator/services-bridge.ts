/**
 * The one place the simulator meets the TekTree services (src/services/): which services exist,
 * and the projection oracle. When the services module is not there (a build without it), the
 * simulator runs with no services and verify reports that it cannot run.
 */
import type {EventEnvelope} from '../core/envelope.js'
import type {Leaderboards, Store, Clock} from '../core/ports.js'
import type {Catalog} from '../catalog/types.js'

/** Structurally the consumer runner's ServiceDefinition. */
export interface SimService {
  name: string
  consumes: string[]
  handle(event: EventEnvelope, ctx: any): Promise<unknown> | unknown
}

export interface VerifyResult {
  checked: number
  differences: Array<{projection: string; id: string; field: string; expected: unknown; actual: unknown}>
  /** Events read from the archive, when one was given. */
  archived?: number
}

interface ServicesModule {
  createServices(options: {only?: string[]; clock: Clock; catalog?: Catalog}): SimService[] | Promise<SimService[]>
}

interface VerifyOptions {
  store: Store
  leaderboards: Leaderboards
  catalog: Catalog
  /** Events archived out of the store: their effects stay in the projections. */
  archived?: AsyncIterable<EventEnvelope>
}

interface VerifyModule {
  verifyProjections(options: VerifyOptions): Promise<VerifyResult>
}

// Non-literal specifiers: the services are written separately and may be absent from a build.
const SERVICES = '../services/index.js'
const VERIFY = '../services/verify.js'

async function optionalImport<T>(specifier: string): Promise<T | null> {
  try {
    return (await import(specifier)) as T
  } catch (error) {
    const code = (error as {code?: string}).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      // Only "this very module is missing" means no services; a missing dependency inside it is a bug.
      const message = String((error as Error).message)
      if (message.includes('/services/index') || message.includes('/services/verify')) return null
    }
    throw error
  }
}

export async function servicesAvailable(): Promise<boolean> {
  return (await optionalImport<ServicesModule>(SERVICES)) !== null
}

/** The services to run: all, or `only` (unknown names are a user error upstream). */
export async function loadServices(options: {only?: string[]; clock: Clock; catalog: Catalog}): Promise<SimService[]> {
  const mod = await optionalImport<ServicesModule>(SERVICES)
  if (!mod) return []
  return await mod.createServices({only: options.only, clock: options.clock, catalog: options.catalog})
}

/** Null when the oracle is not available in this build. */
export async function verifyProjections(options: VerifyOptions): Promise<VerifyResult | null> {
  const mod = await optionalImport<VerifyModule>(VERIFY)
  if (!mod) return null
  return await mod.verifyProjections(options)
}
