/**
 * A consumer group's own topic. The groups share the domain topics, so an event put back there
 * would reach every group again; what goes to `tektree.direct.<group>` reaches that group only:
 * a DLQ entry retried, an event replayed. Headers say which, so the runner can tell.
 */
import type {Catalog} from '../catalog/types.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {OutgoingMessage, TopicSpec} from '../core/ports.js'
import {toOutgoingMessage} from './relay.js'

export const DIRECT_PARTITIONS = 8

/** The DLQ entry this delivery retries: the group removes it once it has acked the event. */
export const REDRIVE_HEADER = 'x-tektree-redrive'
/**
 * Set on a replayed event: handle it even though the group's records say it was handled. Its value
 * says how: REPLAY_AGAIN (an event the group completed applies none of its guarded writes again,
 * since they committed with its ledger record) or REPLAY_REBUILD (the group's projections were
 * dropped: everything applies again).
 */
export const REPLAY_HEADER = 'x-tektree-replay'
export const REPLAY_AGAIN = '1'
export const REPLAY_REBUILD = 'rebuild'
/** Attempts spent before (a retried DLQ entry's), so a failure again counts them all. */
export const PRIOR_ATTEMPTS_HEADER = 'x-tektree-prior-attempts'
export const FIRST_FAILURE_HEADER = 'x-tektree-first-failure-at'

export const directTopic = (group: string): string => `tektree.direct.${group}`

export const directTopicSpec = (group: string): TopicSpec => ({name: directTopic(group), partitions: DIRECT_PARTITIONS})

/** An event for `group` alone, keyed as on its domain topic (so one aggregate keeps its order). */
export function directMessage(catalog: Catalog, group: string, event: EventEnvelope | {raw: string; key: string; type: string | null}, headers: Record<string, string>): OutgoingMessage {
  if ('raw' in event) {
    return {topic: directTopic(group), key: event.key, value: event.raw, headers: {...(event.type ? {event_type: event.type} : {}), published_at: String(Date.now()), ...headers}}
  }
  const message = toOutgoingMessage(catalog, event, Date.now())
  return {...message, topic: directTopic(group), headers: {...message.headers, ...headers}}
}

/** True when the delivery asks to be handled whatever the group's records say (a retry, a replay). */
export function isForced(headers: Readonly<Record<string, string>>): boolean {
  return headers[REDRIVE_HEADER] !== undefined || headers[REPLAY_HEADER] !== undefined
}

/** A replay onto the group's live state (not a rebuild): what the group completed is not applied again. */
export function isReplayAgain(headers: Readonly<Record<string, string>>): boolean {
  const value = headers[REPLAY_HEADER]
  return value !== undefined && value !== REPLAY_REBUILD
}
