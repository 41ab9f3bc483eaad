/** A Runtime is the set of adapters one command works against. */
import type {Bus, Clock, Leaderboards, Store} from './ports.js'
import type {RuntimeMetrics} from './metrics.js'

export interface RuntimePartInfo {
  /** "redis" | "sqlite" | "mongodb" | "memory" */
  kind: string
  /** Where it runs: a URL with the password masked ("sqlite:/abs/store.db" for a store file), or "in-process". */
  location: string
  /** "embedded" (tektree's: started by `up` or for a command, or the data dir's store file), "external" (given by URL) or "in-process". */
  origin: 'embedded' | 'external' | 'in-process'
  version?: string
  pid?: number
  dataDir?: string
  /**
   * True when no `tektree up` nor any other command was using this embedded server: it was started
   * (or adopted) for this command alone, keeps its data in the data dir and stops when the command
   * ends. So no `tektree services` can be consuming from it meanwhile.
   */
  forThisCommand?: boolean
  /** Set when a real server could not be had: what happened and how to get the real one. */
  fallbackReason?: string
}

export interface RuntimeDescription {
  bus: RuntimePartInfo
  store: RuntimePartInfo
  leaderboards: RuntimePartInfo
}

/**
 * Where a runtime's parts can be reached from another thread or process: UNMASKED URLs (they may
 * carry a password; never print them) that `openRuntime({busUrl, storeUrl, ephemeral: true})` opens to
 * attach to the very same bus and store, starting and stopping no server. null where a part is
 * in-process (it cannot be shared).
 */
export interface RuntimeEndpoints {
  readonly bus: string | null
  readonly store: string | null
}

export interface Runtime {
  readonly bus: Bus
  readonly store: Store
  readonly leaderboards: Leaderboards
  readonly clock: Clock
  readonly metrics: RuntimeMetrics
  /** See RuntimeEndpoints: e.g. {bus: "redis://127.0.0.1:6390", store: "sqlite:/abs/.tektree/store.db"}. */
  readonly endpoints: RuntimeEndpoints
  describe(): RuntimeDescription
  /** Closes only what this runtime opened. */
  close(): Promise<void>
}
