/** A Runtime is the set of adapters one command works against. */
import type {Bus, Clock, Leaderboards, Store} from './ports.js'
import type {RuntimeMetrics} from './metrics.js'

export interface RuntimePartInfo {
  /** "redis" | "mongodb" | "memory" | "kafka" */
  kind: string
  /** Where it runs: a URL with the password masked, or "in-process". */
  location: string
  /** "embedded" (started by tektree), "external" (given by URL) or "in-process". */
  origin: 'embedded' | 'external' | 'in-process'
  version?: string
  pid?: number
  dataDir?: string
  /** Set when a real server could not be had: what happened and how to get the real one. */
  fallbackReason?: string
}

export interface RuntimeDescription {
  bus: RuntimePartInfo
  store: RuntimePartInfo
  leaderboards: RuntimePartInfo
}

export interface Runtime {
  readonly bus: Bus
  readonly store: Store
  readonly leaderboards: Leaderboards
  readonly clock: Clock
  readonly metrics: RuntimeMetrics
  describe(): RuntimeDescription
  /** Closes only what this runtime opened. */
  close(): Promise<void>
}
