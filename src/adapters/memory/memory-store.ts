/**
 * The in-process Store: events in append order with indexes by event_id, aggregate and correlation;
 * the outbox as the ordered set of unpublished ids with leases; projections as plain maps updated by
 * the reference applyUpdate(). Single-threaded JavaScript makes every write atomic.
 *
 * Stored envelopes are copies of what was appended; what reads return is shared: treat it as read-only.
 */
import {sameEnvelope, type EventEnvelope} from '../../core/envelope.js'
import type {
  AppendResult,
  CommitResult,
  DlqRecord,
  DlqStore,
  HandledLog,
  HandledRecord,
  EventQuery,
  EventStore,
  Outbox,
  ProjectionDoc,
  ProjectionStore,
  ProjectionUpdate,
  PublishedEvent,
  QuarantineRecord,
  Store,
  StoredEventRecord,
  StoreWrites,
} from '../../core/ports.js'
import {copyData} from '../../core/copy.js'
import {handledConflict, StaleReadError} from '../../core/errors.js'
import {compileTypeGlobs} from '../../core/glob.js'
import {APPLIED_FIELD, APPLIED_LIMIT, applyUpdate, compareValues, DocDraft, getPath, matchesFilter, type Doc} from '../../core/projection-update.js'

export interface MemoryStoreOptions {
  /** Wall clock for leases and ttls (tests may inject one). */
  now?: () => number
  /** Events a query() yields between two turns of the event loop. */
  queryChunkSize?: number
}

/** What a removed event's log slot holds (no read reaches it: `removed` is checked first). */
const REMOVED = Object.freeze({}) as EventEnvelope

const closedError = () => new Error('The in-process store is closed')
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

function toMs(value: string | number): number {
  const ms = typeof value === 'number' ? value : Date.parse(value)
  if (Number.isNaN(ms)) throw new Error(`Invalid time bound "${value}"`)
  return ms
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  readonly transactional = true
  readonly events: EventStore
  readonly outbox: Outbox
  readonly projections: ProjectionStore
  readonly dlq: DlqStore
  readonly handled: HandledLog
  private readonly handledRecords = new Map<string, HandledRecord>()

  private closed = false
  private readonly now: () => number
  private readonly chunkSize: number

  // Events: the log, and parallel indexes of log positions.
  private readonly log: EventEnvelope[] = []
  private readonly timestamps: number[] = []
  private readonly byId = new Map<string, number>()
  private readonly byAggregate = new Map<string, number[]>()
  private readonly byCorrelation = new Map<string, number[]>()
  /** Log positions of removed (archived) events: every read skips them. */
  private readonly removed = new Set<number>()
  /** Their ids, still known to append (EventStore.remove: an id is an idempotency key). */
  private readonly removedIds = new Set<string>()
  // Outbox: unpublished event ids in append order (Map keeps insertion order) with their lease.
  private readonly unpublished = new Map<string, {position: number; leaseUntil: number; owner: string | null}>()
  private readonly collections = new Map<string, Map<string, Doc>>()
  /** applyOnce bookkeeping per collection and document, beside the documents (never in them). */
  private readonly appliedIds = new Map<string, Map<string, RecentIds>>()
  /** Per collection, per document: its version (ProjectionStore.getVersioned). */
  private readonly versions = new Map<string, Map<string, number>>()
  private readonly dlqRecords = new Map<string, DlqRecord>()
  /** When each published event (by log position) was marked published. */
  private readonly publishedAt = new Map<number, number>()
  /** Outbox entries the relay gave up on, by event id, in the order they were set aside. */
  private readonly quarantinedEntries = new Map<string, {position: number; reason: Omit<QuarantineRecord, 'envelope' | 'event_type'>}>()

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.chunkSize = options.queryChunkSize ?? 256
    this.events = {
      append: async (events) => this.append(events),
      get: async (eventId) => {
        this.check()
        const position = this.byId.get(eventId)
        return position === undefined ? null : this.log[position]
      },
      query: (query) => this.query(query),
      count: async (query) => this.count(query ?? {}),
      records: async (eventIds) => {
        this.check()
        const out = new Map<string, StoredEventRecord>()
        for (const id of eventIds) {
          const position = this.byId.get(id)
          if (position !== undefined) out.set(id, {event: copyData(this.log[position]), published_at: this.publishedAt.get(position) ?? null, handled: []})
        }
        for (const record of this.handledRecords.values()) out.get(record.event_id)?.handled.push({...record})
        return [...out.values()]
      },
      remove: async (eventIds) => {
        this.check()
        const gone = new Set<string>()
        for (const id of eventIds) {
          const position = this.byId.get(id)
          if (position === undefined) continue
          // The slot stays (positions index everything else), emptied and marked removed for every read.
          this.byId.delete(id)
          this.removedIds.add(id)
          this.removed.add(position)
          this.log[position] = REMOVED
          this.unpublished.delete(id)
          this.quarantinedEntries.delete(id)
          this.publishedAt.delete(position)
          gone.add(id)
        }
        if (gone.size > 0) for (const [key, record] of this.handledRecords) if (gone.has(record.event_id)) this.handledRecords.delete(key)
        return gone.size
      },
      restore: async (records) => {
        this.check()
        for (const {event} of records) this.removedIds.delete(event.event_id)
        const result = this.append(records.map((r) => r.event))
        const at = this.now()
        for (const {event, published_at, handled} of records) {
          if (result.duplicates.includes(event.event_id) || result.conflicts.includes(event.event_id)) continue
          const position = this.byId.get(event.event_id)!
          if (!this.unpublished.delete(event.event_id)) continue
          this.publishedAt.set(position, published_at ?? at)
          for (const record of handled) this.handledRecords.set(handledKey(record.event_id, record.group), {...record})
        }
        return result
      },
    }
    this.outbox = {
      claim: async (options) => this.claim(options),
      markPublished: async (eventIds) => {
        this.check()
        const at = this.now()
        for (const id of eventIds) if (this.unpublished.delete(id)) this.publishedAt.set(this.byId.get(id)!, at)
      },
      published: (options = {}) => this.published(options.sinceMs ?? 0),
      pending: async () => {
        this.check()
        return this.unpublished.size
      },
      quarantine: async (entries) => {
        this.check()
        const at = new Date(this.now()).toISOString()
        let n = 0
        for (const entry of entries) {
          const outboxEntry = this.unpublished.get(entry.event_id)
          if (!outboxEntry) continue
          this.unpublished.delete(entry.event_id)
          this.quarantinedEntries.set(entry.event_id, {position: outboxEntry.position, reason: {...copyData(entry), quarantined_at: at}})
          n++
        }
        return n
      },
      quarantined: async (filter = {}) => {
        this.check()
        const entries = [...this.quarantinedEntries.values()].sort((a, b) => a.position - b.position).slice(0, filter.limit ?? Infinity)
        return entries.map(({position, reason}) => {
          const envelope = copyData(this.log[position])
          return {...copyData(reason), event_type: envelope.event_type, envelope}
        })
      },
      countQuarantined: async () => {
        this.check()
        return this.quarantinedEntries.size
      },
      release: async (eventIds) => {
        this.check()
        const back: Array<[string, {position: number; leaseUntil: number; owner: string | null}]> = []
        for (const id of eventIds) {
          const entry = this.quarantinedEntries.get(id)
          if (!entry) continue
          this.quarantinedEntries.delete(id)
          back.push([id, {position: entry.position, leaseUntil: 0, owner: null}])
        }
        if (back.length === 0) return 0
        // Back in append order, as the SQLite store's seq keeps them: the outbox is claimed oldest first.
        const all = [...this.unpublished.entries(), ...back].sort((a, b) => a[1].position - b[1].position)
        this.unpublished.clear()
        for (const [id, entry] of all) this.unpublished.set(id, entry)
        return back.length
      },
    }
    this.projections = {
      get: async (collection, id) => {
        this.check()
        const doc = this.collections.get(collection)?.get(id)
        return doc ? publicDoc(doc) : null
      },
      getVersioned: async (collection, id) => {
        this.check()
        const doc = this.collections.get(collection)?.get(id)
        return {doc: doc ? publicDoc(doc) : null, version: doc ? (this.versions.get(collection)?.get(id) ?? 0) : 0}
      },
      find: async (collection, filter, options) => this.find(collection, filter, options),
      count: async (collection, filter) => {
        this.check()
        let n = 0
        for (const doc of this.collections.get(collection)?.values() ?? []) if (matchesFilter(doc, filter)) n++
        return n
      },
      update: async (collection, id, update) => {
        this.check()
        this.write(collection, id, update, null)
      },
      applyOnce: async (collection, id, eventId, update) => {
        this.check()
        return this.write(collection, id, update, eventId)
      },
      isApplied: async (collection, id, eventId) => {
        this.check()
        return this.appliedIds.get(collection)?.get(id)?.has(eventId) ?? false
      },
      drop: async (collection) => {
        this.check()
        this.collections.delete(collection)
        this.appliedIds.delete(collection)
        this.versions.delete(collection)
      },
    }
    this.handled = {
      of: async (eventIds) => {
        this.check()
        const wanted = new Set(eventIds)
        return [...this.handledRecords.values()].filter((r) => wanted.has(r.event_id)).map((r) => ({...r}))
      },
      completed: async (group, eventIds) => {
        this.check()
        const done = new Set<string>()
        for (const id of eventIds) if (this.handledRecords.has(handledKey(id, group))) done.add(id)
        return done
      },
    }
    this.dlq = {
      add: async (record) => {
        this.check()
        this.dlqRecords.set(record.id, copyData(record))
      },
      list: async (filter = {}) => {
        this.check()
        const out: DlqRecord[] = []
        for (const record of this.dlqRecords.values()) {
          if (out.length >= (filter.limit ?? Number.POSITIVE_INFINITY)) break
          if (dlqMatches(record, filter)) out.push(copyData(record))
        }
        return out
      },
      get: async (id) => {
        this.check()
        const record = this.dlqRecords.get(id)
        return record ? copyData(record) : null
      },
      remove: async (ids) => {
        this.check()
        let n = 0
        for (const id of ids) if (this.dlqRecords.delete(id)) n++
        return n
      },
      count: async (filter = {}) => {
        this.check()
        let n = 0
        for (const record of this.dlqRecords.values()) if (dlqMatches(record, filter)) n++
        return n
      },
    }
  }

  async close(): Promise<void> {
    this.closed = true
  }

  /**
   * All or nothing: every projection write is first computed on a staged copy (an update that
   * throws leaves the store untouched), then the staged documents, events and handled records go in at once.
   */
  async commit(writes: StoreWrites): Promise<CommitResult> {
    this.check()
    const handled = writes.handled ?? []
    const taken = handled.filter((r) => !r.again && this.handledRecords.has(handledKey(r.event_id, r.group)))
    if (taken.length > 0) throw handledConflict(taken)
    this.checkVersions(writes.expect ?? [])
    // A draft per document: a hot one takes many writes in a commit and is copied once.
    const staged = new Map<string, {collection: string; id: string; draft: DocDraft; applied: string[]}>()
    const named = new Map<string, {collection: string; id: string}>()
    for (const {collection, id, update, eventId} of writes.projections ?? []) {
      rejectBookkeeping(update)
      const key = `${collection}\u0000${id}`
      named.set(key, {collection, id})
      let entry = staged.get(key)
      if (eventId !== undefined && (entry?.applied.includes(eventId) || this.appliedIds.get(collection)?.get(id)?.has(eventId))) continue
      if (!entry) {
        entry = {collection, id, draft: new DocDraft(this.collections.get(collection)?.get(id) ?? null), applied: []}
        staged.set(key, entry)
      }
      entry.draft.apply(update)
      if (eventId !== undefined) entry.applied.push(eventId)
    }
    for (const {collection, id, draft, applied} of staged.values()) {
      let docs = this.collections.get(collection)
      if (!docs) this.collections.set(collection, (docs = new Map()))
      const doc = draft.doc!
      doc._id = id
      docs.set(id, doc)
      if (applied.length === 0) continue
      let byDoc = this.appliedIds.get(collection)
      if (!byDoc) this.appliedIds.set(collection, (byDoc = new Map()))
      let recent = byDoc.get(id)
      if (!recent) byDoc.set(id, (recent = new RecentIds(APPLIED_LIMIT)))
      for (const eventId of applied) recent.add(eventId)
    }
    for (const {collection, id} of named.values()) this.bumpVersion(collection, id)
    // Only `inserted` is reported here, so a known id is skipped without comparing envelopes: a
    // derived event announced once per identity (an achievement) is emitted again and again, and
    // the canonical comparison of each was 3% of the in-process engine's time.
    const {inserted} = writes.events?.length ? this.append(writes.events, false) : {inserted: 0}
    for (const {group, event_id, handled_at, attempts} of handled) this.handledRecords.set(handledKey(event_id, group), {group, event_id, handled_at, attempts})
    return {inserted}
  }

  private check(): void {
    if (this.closed) throw closedError()
  }

  /** With `compare` false, known ids are skipped and reported as neither duplicates nor conflicts. */
  private append(events: readonly EventEnvelope[], compare = true): AppendResult {
    this.check()
    let inserted = 0
    const duplicates: string[] = []
    const conflicts: string[] = []
    for (const original of events) {
      if (this.removedIds.size > 0 && this.removedIds.has(original.event_id)) {
        // Archived: its content is in the archive, not here to compare.
        if (compare) duplicates.push(original.event_id)
        continue
      }
      const known = this.byId.get(original.event_id)
      if (known !== undefined) {
        if (!compare) continue
        if (sameEnvelope(this.log[known], original)) duplicates.push(original.event_id)
        else conflicts.push(original.event_id)
        continue
      }
      const event = copyData(original)
      const position = this.log.length
      this.log.push(event)
      this.timestamps.push(Date.parse(event.timestamp))
      this.byId.set(event.event_id, position)
      const aggregate = event.metadata?.aggregate_id
      if (typeof aggregate === 'string') push(this.byAggregate, aggregate, position)
      push(this.byCorrelation, event.correlation_id, position)
      this.unpublished.set(event.event_id, {position, leaseUntil: 0, owner: null})
      inserted++
    }
    return {inserted, duplicates, conflicts}
  }

  /** The log positions a query may match, in append order, and a predicate for the rest. */
  private plan(query: EventQuery): {positions: readonly number[] | null; length: number; match: (p: number) => boolean} {
    const length = this.log.length
    let positions: readonly number[] | null = null
    if (query.aggregateId !== undefined) positions = this.byAggregate.get(query.aggregateId) ?? []
    if (query.correlationId !== undefined) {
      const byCorrelation = this.byCorrelation.get(query.correlationId) ?? []
      if (positions === null || byCorrelation.length < positions.length) positions = byCorrelation
    }
    const typeMatch = query.types && query.types.length > 0 ? compileTypeGlobs(query.types) : null
    const from = query.from === undefined ? null : toMs(query.from)
    const to = query.to === undefined ? null : toMs(query.to)
    const match = (p: number) => {
      if (this.removed.has(p)) return false
      const event = this.log[p]
      if (typeMatch && !typeMatch(event.event_type)) return false
      if (from !== null && !(this.timestamps[p] >= from)) return false
      if (to !== null && !(this.timestamps[p] < to)) return false
      if (query.aggregateId !== undefined && event.metadata?.aggregate_id !== query.aggregateId) return false
      if (query.correlationId !== undefined && event.correlation_id !== query.correlationId) return false
      return true
    }
    return {positions, length, match}
  }

  private async *query(query: EventQuery): AsyncGenerator<EventEnvelope> {
    this.check()
    // A snapshot of the log length: events appended while the cursor runs are not seen.
    const {positions, length, match} = this.plan(query)
    const limit = query.limit ?? Number.POSITIVE_INFINITY
    const desc = query.order === 'desc'
    const total = positions === null ? length : countBelow(positions, length)
    let yielded = 0
    let sinceYield = 0
    for (let i = 0; i < total && yielded < limit; i++) {
      const index = desc ? total - 1 - i : i
      const p = positions === null ? index : positions[index]
      if (match(p)) {
        yielded++
        yield this.log[p]
      }
      if (++sinceYield >= this.chunkSize) {
        sinceYield = 0
        await yieldToLoop()
        this.check()
      }
    }
  }

  private count(query: EventQuery): number {
    this.check()
    const {positions, length, match} = this.plan(query)
    const limit = query.limit ?? Number.POSITIVE_INFINITY
    const noFilter = !query.types?.length && query.from === undefined && query.to === undefined
    if (noFilter && query.aggregateId === undefined && query.correlationId === undefined) return Math.min(length - this.removed.size, limit)
    let n = 0
    const candidates = positions ?? null
    const total = candidates === null ? length : candidates.length
    for (let i = 0; i < total && n < limit; i++) if (match(candidates === null ? i : candidates[i])) n++
    return n
  }

  /** Published events in append order, from a snapshot of the log length; yields a turn per chunk. */
  private async *published(sinceMs: number): AsyncGenerator<PublishedEvent> {
    this.check()
    const length = this.log.length
    for (let position = 0; position < length; position++) {
      const at = this.publishedAt.get(position)
      if (at !== undefined && at >= sinceMs) yield {event: copyData(this.log[position]), publishedAt: at}
      if (position % this.chunkSize === this.chunkSize - 1) await yieldToLoop()
    }
  }

  private claim({owner, limit, leaseMs}: {owner: string; limit: number; leaseMs: number}): EventEnvelope[] {
    this.check()
    const now = this.now()
    const out: EventEnvelope[] = []
    // Aggregates another claimer holds a live lease on are skipped whole: their later events must
    // not reach the bus before the earlier ones that claimer is publishing.
    const heldElsewhere = new Set<string>()
    for (const entry of this.unpublished.values()) {
      if (entry.leaseUntil <= now || entry.owner === owner) continue
      const aggregate = this.log[entry.position].metadata?.aggregate_id
      if (typeof aggregate === 'string') heldElsewhere.add(aggregate)
    }
    for (const entry of this.unpublished.values()) {
      if (out.length >= limit) break
      if (entry.leaseUntil > now) continue
      const aggregate = this.log[entry.position].metadata?.aggregate_id
      if (typeof aggregate === 'string' && heldElsewhere.has(aggregate)) continue
      entry.leaseUntil = now + leaseMs
      entry.owner = owner
      out.push(this.log[entry.position])
    }
    return out
  }

  private find(
    collection: string,
    filter?: Record<string, unknown>,
    options: {limit?: number; sort?: {field: string; order: 'asc' | 'desc'}} = {},
  ): ProjectionDoc[] {
    this.check()
    const docs = this.collections.get(collection)
    if (!docs) return []
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const matched: Doc[] = []
    for (const doc of docs.values()) {
      if (!matchesFilter(doc, filter)) continue
      matched.push(doc)
      if (!options.sort && matched.length >= limit) break
    }
    if (options.sort) {
      const {field, order} = options.sort
      const sign = order === 'desc' ? -1 : 1
      matched.sort((a, b) => sign * compareValues(getPath(a, field), getPath(b, field)) || compareValues(a._id, b._id))
    }
    return matched.slice(0, limit).map(publicDoc)
  }

  /** One atomic document write; with an eventId, guarded by the document's last applied ids. */
  private bumpVersion(collection: string, id: string): void {
    let byDoc = this.versions.get(collection)
    if (!byDoc) this.versions.set(collection, (byDoc = new Map()))
    byDoc.set(id, (byDoc.get(id) ?? 0) + 1)
  }

  private checkVersions(expect: NonNullable<StoreWrites['expect']>): void {
    const stale: Array<{collection: string; id: string; expected: number; found: number}> = []
    for (const {collection, id, version} of expect) {
      const found = this.collections.get(collection)?.has(id) ? (this.versions.get(collection)?.get(id) ?? 0) : 0
      if (found !== version) stale.push({collection, id, expected: version, found})
    }
    if (stale.length > 0) throw new StaleReadError(stale)
  }

  private write(collection: string, id: string, update: ProjectionUpdate, eventId: string | null): boolean {
    rejectBookkeeping(update)
    let docs = this.collections.get(collection)
    if (!docs) {
      docs = new Map()
      this.collections.set(collection, docs)
    }
    let recent: RecentIds | undefined
    if (eventId !== null) {
      let byDoc = this.appliedIds.get(collection)
      if (!byDoc) {
        byDoc = new Map()
        this.appliedIds.set(collection, byDoc)
      }
      recent = byDoc.get(id)
      if (recent?.has(eventId)) {
        this.bumpVersion(collection, id)
        return false
      }
      if (!recent) {
        recent = new RecentIds(APPLIED_LIMIT)
        byDoc.set(id, recent)
      }
    }
    const existing = docs.get(id) ?? null
    const next = applyUpdate(existing, update, {isInsert: existing === null})
    next._id = id
    docs.set(id, next)
    this.bumpVersion(collection, id)
    // After applyUpdate: an update that throws must not count as applied.
    recent?.add(eventId!)
    return true
  }
}

/**
 * The last `capacity` ids, as the MongoDB adapter's `_applied` array keeps them, with O(1) lookup:
 * a ring of ids plus a set (scanning a 256-id array on every write showed up in profiles).
 */
class RecentIds {
  private readonly ring: string[] = []
  private readonly set = new Set<string>()
  private next = 0
  constructor(private readonly capacity: number) {}

  has(id: string): boolean {
    return this.set.has(id)
  }

  add(id: string): void {
    if (this.ring.length < this.capacity) this.ring.push(id)
    else {
      this.set.delete(this.ring[this.next])
      this.ring[this.next] = id
      this.next = (this.next + 1) % this.capacity
    }
    this.set.add(id)
  }
}

function rejectBookkeeping(update: ProjectionUpdate): void {
  for (const operator of Object.values(update)) {
    for (const path of Object.keys(operator ?? {})) {
      if (path === APPLIED_FIELD || path.startsWith(`${APPLIED_FIELD}.`)) throw new Error(`"${APPLIED_FIELD}" is reserved for applyOnce bookkeeping`)
    }
  }
}

function push(index: Map<string, number[]>, key: string, position: number): void {
  const list = index.get(key)
  if (list) list.push(position)
  else index.set(key, [position])
}

/** Positions are ascending: how many are below `length` (the query's snapshot). */
function countBelow(positions: readonly number[], length: number): number {
  let n = positions.length
  while (n > 0 && positions[n - 1] >= length) n--
  return n
}

/** A copy: the stored document is never handed out. */
function publicDoc(doc: Doc): ProjectionDoc {
  return copyData(doc) as ProjectionDoc
}

function dlqMatches(record: DlqRecord, filter: {group?: string; type?: string}): boolean {
  if (filter.group !== undefined && record.group !== filter.group) return false
  if (filter.type !== undefined && record.event_type !== filter.type) return false
  return true
}

function handledKey(eventId: string, group: string): string {
  return `${eventId}\u0000${group}`
}
