/**
 * The publisher: the one way events enter TekTree from tektree (simulator, services' derived events).
 * It drafts envelopes from the catalog (version, producing service, aggregate id) and appends valid
 * ones to the event store; the store writes the outbox entry with the event (seed 002's outbox, no
 * dual write), and the outbox relay moves them to the bus. Nothing here talks to the bus.
 */
import type {Catalog, CatalogEvent} from '../catalog/types.js'
import type {EventValidator} from '../catalog/validate.js'
import {errorContract, sameEnvelope, type ErrorContract, type EventEnvelope, type EventMetadata} from '../core/envelope.js'
import {RuntimeError} from '../core/errors.js'
import {newEventId, newTraceId} from '../core/event-id.js'
import type {RuntimeMetrics} from '../core/metrics.js'
import type {Clock, Store} from '../core/ports.js'

export interface DraftOptions {
  /** source_service; default: the catalog's producer of the type (else the producer id). */
  source?: string
  /** Default: the new event's own id (it starts a journey). */
  correlationId?: string
  causationId?: string | null
  /** Default: a fresh 32-hex trace id. */
  traceId?: string
  /** ISO string or ms; default: now (publisher clock). */
  timestamp?: string | number
  metadata?: EventMetadata
  /** Default: a new time-ordered id (core/event-id.ts). Deterministic ids (derived events, seeded runs) come in here. */
  eventId?: string
}

export interface PublishOptions {
  /**
   * Skip schema validation: for callers that built the events from the catalog themselves (the
   * simulator's hot path). Untrusted input must never set it.
   */
  trusted?: boolean
}

export interface PublishRejection {
  /** Position in the array given to publish(). */
  index: number
  event_id?: string
  event_type?: string
  error: ErrorContract
}

export interface PublishResult {
  /** Newly appended (and so headed for the bus). */
  accepted: number
  /** event_ids the store already had with the same content (idempotent append: not published again). */
  duplicates: string[]
  /**
   * Events whose event_id the store already had with OTHER content (error code EVENT_ID_CONFLICT):
   * not appended; the producer reused an id for another event, which a plain duplicate count would hide.
   */
  conflicts: PublishRejection[]
  rejected: PublishRejection[]
}

export interface Publisher {
  readonly producerId: string
  draft(type: string, payload: Record<string, unknown>, options?: DraftOptions): EventEnvelope
  publish(events: readonly EventEnvelope[], options?: PublishOptions): Promise<PublishResult>
  /**
   * What publish() does before it appends (validation, aggregate metadata), for a caller that
   * appends in a unit of work of its own (the consumer runner's Store.commit).
   */
  prepare(events: readonly EventEnvelope[], options?: PublishOptions): {valid: EventEnvelope[]; rejected: PublishRejection[]}
  /** Wakes the relay after such a caller appended events. */
  kick(): void
}

export interface PublisherOptions {
  store: Store
  catalog: Catalog
  validator: EventValidator
  /** Woken after each append so events leave without waiting for the relay's poll. */
  relay?: {kick(): void}
  /** producer_id of every drafted envelope (the process / instance). */
  producerId: string
  /** Accepted for symmetry with the relay; nothing is recorded here ("published" means the bus took it, which the relay records). */
  metrics?: RuntimeMetrics
  /** For default timestamps (default: wall clock). */
  clock?: Clock
}

/** The aggregate id a payload carries, per the catalog's partition key. */
export function aggregateIdOf(definition: CatalogEvent | undefined, payload: Record<string, unknown>): string | undefined {
  const field = definition?.partitionKey
  if (!field) return undefined
  const value = payload?.[field]
  if (typeof value === 'string' && value !== '') return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return undefined
}

export function createPublisher(options: PublisherOptions): Publisher {
  const {store, catalog, validator, relay, producerId} = options
  const now = options.clock ? () => options.clock!.now() : Date.now

  const draft = (type: string, payload: Record<string, unknown>, draftOptions: DraftOptions = {}): EventEnvelope => {
    const definition = catalog.get(type)
    if (!definition) {
      throw new RuntimeError(`Cannot draft "${type}": it is not an event type of ${catalog.title}`, {
        code: 'UNKNOWN_EVENT_TYPE',
        details: {event_type: type},
      })
    }
    const eventId = draftOptions.eventId ?? newEventId()
    const metadata: EventMetadata = {...draftOptions.metadata}
    const aggregateId = aggregateIdOf(definition, payload)
    if (metadata.aggregate_id === undefined && aggregateId !== undefined) metadata.aggregate_id = aggregateId
    if (metadata.aggregate_type === undefined && metadata.aggregate_id !== undefined) metadata.aggregate_type = definition.domain
    const ts = draftOptions.timestamp
    return {
      event_id: eventId,
      event_type: definition.type,
      event_version: definition.version,
      timestamp: typeof ts === 'string' ? ts : new Date(ts ?? now()).toISOString(),
      source_service: draftOptions.source ?? definition.producer ?? producerId,
      payload,
      trace_id: draftOptions.traceId ?? newTraceId(),
      correlation_id: draftOptions.correlationId ?? eventId,
      causation_id: draftOptions.causationId ?? null,
      producer_id: producerId,
      metadata,
    }
  }

  const prepare = (events: readonly EventEnvelope[], publishOptions: PublishOptions = {}) => {
    const rejected: PublishRejection[] = []
    const valid: EventEnvelope[] = []
    // One pass, no await: validation and the metadata fill are synchronous; one append for the batch.
    for (let index = 0; index < events.length; index++) {
      let event = events[index]
      let definition: CatalogEvent | undefined
      if (publishOptions.trusted) {
        definition = catalog.get(event?.event_type)
        if (!definition) {
          rejected.push({
            index,
            event_id: event?.event_id,
            event_type: event?.event_type,
            error: errorContract('UNKNOWN_EVENT_TYPE', `"${event?.event_type}" is not an event type of ${catalog.title}`, {
              path: '$.event_type',
              event_type: event?.event_type,
            }),
          })
          continue
        }
      } else {
        const result = validator.validate(event)
        if (!result.ok) {
          const raw = event as Partial<EventEnvelope> | null
          rejected.push({
            index,
            event_id: typeof raw?.event_id === 'string' ? raw.event_id : undefined,
            event_type: typeof raw?.event_type === 'string' ? raw.event_type : undefined,
            error: result.error,
          })
          continue
        }
        event = result.event
        definition = result.definition
      }
      if (event.metadata?.aggregate_id === undefined) {
        const aggregateId = aggregateIdOf(definition, event.payload)
        if (aggregateId !== undefined) {
          event = {...event, metadata: {...event.metadata, aggregate_id: aggregateId, aggregate_type: event.metadata?.aggregate_type ?? definition.domain}}
        }
      }
      valid.push(event)
    }
    return {valid, rejected}
  }

  const publish = async (events: readonly EventEnvelope[], publishOptions: PublishOptions = {}): Promise<PublishResult> => {
    const {valid, rejected} = prepare(events, publishOptions)
    if (valid.length === 0) return {accepted: 0, duplicates: [], conflicts: [], rejected}
    const result = await store.events.append(valid)
    if (result.inserted > 0) relay?.kick()
    const conflicts = result.conflicts.length > 0 ? await conflictsOf(events, new Set(result.conflicts), publishOptions) : []
    return {accepted: result.inserted, duplicates: result.duplicates, conflicts, rejected}
  }

  /**
   * Which of the given events differ from what the store holds under their event_id, by index (an
   * id used twice in one batch: the first was stored, only the one that differs is the conflict).
   */
  const conflictsOf = async (events: readonly EventEnvelope[], ids: ReadonlySet<string>, publishOptions: PublishOptions): Promise<PublishRejection[]> => {
    const stored = new Map<string, EventEnvelope | null>()
    for (const id of ids) stored.set(id, await store.events.get(id))
    const out: PublishRejection[] = []
    const prepared = new Map<number, EventEnvelope>()
    for (const [i, event] of events.entries()) if (ids.has(event?.event_id)) prepared.set(i, event)
    for (const [index, event] of prepared) {
      const held = stored.get(event.event_id)
      // Compared as prepare() left it (aggregate metadata filled in), as the store compared it.
      const candidate = prepare([event], publishOptions).valid[0] ?? event
      if (held && (sameEnvelope(held, candidate) || sameEnvelope(held, event))) continue
      out.push({
        index,
        event_id: event.event_id,
        event_type: event.event_type,
        error: errorContract(
          'EVENT_ID_CONFLICT',
          `event_id ${event.event_id} is already in the store with other content: not published (an event_id names one event; give this one a new id)`,
          {event_id: event.event_id, event_type: event.event_type},
        ),
      })
    }
    return out
  }

  return {producerId, draft, publish, prepare, kick: () => relay?.kick()}
}
