/**
 * A shadow replay: one group's handlers (with the rules to try) run over the event log into a
 * scratch, in-process copy of its projections and leaderboards; the result is compared with the
 * live ones, field by field. Nothing live is written: the scratch store, bus and boards live and
 * die in this process. What it answers: "what would this rule change do to today's state?"
 */
import {isDeepStrictEqual} from 'node:util'
import type {Catalog} from '../catalog/types.js'
import type {EventValidator} from '../catalog/validate.js'
import {createMemoryBus, createMemoryLeaderboards, createMemoryStore} from '../adapters/memory/index.js'
import {SystemClock} from '../core/clock.js'
import type {EventEnvelope} from '../core/envelope.js'
import {withArchived} from '../core/merged-log.js'
import {APPLIED_FIELD} from '../core/projection-update.js'
import type {Leaderboards, ProjectionDoc, Store} from '../core/ports.js'
import {resolveSubscription, startConsumer, type ServiceDefinition} from '../engine/consumer.js'
import {createPublisher} from '../engine/publisher.js'
import {toOutgoingMessage} from '../engine/relay.js'

export interface ShadowOptions {
  live: {store: Store; leaderboards: Leaderboards}
  catalog: Catalog
  validator: EventValidator
  /** The group, built with the rules to try. */
  service: ServiceDefinition
  collections: readonly string[]
  /** Compare the leaderboards too (gamification owns them). */
  leaderboards?: boolean
  signal?: AbortSignal
  onProgress?: (events: number) => void
  /** Events archived out of the store: the live state holds their effects, so the shadow reads them too. */
  archived?: AsyncIterable<EventEnvelope>
}

export interface ShadowDifference {
  /** A collection, or `leaderboard:<board>`. */
  collection: string
  id: string
  field: string
  live: unknown
  shadow: unknown
}

export interface ShadowResult {
  group: string
  /** Events of the log the group consumes, run through it. */
  events: number
  documents: {live: number; shadow: number}
  differences: ShadowDifference[]
  interrupted: boolean
}

export async function shadowReplay(options: ShadowOptions): Promise<ShadowResult> {
  const {live, catalog, validator, service, signal} = options
  const store = createMemoryStore()
  const bus = createMemoryBus({defaultBlockMs: 20})
  const leaderboards = createMemoryLeaderboards()
  const clock = new SystemClock()
  const publisher = createPublisher({store, catalog, validator, producerId: `shadow-${service.name}`, clock})
  const {accepts} = resolveSubscription(catalog, service.consumes)
  // Retries at once: a rule that fails an event shows as a DLQ entry of the shadow, not as a wait.
  const handle = startConsumer({bus, store, leaderboards, clock, catalog, validator, publisher}, service, {retryDelaysMs: [0, 0, 0], blockMs: 20})
  let events = 0
  try {
    await bus.ensureTopics(catalog.topics())
    let batch: ReturnType<typeof toOutgoingMessage>[] = []
    for await (const {event} of withArchived(live.store.events.query({order: 'asc'}), options.archived)) {
      if (signal?.aborted) return {group: service.name, events, documents: {live: 0, shadow: 0}, differences: [], interrupted: true}
      const definition = catalog.get(event.event_type)
      if (!definition || !accepts(definition)) continue
      batch.push(toOutgoingMessage(catalog, event, Date.now()))
      events++
      if (batch.length >= 500) {
        await bus.publish(batch)
        batch = []
        options.onProgress?.(events)
        // Keep the scratch bus from holding the whole log at once.
        await drained(bus, service.name, 5_000)
      }
    }
    if (batch.length > 0) await bus.publish(batch)
    await drained(bus, service.name, Number.POSITIVE_INFINITY, signal)
    await handle.stop()
    const differences: ShadowDifference[] = []
    let liveDocs = 0
    let shadowDocs = 0
    for (const collection of options.collections) {
      const [a, b] = await Promise.all([live.store.projections.find(collection), store.projections.find(collection)])
      liveDocs += a.length
      shadowDocs += b.length
      differences.push(...compareDocs(collection, a, b))
    }
    if (options.leaderboards) differences.push(...(await compareBoards(live.leaderboards, leaderboards)))
    return {group: service.name, events, documents: {live: liveDocs, shadow: shadowDocs}, differences, interrupted: Boolean(signal?.aborted)}
  } finally {
    await handle.stop()
    await Promise.allSettled([bus.close(), store.close(), leaderboards.close()])
  }
}

/** Until the group has nothing left to take or ack on the scratch bus (or `maxMs`). */
async function drained(bus: ReturnType<typeof createMemoryBus>, group: string, maxMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + maxMs
  while (Date.now() < deadline && !signal?.aborted) {
    const stats = await bus.stats({group})
    if (stats.every((s) => s.lag === 0 && s.pending === 0) && stats.length > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function comparable(doc: ProjectionDoc): Record<string, unknown> {
  const {[APPLIED_FIELD]: _applied, ...rest} = doc as Record<string, unknown>
  return rest
}

/**
 * A value as the comparison sees it: a list of plain values as a set ($addToSet keeps them in the
 * order the events happened to be handled, which concurrent handling does not fix).
 */
function normalized(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(normalized)
    return items.every((v) => v === null || typeof v !== 'object') ? [...items].sort() : items
  }
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalized(v)]))
  return value
}

/** Field by field (top-level fields; nested values compared whole, key order aside). */
export function compareDocs(collection: string, live: readonly ProjectionDoc[], shadow: readonly ProjectionDoc[]): ShadowDifference[] {
  const out: ShadowDifference[] = []
  const byId = (docs: readonly ProjectionDoc[]) => new Map(docs.map((d) => [String(d._id), comparable(d)]))
  const a = byId(live)
  const b = byId(shadow)
  for (const id of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(id)
    const y = b.get(id)
    if (!x || !y) {
      out.push({collection, id, field: '(document)', live: x ? 'present' : 'absent', shadow: y ? 'present' : 'absent'})
      continue
    }
    for (const field of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      if (!isDeepStrictEqual(normalized(x[field]), normalized(y[field]))) out.push({collection, id, field, live: x[field], shadow: y[field]})
    }
  }
  return out
}

async function compareBoards(live: Leaderboards, shadow: Leaderboards): Promise<ShadowDifference[]> {
  const out: ShadowDifference[] = []
  const boards = [...new Set([...(await live.boards()), ...(await shadow.boards())])].sort()
  for (const board of boards) {
    const [a, b] = await Promise.all([live.top(board, 1_000_000), shadow.top(board, 1_000_000)])
    const scores = (entries: typeof a) => new Map(entries.map((e) => [e.member, e.score]))
    const x = scores(a)
    const y = scores(b)
    for (const member of [...new Set([...x.keys(), ...y.keys()])].sort()) {
      if (x.get(member) !== y.get(member)) out.push({collection: `leaderboard:${board}`, id: member, field: 'score', live: x.get(member) ?? null, shadow: y.get(member) ?? null})
    }
  }
  return out
}
