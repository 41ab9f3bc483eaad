/**
 * What every TekTree service module shares: the options its factory takes and the shape it returns
 * (the consumer runner's ServiceDefinition). Services keep their state in projections and
 * leaderboards (the ports), never in process memory, so several processes can share the work.
 */
import type {Catalog} from '../catalog/types.js'
import type {ServiceDefinition} from '../engine/consumer.js'
import type {Clock} from '../core/ports.js'

export type {ServiceDefinition}

/** Where pushes go: the WebSocket endpoint of `tektree services --ws-port`, a test, or nowhere. */
export interface RealtimeSink {
  push(channel: string, message: Record<string, unknown>): void
}

export interface ServiceOptions {
  catalog: Catalog
  clock: Clock
  /** Folder of the rules files (default fixtures/catalog/rules). */
  rulesDir?: string
  /** Folder the email service writes .eml files to; null/absent = record the mail, write no file. */
  emailDir?: string | null
  /** Realtime pushes; absent = counted in projections only. */
  realtime?: RealtimeSink
}

/** The nine consumer groups, in the order they are listed to users. */
export const SERVICE_NAMES = ['gamification', 'payment', 'notification', 'search', 'cache', 'analytics', 'realtime', 'user', 'email'] as const
export type ServiceName = (typeof SERVICE_NAMES)[number]

/** The event types (canonical names) whose catalog entry lists `service` as a consumer. */
export function consumedTypes(catalog: Catalog, service: string): string[] {
  return catalog.events.filter((e) => e.consumers.some((c) => c.service === service)).map((e) => e.type)
}
