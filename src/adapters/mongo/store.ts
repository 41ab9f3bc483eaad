/**
 * The MongoDB Store (official driver 7). Works on a standalone mongod: nothing here needs a
 * multi-document transaction.
 *
 * Collections of one database:
 * - `events`: one document per event, `_id` = event_id (append is idempotent by the _id index). The
 *   document IS the outbox entry: `published: false` and an expired lease are set by the same insert,
 *   so "event stored" and "event queued for publishing" can never disagree. Internal fields (`seq`,
 *   `appended_at`, `ts_ms`, `published`, `lease_*`) are projected away: readers get the envelope.
 * - `proj_<name>`: projection documents; updates are sent as MongoDB update operators. applyOnce
 *   keeps the last APPLIED_LIMIT event ids in `_applied`, guarded in the same single-document write.
 * - `dlq`: dead-letter records by id.
 *
 * Retryable writes: the driver default is kept. A standalone server (and mongo-java-server) has no
 * sessions, so the driver does not retry there; on a replica set a retried write is harmless, because
 * every write here is idempotent (insert by _id, applyOnce guard, claim re-read by lease token).
 */
import {randomUUID} from 'node:crypto'
import {BSON, MongoClient, type Collection, type Db, type Document, type Filter, type UpdateFilter} from 'mongodb'
import {sameEnvelope, type EventEnvelope} from '../../core/envelope.js'
import {RuntimeError} from '../../core/errors.js'
import type {
  AppendResult,
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
  CommitResult,
} from '../../core/ports.js'
import {typeGlobsToRegExpSource} from '../../core/glob.js'
import {APPLIED_FIELD, APPLIED_LIMIT} from '../../core/projection-update.js'
import {UserError, maskUrl} from '../../errors.js'
import {handledConflict} from '../../core/errors.js'

export type MongoStoreTarget = {url: string; database: string} | {client: MongoClient; database: string}

export interface MongoStoreOptions {
  /** Wall clock for leases, ttls and append order (tests may inject one). */
  now?: () => number
  /** Documents per cursor batch for query() (default 1000). */
  batchSize?: number
  /** Create the indexes the queries need (default true; idempotent). */
  ensureIndexes?: boolean
  /** Server selection / connect timeout when the store creates its client (default 5000 ms). */
  connectTimeoutMs?: number
}

interface EventDoc extends EventEnvelope {
  _id: string
  /** Append order: appended_at * 1000 + a per-store counter, strictly increasing within a store. */
  seq: number
  appended_at: number
  /** The envelope timestamp in ms, for range queries (ISO strings of varying precision do not sort). */
  ts_ms: number
  /** null: quarantined (the relay gave up on it; out of the outbox's partial index, see `quarantine`). */
  published: boolean | null
  /** When it was marked published (ms). */
  published_at?: number
  quarantine?: Omit<QuarantineRecord, 'envelope' | 'event_type'>
  lease_until: number
  lease_owner: string | null
  lease_token: string | null
}

type DlqDoc = DlqRecord & {_id: string; _seq: number}
type ProjDoc = {_id: string} & Document

const EVENT_INTERNAL = ['_id', 'seq', 'appended_at', 'ts_ms', 'published', 'published_at', 'quarantine', 'lease_until', 'lease_owner', 'lease_token'] as const
const EVENT_PROJECTION = Object.fromEntries(EVENT_INTERNAL.map((field) => [field, 0]))
const DUPLICATE_KEY = 11000

export async function createMongoStore(target: MongoStoreTarget, options: MongoStoreOptions = {}): Promise<MongoStore> {
  let client: MongoClient
  let owned = false
  if ('client' in target) {
    client = target.client
  } else {
    const timeout = options.connectTimeoutMs ?? 5_000
    client = new MongoClient(target.url, {
      serverSelectionTimeoutMS: timeout,
      connectTimeoutMS: timeout,
      appName: 'tektree',
    })
    owned = true
    try {
      await client.connect()
    } catch (error) {
      await client.close().catch(() => undefined)
      throw new UserError(`Cannot connect to MongoDB at ${maskUrl(target.url)}: ${driverMessage(error)}`, {
        code: 'MONGO_UNREACHABLE',
        hint:
          'Check that mongod is running and reachable from here (host, port, credentials, --bind_ip), ' +
          'or drop --mongo-url to use the embedded store.',
        exitCode: 3,
        details: {url: maskUrl(target.url)},
        cause: error,
      })
    }
  }
  const store = new MongoStore(client, target.database, owned, options)
  if (options.ensureIndexes !== false) {
    try {
      await store.ensureIndexes()
    } catch (error) {
      if (owned) await client.close().catch(() => undefined)
      throw error
    }
  }
  return store
}

export class MongoStore implements Store {
  readonly kind = 'mongodb'
  /** A standalone mongod has no multi-document transactions: commit() applies in order. */
  readonly transactional = false
  readonly events: EventStore
  readonly outbox: Outbox
  readonly projections: ProjectionStore
  readonly dlq: DlqStore
  readonly handled: HandledLog
  private readonly handledCollection: Collection<HandledRecord & {_id: string}>
  /** The ids of archived events, still known to append (EventStore.remove). */
  private readonly archivedIds: Collection<{_id: string; at?: number}>
  readonly db: Db

  private readonly eventsCollection: Collection<EventDoc>
  private readonly dlqCollection: Collection<DlqDoc>
  private readonly now: () => number
  private readonly batchSize: number
  private lastSeq = 0
  private closed = false

  constructor(
    private readonly client: MongoClient,
    database: string,
    private readonly ownsClient: boolean,
    options: MongoStoreOptions = {},
  ) {
    this.db = client.db(database)
    this.eventsCollection = this.db.collection<EventDoc>('events')
    this.dlqCollection = this.db.collection<DlqDoc>('dlq')
    this.handledCollection = this.db.collection<HandledRecord & {_id: string}>('handled')
    this.archivedIds = this.db.collection<{_id: string; at?: number}>('archived_ids')
    this.now = options.now ?? Date.now
    this.batchSize = options.batchSize ?? 1_000

    this.events = {
      append: (events) => this.append(events),
      get: async (eventId) => {
        const doc = await this.eventsCollection.findOne({_id: eventId}, {projection: EVENT_PROJECTION})
        return doc as EventEnvelope | null
      },
      query: (query) => this.query(query),
      count: (query = {}) =>
        this.eventsCollection.countDocuments(eventFilter(query), query.limit === undefined ? {} : {limit: query.limit}),
      records: async (eventIds) => {
        if (eventIds.length === 0) return []
        const out = new Map<string, StoredEventRecord>()
        for await (const doc of this.eventsCollection.find({_id: {$in: [...eventIds]}}).sort({seq: 1})) {
          out.set(doc._id, {event: envelopeOf(doc), published_at: doc.published === true ? (typeof doc.published_at === 'number' ? doc.published_at : 0) : null, handled: []})
        }
        for (const r of await this.handled.of([...out.keys()])) out.get(r.event_id)?.handled.push(r)
        return [...out.values()]
      },
      remove: async (eventIds) => {
        if (eventIds.length === 0) return 0
        // The ids first, then the events: a crash in between leaves an id known twice over, never
        // an event whose id was forgotten. Then handled records of no event (trace finds nothing
        // to show them on), never an event whose handling was forgotten.
        const held = await this.eventsCollection.find({_id: {$in: [...eventIds]}}, {projection: {_id: 1}}).toArray()
        if (held.length > 0) await this.archivedIds.bulkWrite(held.map(({_id}) => ({updateOne: {filter: {_id}, update: {$setOnInsert: {at: this.now()}}, upsert: true}})), {ordered: false})
        const {deletedCount} = await this.eventsCollection.deleteMany({_id: {$in: [...eventIds]}})
        await this.handledCollection.deleteMany({event_id: {$in: [...eventIds]}})
        return deletedCount
      },
      restore: async (records) => {
        if (records.length === 0) return {inserted: 0, duplicates: [], conflicts: []}
        const now = this.now()
        await this.archivedIds.deleteMany({_id: {$in: records.map((r) => r.event.event_id)}})
        const publishedAt = new Map(records.map((r) => [r.event, r.published_at ?? now]))
        const result = await this.append(
          records.map((r) => r.event),
          (event) => ({published: true, published_at: publishedAt.get(event) ?? now}),
        )
        const skipped = new Set([...result.duplicates, ...result.conflicts])
        // Handled records after their event: a crash in between leaves a restored event whose
        // handling trace does not show yet; restoring again fills it in (the records are upserts).
        const handled = records.filter((r) => !skipped.has(r.event.event_id)).flatMap((r) => r.handled)
        if (handled.length > 0) await this.writeHandled(handled)
        return result
      },
    }
    this.outbox = {
      claim: (claimOptions) => this.claim(claimOptions),
      markPublished: async (eventIds) => {
        if (eventIds.length === 0) return
        await this.eventsCollection.updateMany(
          // Only from the outbox: a quarantined event (published null) stays set aside, and an
          // event marked twice keeps the time it was first marked.
          {_id: {$in: [...eventIds]}, published: false},
          {$set: {published: true, published_at: this.now(), lease_until: 0, lease_owner: null, lease_token: null}},
        )
      },
      pending: () => this.eventsCollection.countDocuments({published: false}),
      published: (options = {}) => this.published(options.sinceMs ?? 0),
      quarantine: async (entries) => {
        const at = new Date(this.now()).toISOString()
        let n = 0
        // One document each, guarded by published: false (no transactions: each is atomic alone).
        for (const entry of entries) {
          const result = await this.eventsCollection.updateOne(
            {_id: entry.event_id, published: false},
            {$set: {published: null, quarantine: {...entry, quarantined_at: at}, lease_until: 0, lease_owner: null, lease_token: null}},
          )
          n += result.modifiedCount
        }
        return n
      },
      quarantined: async (filter = {}) => {
        const cursor = this.eventsCollection.find({published: null, quarantine: {$exists: true}}).sort({seq: 1})
        if (filter.limit !== undefined) cursor.limit(filter.limit)
        const out: QuarantineRecord[] = []
        for await (const doc of cursor) {
          const envelope = envelopeOf(doc)
          out.push({...doc.quarantine!, event_type: envelope.event_type, envelope})
        }
        return out
      },
      countQuarantined: () => this.eventsCollection.countDocuments({published: null, quarantine: {$exists: true}}),
      release: async (eventIds) => {
        if (eventIds.length === 0) return 0
        const result = await this.eventsCollection.updateMany(
          {_id: {$in: [...eventIds]}, published: null},
          {$set: {published: false, lease_until: 0, lease_owner: null, lease_token: null}, $unset: {quarantine: ''}},
        )
        return result.modifiedCount
      },
    }
    this.projections = {
      get: async (collection, id) =>
        (await this.projection(collection).findOne({_id: id}, {projection: {[APPLIED_FIELD]: 0}})) as ProjectionDoc | null,
      find: async (collection, filter, findOptions = {}) => {
        const cursor = this.projection(collection).find(equalityFilter(filter), {projection: {[APPLIED_FIELD]: 0}})
        if (findOptions.sort) {
          const direction = findOptions.sort.order === 'desc' ? -1 : 1
          cursor.sort(findOptions.sort.field === '_id' ? {_id: direction} : {[findOptions.sort.field]: direction, _id: 1})
        }
        if (findOptions.limit !== undefined) cursor.limit(findOptions.limit)
        return (await cursor.toArray()) as ProjectionDoc[]
      },
      count: (collection, filter) => this.projection(collection).countDocuments(equalityFilter(filter)),
      update: async (collection, id, update) => {
        await this.updateProjection(collection, id, update)
      },
      applyOnce: (collection, id, eventId, update) => this.applyOnce(collection, id, eventId, update),
      isApplied: async (collection, id, eventId) =>
        (await this.projection(collection).findOne({_id: id, [APPLIED_FIELD]: eventId} as Filter<ProjDoc>, {projection: {_id: 1}})) !== null,
      drop: async (collection) => {
        try {
          await this.projection(collection).drop()
        } catch (error) {
          // Dropping a collection that does not exist is not an error for us (older servers say 26).
          if (!isNamespaceNotFound(error)) throw error
        }
      },
    }
    this.handled = {
      of: async (eventIds) =>
        eventIds.length === 0 ? [] : ((await this.handledCollection.find({event_id: {$in: [...eventIds]}}, {projection: {_id: 0}}).toArray()) as HandledRecord[]),
      completed: async (group, eventIds) => {
        if (eventIds.length === 0) return new Set()
        const found = await this.handledCollection.find({_id: {$in: eventIds.map((id) => handledId(id, group))}}, {projection: {event_id: 1}}).toArray()
        return new Set(found.map((doc) => doc.event_id))
      },
    }
    this.dlq = {
      add: async (record) => {
        // $setOnInsert keeps the first insertion position, so list() stays in dead-letter order.
        await this.dlqCollection.updateOne(
          {_id: record.id},
          {$set: {...record}, $setOnInsert: {_seq: this.nextSeq()}},
          {upsert: true},
        )
      },
      list: async (filter = {}) => {
        const cursor = this.dlqCollection.find(dlqFilter(filter), {projection: {_id: 0, _seq: 0}}).sort({_seq: 1})
        if (filter.limit !== undefined) cursor.limit(filter.limit)
        return (await cursor.toArray()) as DlqRecord[]
      },
      get: async (id) => (await this.dlqCollection.findOne({_id: id}, {projection: {_id: 0, _seq: 0}})) as DlqRecord | null,
      remove: async (ids) => {
        if (ids.length === 0) return 0
        return (await this.dlqCollection.deleteMany({_id: {$in: [...ids]}})).deletedCount
      },
      count: (filter = {}) => this.dlqCollection.countDocuments(dlqFilter(filter)),
    }
  }

  /** Creates the indexes the queries use. Idempotent (same name and options each time). */
  async ensureIndexes(): Promise<void> {
    await this.eventsCollection.createIndexes([
      {key: {seq: 1}, name: 'seq'},
      {key: {event_type: 1, seq: 1}, name: 'event_type_seq'},
      {key: {ts_ms: 1, seq: 1}, name: 'ts_seq'},
      {key: {'metadata.aggregate_id': 1, seq: 1}, name: 'aggregate_seq'},
      {key: {correlation_id: 1, seq: 1}, name: 'correlation_seq'},
      // The outbox: only unpublished events are indexed, so the index stays as small as the backlog.
      {key: {published: 1, seq: 1}, name: 'outbox', partialFilterExpression: {published: false}},
    ])
    await this.handledCollection.createIndexes([{key: {event_id: 1}, name: 'event_id'}])
    await this.dlqCollection.createIndexes([
      {key: {_seq: 1}, name: 'seq'},
      {key: {group: 1, _seq: 1}, name: 'group_seq'},
      {key: {event_type: 1, _seq: 1}, name: 'type_seq'},
    ])
  }

  /**
   * In order: projections, then events, then handled records (the group's ledger). A
   * crash part way leaves effects without their record (the redelivery is guarded per document by
   * applyOnce), never a record without its effects.
   */
  async commit(writes: StoreWrites): Promise<CommitResult> {
    // Without transactions this look and the writes below are not atomic: best effort.
    const handled = writes.handled ?? []
    const first = handled.filter((r) => !r.again)
    if (first.length > 0) {
      // A unit is one group's: its ledger answers for all of them in one query.
      const held = await this.handled.completed(first[0]!.group, first.map((r) => r.event_id))
      const taken = first.filter((r) => held.has(r.event_id))
      if (taken.length > 0) throw handledConflict(taken)
    }
    for (const {collection, id, update, eventId} of writes.projections ?? []) {
      if (eventId === undefined) await this.projections.update(collection, id, update)
      else await this.applyOnce(collection, id, eventId, update)
    }
    const {inserted} = writes.events?.length ? await this.append(writes.events) : {inserted: 0}
    if (handled.length > 0) await this.writeHandled(handled.map(({group, event_id, handled_at, attempts}) => ({group, event_id, handled_at, attempts})))
    return {inserted}
  }

  private async writeHandled(handled: readonly HandledRecord[]): Promise<void> {
    await this.handledCollection.bulkWrite(
      handled.map((r) => ({replaceOne: {filter: {_id: handledId(r.event_id, r.group)}, replacement: {...r, _id: handledId(r.event_id, r.group)}, upsert: true}})),
      {ordered: false},
    )
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.ownsClient) await this.client.close()
  }

  // ---------------------------------------------------------------------------------- events

  /** Strictly increasing within this store; follows the clock so separate processes interleave by time. */
  private nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, this.now() * 1_000)
    return this.lastSeq
  }

  /** `published`: restore's events go in marked published (never into the outbox). */
  private async append(all: readonly EventEnvelope[], published?: (event: EventEnvelope) => {published: true; published_at: number}): Promise<AppendResult> {
    if (all.length === 0) return {inserted: 0, duplicates: [], conflicts: []}
    // Archived ids are duplicates (their content is in the archive, not here to compare). Without
    // transactions an archive run between this look and the insert can still let one in.
    const archived = new Set((await this.archivedIds.find({_id: {$in: all.map((e) => e.event_id)}}, {projection: {_id: 1}}).toArray()).map((d) => d._id))
    const events = archived.size === 0 ? all : all.filter((e) => !archived.has(e.event_id))
    const result = await this.insertEvents(events, published)
    if (archived.size > 0) result.duplicates.push(...all.filter((e) => archived.has(e.event_id)).map((e) => e.event_id))
    return result
  }

  private async insertEvents(events: readonly EventEnvelope[], published?: (event: EventEnvelope) => {published: true; published_at: number}): Promise<AppendResult> {
    if (events.length === 0) return {inserted: 0, duplicates: [], conflicts: []}
    const appendedAt = this.now()
    const docs: EventDoc[] = events.map((event) => {
      const ts = Date.parse(event.timestamp)
      if (Number.isNaN(ts)) throw new Error(`Event ${event.event_id} has an invalid timestamp "${event.timestamp}"`)
      return {
        ...event,
        _id: event.event_id,
        seq: this.nextSeq(),
        appended_at: appendedAt,
        ts_ms: ts,
        published: false,
        lease_until: 0,
        lease_owner: null,
        lease_token: null,
        ...published?.(event),
      }
    })
    try {
      await this.eventsCollection.insertMany(docs, {ordered: false})
      return {inserted: docs.length, duplicates: [], conflicts: []}
    } catch (error) {
      tooLargeForBson(docs, error)
      const writeErrors = bulkWriteErrors(error)
      if (writeErrors === null || writeErrors.some((e) => e.code !== DUPLICATE_KEY)) throw error
      const known = writeErrors.map((e) => events[e.index])
      // Counted from the errors: the inserted count some servers report with errors is unreliable.
      const inserted = docs.length - known.length
      // What the store holds for each, to tell a true duplicate from an id reused for other content.
      const stored = new Map<string, EventEnvelope>()
      const found = this.eventsCollection.find({_id: {$in: [...new Set(known.map((e) => e.event_id))]}}, {projection: EVENT_PROJECTION})
      for await (const doc of found) stored.set(String(doc.event_id), doc as unknown as EventEnvelope)
      const duplicates: string[] = []
      const conflicts: string[] = []
      for (const event of known) {
        const held = stored.get(event.event_id)
        if (held && !sameEnvelope(held, event)) conflicts.push(event.event_id)
        else duplicates.push(event.event_id)
      }
      return {inserted, duplicates, conflicts}
    }
  }

  /** Published events in append order (seq); published_at 0 for those marked before it was recorded. */
  private async *published(sinceMs: number): AsyncGenerator<PublishedEvent> {
    const filter: Filter<EventDoc> = sinceMs > 0 ? {published: true, published_at: {$gte: sinceMs}} : {published: true}
    const cursor = this.eventsCollection.find(filter).sort({seq: 1}).batchSize(this.batchSize)
    for await (const doc of cursor) {
      const at = typeof doc.published_at === 'number' ? doc.published_at : 0
      const event = envelopeOf(doc)
      yield {event, publishedAt: at}
    }
  }

  private async *query(query: EventQuery): AsyncGenerator<EventEnvelope> {
    const direction = query.order === 'desc' ? -1 : 1
    const cursor = this.eventsCollection.find(eventFilter(query), {
      projection: EVENT_PROJECTION,
      sort: {seq: direction},
      batchSize: this.batchSize,
      ...(query.limit === undefined ? {} : {limit: query.limit}),
    })
    try {
      for await (const doc of cursor) yield doc as EventEnvelope
    } finally {
      // Also runs when the caller stops early: the server-side cursor is released.
      await cursor.close()
    }
  }

  // ---------------------------------------------------------------------------------- outbox

  /**
   * Leases unpublished events oldest first. Without a transaction: pick candidates, lease them with a
   * conditional updateMany (only those still unleased), then read back what carries this call's
   * lease token, so two relays never both get one event. Candidates another relay took in between
   * are simply skipped and the next round picks further ones, up to `limit`.
   */
  private async claim({owner, limit, leaseMs}: {owner: string; limit: number; leaseMs: number}): Promise<EventEnvelope[]> {
    if (limit <= 0) return []
    const token = randomUUID()
    const mine: string[] = []
    for (let round = 0; round < 100 && mine.length < limit; round++) {
      const now = this.now()
      // Aggregates another claimer holds a live lease on are skipped whole (their later events must
      // not overtake the earlier ones); without transactions two claimers racing here can still
      // both pass this check.
      const heldElsewhere = await this.eventsCollection.distinct('metadata.aggregate_id', {published: false, lease_until: {$gte: now}, lease_owner: {$ne: owner}})
      const candidates = await this.eventsCollection
        .find(
          {published: false, lease_until: {$lt: now}, _id: {$nin: mine}, ...(heldElsewhere.length > 0 ? {'metadata.aggregate_id': {$nin: heldElsewhere}} : {})},
          {projection: {_id: 1}},
        )
        .sort({seq: 1})
        .limit(limit - mine.length)
        .toArray()
      if (candidates.length === 0) break
      const ids = candidates.map((c) => c._id)
      const result = await this.eventsCollection.updateMany(
        {_id: {$in: ids}, published: false, lease_until: {$lt: now}},
        {$set: {lease_until: now + leaseMs, lease_owner: owner, lease_token: token}},
      )
      if (result.modifiedCount === 0) continue
      const held = await this.eventsCollection
        .find({_id: {$in: ids}, lease_token: token}, {projection: {_id: 1}})
        .toArray()
      mine.push(...held.map((h) => h._id))
    }
    if (mine.length === 0) return []
    const docs = await this.eventsCollection
      .find({_id: {$in: mine}, lease_token: token}, {projection: EVENT_PROJECTION})
      .sort({seq: 1})
      .toArray()
    return docs as EventEnvelope[]
  }

  // ----------------------------------------------------------------------------- projections

  private projection(name: string): Collection<ProjDoc> {
    if (name === '' || /[$\0]/.test(name)) throw new Error(`Invalid projection collection name "${name}"`)
    return this.db.collection<ProjDoc>(`proj_${name}`)
  }

  private async updateProjection(collection: string, id: string, update: ProjectionUpdate): Promise<void> {
    const translated = toMongoUpdate(update)
    if (Object.keys(translated).length === 0) {
      // No operator: the upsert still creates the document (MongoDB rejects an empty update).
      try {
        await this.projection(collection).insertOne({_id: id})
      } catch (error) {
        if (!isDuplicateKey(error)) throw error
      }
      return
    }
    // Two upserts of a new document can race to insert it; a server older than 4.2 does not retry
    // that itself, so the loser tries once more (the document now exists and is updated in place).
    for (let attempt = 0; ; attempt++) {
      try {
        await this.projection(collection).updateOne({_id: id}, translated, {upsert: true})
        return
      } catch (error) {
        if (!isDuplicateKey(error) || attempt >= 3) throw error
      }
    }
  }

  /**
   * The guard (`_applied` does not hold eventId) and the change are one document write. When the
   * upsert's insert hits a duplicate key, either the event was applied (false), or another writer
   * created the document first for a different event: then the update is retried on it.
   */
  private async applyOnce(collection: string, id: string, eventId: string, update: ProjectionUpdate): Promise<boolean> {
    const translated = toMongoUpdate(update)
    const push = (translated.$push ?? {}) as Record<string, unknown>
    const guarded = {
      ...translated,
      $push: {...push, [APPLIED_FIELD]: {$each: [eventId], $slice: -APPLIED_LIMIT}},
    } as unknown as UpdateFilter<ProjDoc>
    const coll = this.projection(collection)
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const result = await coll.updateOne({_id: id, [APPLIED_FIELD]: {$ne: eventId}} as Filter<ProjDoc>, guarded, {upsert: true})
        return result.matchedCount + result.upsertedCount > 0
      } catch (error) {
        if (!isDuplicateKey(error)) throw error
      }
      if (await coll.findOne({_id: id, [APPLIED_FIELD]: eventId} as Filter<ProjDoc>, {projection: {_id: 1}})) return false
    }
    throw new Error(`applyOnce(${collection}, ${id}, ${eventId}) kept conflicting with concurrent writers`)
  }
}

// ---------------------------------------------------------------------------------- helpers

/** The envelope of a stored event document, its internal fields left out. */
function envelopeOf(doc: EventDoc): EventEnvelope {
  return Object.fromEntries(Object.entries(doc).filter(([key]) => !(EVENT_INTERNAL as readonly string[]).includes(key))) as unknown as EventEnvelope
}

function eventFilter(query: EventQuery): Filter<EventDoc> {
  const filter: Filter<EventDoc> = {}
  const and: Filter<EventDoc>[] = []
  if (query.types && query.types.length > 0) {
    const exact = query.types.filter((t) => !/[*?]/.test(t)).map((t) => t.trim())
    const globs = query.types.filter((t) => /[*?]/.test(t))
    const byType: Filter<EventDoc>[] = []
    if (exact.length > 0) byType.push({event_type: {$in: exact}})
    if (globs.length > 0) byType.push({event_type: {$regex: typeGlobsToRegExpSource(globs)}})
    and.push(byType.length === 1 ? byType[0] : {$or: byType})
  }
  if (query.from !== undefined || query.to !== undefined) {
    const range: {$gte?: number; $lt?: number} = {}
    if (query.from !== undefined) range.$gte = toMs(query.from)
    if (query.to !== undefined) range.$lt = toMs(query.to)
    filter.ts_ms = range
  }
  if (query.aggregateId !== undefined) filter['metadata.aggregate_id'] = query.aggregateId
  if (query.correlationId !== undefined) filter.correlation_id = query.correlationId
  if (and.length === 1) Object.assign(filter, and[0])
  return filter
}

function toMs(value: string | number): number {
  const ms = typeof value === 'number' ? value : Date.parse(value)
  if (Number.isNaN(ms)) throw new Error(`Invalid time bound "${value}"`)
  return ms
}

/** Every value is matched with $eq, so a filter value can never smuggle in an operator. */
function equalityFilter(filter: Record<string, unknown> | undefined): Filter<ProjDoc> {
  const out: Record<string, unknown> = {}
  for (const [path, value] of Object.entries(filter ?? {})) {
    if (path.startsWith('$')) throw new Error(`Projection filters are equality only: "${path}" is not a field`)
    out[path] = {$eq: value}
  }
  return out as Filter<ProjDoc>
}

/** ProjectionUpdate to MongoDB update operators; empty operators are left out (older servers reject them). */
export function toMongoUpdate(update: ProjectionUpdate): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  const touchesApplied = (fields: Record<string, unknown>) =>
    Object.keys(fields).some((path) => path === APPLIED_FIELD || path.startsWith(`${APPLIED_FIELD}.`))
  for (const [operator, fields] of Object.entries(update) as Array<[keyof ProjectionUpdate, Record<string, unknown> | undefined]>) {
    if (!fields || Object.keys(fields).length === 0) continue
    if (touchesApplied(fields)) throw new Error(`"${APPLIED_FIELD}" is reserved for applyOnce bookkeeping`)
    switch (operator) {
      case '$unset':
        out.$unset = Object.fromEntries(Object.keys(fields).map((path) => [path, '']))
        break
      case '$push':
        out.$push = Object.fromEntries(
          Object.entries(fields as NonNullable<ProjectionUpdate['$push']>).map(([path, {each, slice}]) => [
            path,
            slice === undefined ? {$each: each} : {$each: each, $slice: slice},
          ]),
        )
        break
      case '$set':
      case '$setOnInsert':
      case '$inc':
      case '$max':
      case '$min':
      case '$addToSet':
        out[operator] = {...fields}
        break
      default:
        throw new Error(`Unsupported projection update operator "${String(operator)}"`)
    }
  }
  return out
}

function dlqFilter(filter: {group?: string; type?: string}): Filter<DlqDoc> {
  const out: Filter<DlqDoc> = {}
  if (filter.group !== undefined) out.group = filter.group
  if (filter.type !== undefined) out.event_type = filter.type
  return out
}

function bulkWriteErrors(error: unknown): Array<{index: number; code: number}> | null {
  if (typeof error !== 'object' || error === null || !('writeErrors' in error)) return null
  const raw = (error as {writeErrors: unknown}).writeErrors
  const list = Array.isArray(raw) ? raw : raw ? [raw] : []
  return list.map((e: {index: number; code: number}) => ({index: e.index, code: e.code}))
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as {code?: unknown}).code === DUPLICATE_KEY
}

function isNamespaceNotFound(error: unknown): boolean {
  const e = error as {code?: unknown; message?: unknown}
  return e?.code === 26 || /ns not found/i.test(String(e?.message ?? ''))
}

function driverMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** MongoDB's document limit (maxBsonObjectSize). */
const MAX_BSON_BYTES = 16 * 1024 * 1024

/**
 * Over 16 MiB the driver fails while serializing, with a RangeError ("The value of "offset" is out of
 * range") or a BSONError that names no event. The publisher's size limit keeps such events out; one
 * that came another way is named here, as EVENT_TOO_LARGE. Sizes are computed only after a failure.
 */
function tooLargeForBson(docs: readonly EventDoc[], error: unknown): void {
  const name = (error as Error)?.name
  if (!(error instanceof RangeError) && name !== 'BSONError' && !/larger than the maximum|maxBsonObjectSize/i.test(String((error as Error)?.message))) return
  for (const doc of docs) {
    let bytes: number
    try {
      bytes = BSON.calculateObjectSize(doc)
    } catch {
      continue
    }
    if (bytes > MAX_BSON_BYTES) {
      throw new RuntimeError(`Event ${doc._id} (${doc.event_type}) is ${bytes.toLocaleString('en-US')} bytes as BSON; MongoDB stores documents up to 16 MiB (16,777,216 bytes)`, {
        code: 'EVENT_TOO_LARGE',
        details: {event_id: doc._id, event_type: doc.event_type, bytes, limit: MAX_BSON_BYTES},
        cause: error,
      })
    }
  }
}

/** A handled record's _id: one per event and group. */
function handledId(eventId: string, group: string): string {
  return `${eventId}:${group}`
}
