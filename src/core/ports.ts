/**
 * The runtime's ports. No vendor type crosses these interfaces: adapters (in-process, Redis,
 * MongoDB, later Kafka) own their connections and translate. Each port has one contract suite in
 * test/contracts/ that runs unchanged against every adapter.
 */
import type {ErrorContract, EventEnvelope} from './envelope.js'

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/** Real time by default; a virtual clock lets retries, streaks and retention run without waiting. */
export interface Clock {
  /** Milliseconds since the epoch, in this clock's time. */
  now(): number
  /** Resolves after `ms` of this clock's time; rejects with an AbortError when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Bus
// ---------------------------------------------------------------------------------------------

export interface TopicSpec {
  /** e.g. "tektree.knowledge" (one topic per domain, see README "Stream layout"). */
  name: string
  /** Messages are routed to a partition by hash(key); order is kept within a partition. */
  partitions: number
  /** Trimming policy from the catalog's retention table; absent = keep everything. */
  retention?: {maxAgeMs?: number; maxLen?: number}
}

export interface OutgoingMessage {
  topic: string
  /** Partition key: the aggregate id. */
  key: string
  /** The serialized envelope. The bus never parses it (poison pills must reach the runner intact). */
  value: string
  /** Small routing hints: event_type, event_id, published_at (ms). */
  headers: Record<string, string>
}

export interface Delivery {
  /** Transport id: stream entry id (Redis), offset (Kafka), sequence (in-process). */
  id: string
  topic: string
  partition: number
  key: string
  value: string
  headers: Record<string, string>
  /** 1 on first delivery; incremented on every redelivery. */
  deliveryCount: number
  /** When the bus accepted the message (ms since epoch, wall clock). */
  enqueuedAt: number
}

export interface SubscribeOptions {
  group: string
  /** Unique per consumer instance (e.g. `${hostname}-${pid}-${n}`). */
  consumer: string
  topics: string[]
  /** Most deliveries one next() returns. */
  batchSize?: number
  /** How long next() may wait for messages before returning []. */
  blockMs?: number
  /** Unacked deliveries older than this are delivered again (to the partition's current owner). */
  visibilityTimeoutMs?: number
  /** Where a new group starts: the beginning of the topic (default) or only new messages. */
  startFrom?: 'earliest' | 'latest'
}

/**
 * One consumer's membership in a group. Within a group each partition is owned by at most one
 * consumer at a time (this is what keeps per-aggregate order while a group is scaled out); ownership
 * rebalances when consumers join or leave (a dead consumer's partitions move after its lease expires).
 */
export interface Subscription {
  /** Waits up to blockMs; returns [] when idle. Deliveries of one partition come in order. */
  next(signal?: AbortSignal): Promise<Delivery[]>
  ack(deliveries: readonly Delivery[]): Promise<void>
  /**
   * Still working on these (a handler running long, a retry waiting, events queued behind it): they
   * are not redelivered for another visibility timeout, and no delivery is counted (SQS's
   * ChangeMessageVisibility, BullMQ's extendLock). Deliveries this consumer no longer holds (their
   * partition went to another) are left alone.
   */
  extend(deliveries: readonly Delivery[]): Promise<void>
  /**
   * Done with these for now, unacked: they are delivered again (and counted) as soon as this
   * consumer fetches, not after their visibility timeout (SQS's ChangeMessageVisibility to 0, a
   * nack). Deliveries this consumer no longer holds, or holds as a later delivery (a copy
   * handed out again meanwhile, `deliveryCount` higher), are left alone.
   */
  release(deliveries: readonly Delivery[]): Promise<void>
  /**
   * Keeps this consumer's membership and partitions while it does not fetch (Kafka's paused poll):
   * a consumer holding a full buffer still owns what it holds. One that neither fetches nor beats
   * for the session timeout is taken for dead and loses its partitions.
   */
  heartbeat(): Promise<void>
  /** Partitions this consumer currently owns. */
  assignment(): ReadonlyArray<{topic: string; partition: number}>
  /** Leaves the group; unacked deliveries stay pending for the next owner. */
  close(): Promise<void>
}

export interface ConsumerInfo {
  name: string
  pending: number
  idleMs: number
  /**
   * A member of the group now (its heartbeats hold), as against one gone that still holds pending
   * entries. Idle time alone cannot tell: a live consumer of a quiet topic is idle for minutes.
   */
  live: boolean
}

export interface PartitionStats {
  partition: number
  /** Messages not yet delivered to the group. */
  lag: number
  /** Delivered, not acked. */
  pending: number
  /** How long the oldest pending message has waited since it was last delivered. */
  oldestPendingAgeMs: number | null
  /** The consumer that owns the partition now (its lease), or null. */
  owner: string | null
  /** Messages the group acked on this partition, ever: a counter (a rate is two readings apart); null when the bus cannot tell. */
  acked: number | null
}

export interface GroupStats {
  group: string
  topic: string
  /** Messages not yet delivered to the group. */
  lag: number
  /** Delivered, not acked. */
  pending: number
  oldestPendingAgeMs: number | null
  consumers: ConsumerInfo[]
  /** The same per partition, in partition order. */
  partitions: PartitionStats[]
  /** Sum of the partitions' acked counters; null when any is unknown. */
  acked: number | null
}

export interface BusEventId {
  /** Transport id (pass back as afterId to page on). */
  id: string
  eventId: string | null
  /** When the bus accepted it (ms since epoch, the bus's clock). */
  enqueuedAt: number
}

export interface TopicInfo {
  name: string
  partitions: number
  /** Messages currently retained. */
  length: number
  groups: string[]
  /** Messages ever appended (a counter: a rate is two readings apart); null when the bus cannot tell. */
  appended: number | null
  /** Enqueue time (ms) of the oldest and newest retained message; null when empty. */
  firstAt: number | null
  lastAt: number | null
  retention?: {maxAgeMs?: number; maxLen?: number}
}

export interface Bus {
  /** "memory" | "redis" | "kafka" */
  readonly kind: string
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>
  /**
   * Returns the transport ids, in order. Batches are pipelined; a batch is not atomic. A batch naming
   * a topic never ensured is refused whole, before anything is written, with an error marked
   * `retriable: false` (UnknownTopicError): the outbox relay tells that from a bus that is down.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<string[]>
  subscribe(options: SubscribeOptions): Promise<Subscription>
  stats(filter?: {group?: string; topic?: string}): Promise<GroupStats[]>
  topics(): Promise<TopicInfo[]>
  /** Reads outside any group (tail, inspection): entries after `afterId` (exclusive; null = from start). */
  read(topic: string, partition: number, afterId: string | null, count: number): Promise<Delivery[]>
  /**
   * A cursor for read(): after it come the entries enqueued at or after `at` (ms), or, with 'end',
   * only those appended from now on. Null = from the start.
   */
  positionAt(topic: string, partition: number, at: number | 'end'): Promise<string | null>
  /** Applies a retention policy now; returns how many entries were removed. */
  trim(topic: string, policy: {maxAgeMs?: number; maxLen?: number}): Promise<number>
  /**
   * The event ids one partition holds, oldest first: a page of up to `count` entries after `afterId`
   * (exclusive), or else from the first entry enqueued at or after `sinceMs`, or else from the oldest
   * retained. `eventId` is the message's event_id header (null without one: a poison pill). For
   * reconcile, which compares what the store marked published with what the bus kept.
   */
  eventIds(topic: string, partition: number, options: {afterId?: string | null; sinceMs?: number; count: number}): Promise<BusEventId[]>
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

export interface EventQuery {
  /** Event type globs ("knowledge.*", "social.content.liked"). */
  types?: string[]
  /** Inclusive lower bound on the envelope timestamp (ISO string or ms). */
  from?: string | number
  /** Exclusive upper bound. */
  to?: string | number
  aggregateId?: string
  correlationId?: string
  limit?: number
  /** Append order (default "asc"). */
  order?: 'asc' | 'desc'
}

export interface AppendResult {
  inserted: number
  /** event_ids already present with the same content (append is idempotent by event_id). */
  duplicates: string[]
  /**
   * event_ids already present with OTHER content (canonical JSON of the envelope differs): not
   * appended, as duplicates are not, but a producer reusing an id for another event is a bug to report.
   */
  conflicts: string[]
}

export interface EventStore {
  /** Appends in order; every inserted event also enters the outbox (same document, no transaction). */
  append(events: readonly EventEnvelope[]): Promise<AppendResult>
  get(eventId: string): Promise<EventEnvelope | null>
  /** A streaming cursor: memory stays flat however many events match. */
  query(query: EventQuery): AsyncIterable<EventEnvelope>
  count(query?: EventQuery): Promise<number>
  /**
   * What archive takes out with each event (ids the store does not hold are left out): when the
   * outbox marked it published, and every group's handled record of it.
   */
  records(eventIds: readonly string[]): Promise<StoredEventRecord[]>
  /**
   * Removes events (archive, once their archive file is durable): the event, its outbox entry (or
   * quarantine) and its handled records. Ids not held are skipped; returns how many were removed.
   * A removed event's id stays known: appending it again is a duplicate, as before the removal. An
   * id is an idempotency key (a threshold event's, `identity`, is derived from what it announces,
   * and is emitted again whenever that is seen again), so forgetting it would let the event in twice.
   */
  remove(eventIds: readonly string[]): Promise<number>
  /**
   * Puts archived events back (their ids known again as events), as already published: they never enter the outbox, so the relay
   * never sends them to the bus again. Idempotent by event_id as append is (duplicates, conflicts).
   * Their handled records come back with them; published_at is kept (null: marked published now).
   * A restored event takes a new place at the end of the append order.
   */
  restore(records: readonly StoredEventRecord[]): Promise<AppendResult>
}

/** An event with what the store keeps beside it: what archive writes and restore puts back. */
export interface StoredEventRecord {
  event: EventEnvelope
  /** When it was marked published (ms; 0 = before the store recorded it); null = not published (in the outbox or quarantined). */
  published_at: number | null
  handled: HandledRecord[]
}

/** Why the relay gave up on an event: given to Outbox.quarantine. */
export interface QuarantineEntry {
  event_id: string
  /** The last failure's error contract. */
  error: ErrorContract
  attempts: number
  first_failure_at: string
  last_failure_at: string
}

/** An outbox entry the relay could not publish, set aside (the outbox's DLQ). */
export interface QuarantineRecord extends QuarantineEntry {
  event_type: string
  quarantined_at: string
  envelope: EventEnvelope
}

export interface Outbox {
  /** Leases up to `limit` unpublished events, oldest first, for `leaseMs`; others cannot claim them meanwhile. */
  claim(options: {owner: string; limit: number; leaseMs: number}): Promise<EventEnvelope[]>
  markPublished(eventIds: readonly string[]): Promise<void>
  /** Unpublished events (claimed or not); quarantined ones are not counted. */
  pending(): Promise<number>
  /**
   * Takes unpublished events out of the outbox with why they could not be published: no claim
   * returns them and pending() leaves them out until release(). Events already published (or not
   * there) are skipped; returns how many were quarantined.
   */
  quarantine(entries: readonly QuarantineEntry[]): Promise<number>
  /** Quarantined events, in append order. */
  quarantined(filter?: {limit?: number}): Promise<QuarantineRecord[]>
  countQuarantined(): Promise<number>
  /** Puts quarantined events back into the outbox (to be claimed again); returns how many. */
  release(eventIds: readonly string[]): Promise<number>
  /**
   * Events marked published, in append order, with when they were marked (ms, the store's clock;
   * 0 for events marked before the store recorded it), from `sinceMs` on. A streaming cursor, as
   * query() is: what reconcile checks against the bus.
   */
  published(options?: {sinceMs?: number}): AsyncIterable<PublishedEvent>
}

export interface PublishedEvent {
  event: EventEnvelope
  publishedAt: number
}

/** Update operators, a portable subset of MongoDB's. Dotted paths address nested fields. */
export interface ProjectionUpdate {
  $set?: Record<string, unknown>
  $setOnInsert?: Record<string, unknown>
  $inc?: Record<string, number>
  $max?: Record<string, number | string>
  $min?: Record<string, number | string>
  $addToSet?: Record<string, unknown>
  /** Appends, keeping only the last `slice` items when slice is given (negative, as in MongoDB). */
  $push?: Record<string, {each: unknown[]; slice?: number}>
  $unset?: Record<string, true>
}

export type ProjectionDoc = {_id: string} & Record<string, unknown>

/** A document as read for a decision, with the version a commit can expect (StoreWrites.expect). */
export interface VersionedDoc {
  doc: ProjectionDoc | null
  /** 0 when the document does not exist. */
  version: number
}

/** A commit's condition: the document is still at `version` (nobody else wrote it since it was read). */
export interface ExpectedVersion {
  collection: string
  id: string
  version: number
}

export interface ProjectionStore {
  get(collection: string, id: string): Promise<ProjectionDoc | null>
  /** Equality filter on top-level or dotted fields; sort by one field. */
  find(
    collection: string,
    filter?: Record<string, unknown>,
    options?: {limit?: number; sort?: {field: string; order: 'asc' | 'desc'}},
  ): Promise<ProjectionDoc[]>
  count(collection: string, filter?: Record<string, unknown>): Promise<number>
  /** Upsert. */
  update(collection: string, id: string, update: ProjectionUpdate): Promise<void>
  /**
   * Upsert applied at most once per eventId for this document: the guard and the change are one
   * atomic document write, so a redelivered event can never apply twice. False when already applied.
   */
  applyOnce(collection: string, id: string, eventId: string, update: ProjectionUpdate): Promise<boolean>
  /** Whether applyOnce (or a commit) applied `eventId` to this document (within its last 256). */
  isApplied(collection: string, id: string, eventId: string): Promise<boolean>
  /** Removes every document of a collection (tests, replay from scratch). */
  drop(collection: string): Promise<void>
  /**
   * get() with the document's version: every commit() that names the document, and every update()
   * or applyOnce() of it, adds one, whether or not a guard skipped the change. Offered by the
   * stores whose commit() checks StoreWrites.expect (the transactional ones).
   */
  getVersioned?(collection: string, id: string): Promise<VersionedDoc>
}

export interface DlqRecord {
  /** `${group}:${event_id}` (or `${group}:${topic}/${partition}/${delivery id}` when the event could not be parsed: transport ids are unique per partition only). */
  id: string
  group: string
  event_id: string | null
  event_type: string | null
  topic: string
  partition: number
  delivery_id: string
  error: ErrorContract
  attempts: number
  first_failure_at: string
  last_failure_at: string
  dead_lettered_at: string
  /** The original bytes, so a poison pill can be inspected exactly as it arrived. */
  raw: string
  /** The parsed envelope when it could be parsed. */
  envelope: EventEnvelope | null
}

export interface DlqStore {
  /** Idempotent by id: a re-added record replaces the old one (a crash may add it twice). */
  add(record: DlqRecord): Promise<void>
  list(filter?: {group?: string; type?: string; limit?: number}): Promise<DlqRecord[]>
  get(id: string): Promise<DlqRecord | null>
  remove(ids: readonly string[]): Promise<number>
  count(filter?: {group?: string; type?: string}): Promise<number>
}

/**
 * One unit of work: a consumer batch's projection writes, the events its handlers derived and the
 * group's handled records (its ledger). commit() applies them together (Marten's async daemon,
 * Kafka Streams' EOS): all or nothing where the store has transactions, so a crash can never leave
 * effects without their record, or a record without its effects.
 */
export interface StoreWrites {
  /** Appended as events.append does (idempotent by event_id; each inserted event enters the outbox). */
  events?: readonly EventEnvelope[]
  /** Applied in order; with `eventId` as applyOnce (skipped where the document already holds it). */
  projections?: ReadonlyArray<{collection: string; id: string; update: ProjectionUpdate; eventId?: string}>
  /**
   * Which group handled which event, kept as long as the event: trace reads them, and they are the
   * group's ledger (HandledLog.completed). Exclusive unless `again`: the commit applies nothing and
   * rejects with CommitConflictError when the group already holds a record of one of these events:
   * another consumer of the group completed it meanwhile (this one lost its partition while it
   * worked: a pause, a stop), and applying its writes again would count them twice wherever a
   * per-document guard has forgotten the event (it keeps the last 256 ids). `again` (a replay,
   * handled again on purpose) replaces the record.
   */
  handled?: readonly HandledWrite[]
  /**
   * Optimistic concurrency (Marten's, EventStoreDB's expected version): the commit applies nothing
   * and rejects with StaleReadError when a document is no longer at the version given. A handler
   * decided from what it read (a threshold crossed, a level reached); another process that wrote
   * the document meanwhile made that decision stale. Checked by a store that offers getVersioned.
   */
  expect?: readonly ExpectedVersion[]
}

/** A group completed an event: when, after how many attempts. */
export interface HandledRecord {
  group: string
  event_id: string
  handled_at: string
  attempts: number
}

/** A HandledRecord as a unit of work writes it. */
export interface HandledWrite extends HandledRecord {
  /** Handled again on purpose (a replay): replaces the group's record instead of conflicting. */
  again?: boolean
}

/** The durable record of handled events, kept as long as the events. */
export interface HandledLog {
  /** Every group's record of these events. */
  of(eventIds: readonly string[]): Promise<HandledRecord[]>
  /** Which of these events `group` has completed: the group's ledger, read once per batch. */
  completed(group: string, eventIds: readonly string[]): Promise<Set<string>>
}

export interface CommitResult {
  /** Events newly appended (duplicates by event_id are dropped, as append drops them). */
  inserted: number
}

export interface Store {
  /** "memory" | "sqlite" | "mongodb" */
  readonly kind: string
  /**
   * True when commit() is all or nothing (SQLite, in-process). False where each write is atomic
   * only on its own (a standalone mongod): commit() then applies projections, events and marks in
   * that order, and the per-document applyOnce guards cover a crash in between.
   */
  readonly transactional: boolean
  readonly events: EventStore
  readonly outbox: Outbox
  readonly projections: ProjectionStore
  readonly dlq: DlqStore
  readonly handled: HandledLog
  /** Applies a unit of work; see StoreWrites and `transactional`. */
  commit(writes: StoreWrites): Promise<CommitResult>
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Leaderboards (Redis sorted sets, or the in-process equivalent)
// ---------------------------------------------------------------------------------------------

export interface LeaderboardEntry {
  member: string
  score: number
  /** 1-based. */
  rank: number
}

export interface Leaderboards {
  readonly kind: string
  /** ZINCRBY guarded by eventId, atomically: redelivery never adds twice. Null when already applied. */
  incrementOnce(board: string, member: string, delta: number, eventId: string): Promise<number | null>
  top(board: string, n: number): Promise<LeaderboardEntry[]>
  score(board: string, member: string): Promise<number | null>
  rank(board: string, member: string): Promise<number | null>
  boards(): Promise<string[]>
  drop(board: string): Promise<void>
  close(): Promise<void>
  /**
   * Only leaderboards kept in the store's projections (for a bus without sorted sets): the same
   * boards over `projections`, a consumer's unit of work on that store, so that its increments
   * commit with the unit, once, with the group's ledger, instead of applying at once under a guard
   * that remembers a member's last events only.
   */
  within?(projections: ProjectionStore): Leaderboards
}
