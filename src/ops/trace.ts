/**
 * One event end to end: the causal tree of its journey (every event of its correlation id, each
 * under the event that caused it), and for each event when it was appended, which groups handled
 * it, when, after how many attempts, and what became of it (handled, dead-lettered, not yet).
 * From the store alone (the events, the durable handled records, the DLQ): any bus.
 */
import type {EventEnvelope} from '../core/envelope.js'
import type {Store} from '../core/ports.js'

export type Outcome = 'handled' | 'dead_lettered' | 'pending'

export interface TraceHop {
  group: string
  outcome: Outcome
  /** When it was handled or dead-lettered. */
  at: string | null
  attempts: number | null
  /** From the event's timestamp to `at`. */
  latency_ms: number | null
  error?: {code: string; message: string}
}

export interface TraceNode {
  event_id: string
  event_type: string
  timestamp: string
  causation_id: string | null
  /** The event asked about. */
  asked: boolean
  hops: TraceHop[]
  children: TraceNode[]
}

export interface Trace {
  correlation_id: string
  events: number
  /** Events whose cause is not in the journey (usually one: the first). */
  roots: TraceNode[]
}

export interface TraceOptions {
  store: Pick<Store, 'events' | 'handled' | 'dlq'>
  /** The groups that consume a type (the services' subscriptions). */
  consumersOf: (type: string) => readonly string[]
  eventId?: string
  correlationId?: string
  /** Most events of one journey read (default 10,000). */
  limit?: number
}

/** Null when neither the event nor any event of the correlation id is in the store. */
export async function traceJourney(options: TraceOptions): Promise<Trace | null> {
  const {store} = options
  let correlationId = options.correlationId
  if (options.eventId !== undefined) {
    const event = await store.events.get(options.eventId)
    if (!event) return null
    correlationId = event.correlation_id
  }
  if (correlationId === undefined) return null
  const events: EventEnvelope[] = []
  for await (const event of store.events.query({correlationId, order: 'asc', limit: options.limit ?? 10_000})) events.push(event)
  if (events.length === 0) return null
  const handled = await store.handled.of(events.map((e) => e.event_id))
  const byEvent = new Map<string, Map<string, (typeof handled)[number]>>()
  for (const record of handled) {
    let groups = byEvent.get(record.event_id)
    if (!groups) byEvent.set(record.event_id, (groups = new Map()))
    groups.set(record.group, record)
  }
  const nodes = new Map<string, TraceNode>()
  for (const event of events) {
    const groups = [...new Set([...options.consumersOf(event.event_type), ...(byEvent.get(event.event_id)?.keys() ?? [])])].sort()
    const hops = await Promise.all(groups.map((group) => hop(store, event, group, byEvent.get(event.event_id)?.get(group))))
    nodes.set(event.event_id, {
      event_id: event.event_id,
      event_type: event.event_type,
      timestamp: event.timestamp,
      causation_id: event.causation_id ?? null,
      asked: event.event_id === options.eventId,
      hops,
      children: [],
    })
  }
  const roots: TraceNode[] = []
  for (const node of nodes.values()) {
    const parent = node.causation_id === null ? undefined : nodes.get(node.causation_id)
    if (parent && parent !== node) parent.children.push(node)
    else roots.push(node)
  }
  return {correlation_id: correlationId, events: events.length, roots}
}

async function hop(store: TraceOptions['store'], event: EventEnvelope, group: string, record: {handled_at: string; attempts: number} | undefined): Promise<TraceHop> {
  const since = (at: string) => Math.max(0, Date.parse(at) - Date.parse(event.timestamp))
  if (record) return {group, outcome: 'handled', at: record.handled_at, attempts: record.attempts, latency_ms: since(record.handled_at)}
  const dead = await store.dlq.get(`${group}:${event.event_id}`)
  if (dead) {
    return {group, outcome: 'dead_lettered', at: dead.dead_lettered_at, attempts: dead.attempts, latency_ms: since(dead.dead_lettered_at), error: {code: dead.error.error.code, message: dead.error.error.message}}
  }
  return {group, outcome: 'pending', at: null, attempts: null, latency_ms: null}
}
