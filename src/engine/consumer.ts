/**
 * The consumer runner every service runs on, whatever the bus: subscribe as the service's consumer
 * group, filter, parse and validate, deduplicate, hand each event to the handler, retry, dead-letter,
 * ack. Services only write handle(event, ctx).
 *
 * Delivery is at-least-once, so effects are made idempotent in layers:
 *   1. a cache of event ids this runner completed (cheap skip of redeliveries and bus duplicates);
 *   2. the group's ledger in the store (its handled records, HandledLog.completed): every completed
 *      event, recorded with its effects before its ack, kept as long as the event and looked up once
 *      per fetched batch, so a duplicate that arrives after the cache forgot it, or at another
 *      consumer of the group, is still skipped;
 *   3. the (aggregate, sequence) guard of seed 004 when metadata.sequence is present;
 *   4. the handlers' own atomic guards (projections.applyOnce, leaderboards.incrementOnce by event id),
 *      which alone cover a crash between the effects and the ledger record on a store without
 *      transactions;
 *   5. derived events get deterministic ids (event-id.ts), so the store drops re-emits.
 *
 * Ordering: deliveries are grouped by key (the aggregate id) into lanes. Different keys run
 * concurrently (at most `concurrency` at once); one key runs strictly in order. A failing event
 * PARKS its lane while it waits for its retry: later events of that key wait behind it (this batch's
 * and later batches'), other keys go on. Fetching pauses while too many deliveries are buffered
 * (backpressure), so memory stays bounded however far behind the group is.
 *
 * Retries follow seed 000: immediately, after 10 s, after 60 s, then the DLQ (4 attempts in all),
 * slept on the runtime clock (a virtual clock makes them free). Poison pills (unparseable, invalid,
 * unknown type) go to the DLQ at once. The DLQ record is written BEFORE the ack: a crash in between
 * may re-add it (dlq.add is idempotent by id) but never loses the event.
 */
import {setMaxListeners} from 'node:events'
import {hostname} from 'node:os'
import type {Catalog, CatalogEvent} from '../catalog/types.js'
import type {EventValidator} from '../catalog/validate.js'
import {errorContract, type ErrorContract, type EventEnvelope} from '../core/envelope.js'
import {CommitConflictError, isAbortError, isNonRetryable, NonRetryableError, StaleReadError} from '../core/errors.js'
import {derivedEventId} from '../core/event-id.js'
import {pause} from '../core/pause.js'
import {compileTypeGlobs} from '../core/glob.js'
import type {RuntimeMetrics} from '../core/metrics.js'
import type {Bus, Clock, Delivery, DlqRecord, Leaderboards, Store, Subscription} from '../core/ports.js'
import type {Publisher} from './publisher.js'
import type {Runtime} from '../core/runtime.js'
import {directTopic, directTopicSpec, FIRST_FAILURE_HEADER, isForced, isReplayAgain, PRIOR_ATTEMPTS_HEADER, REDRIVE_HEADER, REPLAY_HEADER} from './direct.js'
import {HeldBehindFailures} from './held-behind-failures.js'
import {boardsWithoutGuardsOf, docKey, PendingUnits, WriteSet, type Segment, type Unit} from './unit-of-work.js'

export interface HandlerContext {
  readonly event: EventEnvelope
  readonly definition: CatalogEvent
  /** 1 on the first attempt, 2 on the first retry, ...; deliveries the bus made before count too. */
  readonly attempt: number
  /** The consumer group (the service's name). */
  readonly group: string
  /**
   * The store as this attempt sees it: projection writes are buffered and committed with the
   * group's handled record and the derived events in one unit of work (dropped if the handler throws);
   * get() sees the store plus every write of this runner not yet committed.
   */
  readonly store: Store
  /**
   * The leaderboards as they are: increments apply at once, each under its own guard (outside the
   * unit of work: an attempt that is later dead-lettered keeps what it added to a board). Kept in a
   * transactional store (a Kafka bus), they go into the unit of work with the store's writes.
   */
  readonly leaderboards: Leaderboards
  readonly clock: Clock
  /**
   * Derived event: causation_id = this event, same correlation_id and trace_id; its id is
   * deterministic (derivedEventId(this event, service, type, key ?? n-th emit of this type)) so a
   * redelivery re-emits the SAME ids and the store dedupes them. Appended after the handler
   * succeeds, before the ack. `key` names one emit among several of a type when their order may
   * vary between runs (e.g. the board id of a leaderboard update).
   *
   * `identity` is for threshold events that several causing events could each observe (level L
   * reached, achievement A unlocked): the id then depends on the identity alone, not on this
   * event, so however many handlers observe the threshold, concurrently or on redelivery, the
   * store keeps the first and drops the rest. Causation still names this event.
   */
  emit(type: string, payload: Record<string, unknown>, options?: {key?: string; identity?: string}): EventEnvelope
}

export interface ServiceDefinition {
  /** The consumer group. */
  name: string
  /** Event types or globs ("knowledge.*"); aliases match too. */
  consumes: string[]
  handle(event: EventEnvelope, ctx: HandlerContext): Promise<void> | void
}

export type RunnerEvent =
  | {type: 'subscribed'; group: string; consumer: string; topics: string[]}
  | {type: 'bus_error'; phase: 'subscribe' | 'fetch' | 'ack' | 'extend' | 'release' | 'close'; error: unknown; backoffMs?: number}
  | {type: 'retry'; eventId: string; eventType: string; attempt: number; delayMs: number; error: unknown}
  | {type: 'dead_lettered'; record: DlqRecord}
  | {type: 'store_error'; phase: 'dlq' | 'sequence' | 'ledger' | 'commit'; error: unknown; eventId: string | null}
  | {type: 'stopped'; reason: 'stop' | 'abort'}

export interface ConsumerOptions {
  /** Unique per instance; default `${service}-${hostname}-${pid}-${n}`. */
  consumer?: string
  batchSize?: number
  blockMs?: number
  visibilityTimeoutMs?: number
  /** Delay before each retry; attempts = length + 1. Default seed 000: [0, 10_000, 60_000]. */
  retryDelaysMs?: number[]
  /** Keys (lanes) running a handler at once. */
  concurrency?: number
  /** Fetching pauses while this many deliveries are buffered (queued, running or parked). */
  maxBuffered?: number
  /** Completed event ids remembered per runner, to skip redeliveries. */
  dedupeCacheSize?: number
  /** Validate derived events before appending (tests; the default trusts the handler). */
  validateEmitted?: boolean
  /** Where a new group starts. */
  startFrom?: 'earliest' | 'latest'
  /**
   * Aborting it is a CRASH: stop at once, ack nothing more, leave in-flight deliveries pending
   * (the group gets them again after the visibility timeout). Use stop() for a graceful end.
   */
  signal?: AbortSignal
  onEvent?: (event: RunnerEvent) => void
}

export interface ConsumerStats {
  group: string
  consumer: string
  /** Deliveries received from the bus (redeliveries of held ones excluded). */
  received: number
  /** Events whose handler succeeded (and whose derived events were appended). */
  handled: number
  acked: number
  /** Skipped as already done (cache, ledger or sequence guard); acked without handling. */
  duplicates: number
  /** Other event types on the subscribed topics; acked without handling. */
  skipped: number
  /** Redeliveries of deliveries still held here (parked for a retry), ignored. */
  ignoredRedeliveries: number
  retried: number
  deadLettered: number
  /** Handler attempts that threw. */
  failures: number
  /**
   * Events left out of a commit because another process wrote a document they read after they read
   * it (StaleReadError), or held back behind one that was: unacked, handled again when the bus
   * redelivers them.
   */
  staleReads: number
  busErrors: number
  /** Lanes running a handler now. */
  inFlight: number
  /** Lanes waiting for a retry. */
  parked: number
  /** Deliveries held in memory (queued, running, parked). */
  buffered: number
}

export interface ConsumerHandle {
  /**
   * Stops fetching, lets running handlers finish (and ack) along with what their lanes already
   * fetched, aborts retry waits (those deliveries stay unacked: the group gets them again), leaves
   * the group. A handler that never returns keeps stop() waiting: abort `signal` to crash out.
   */
  stop(): Promise<void>
  /** Resolves when the runner has ended (stop(), or the signal aborted). */
  readonly done: Promise<void>
  stats(): ConsumerStats
}

/** What the runner needs: a Runtime, or its parts (the simulator passes them flat). */
export type ConsumerDeps = {catalog: Catalog; validator: EventValidator; publisher: Publisher} & (
  | {runtime: Runtime}
  | {bus: Bus; store: Store; leaderboards: Leaderboards; clock: Clock; metrics?: RuntimeMetrics}
)

export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [0, 10_000, 60_000]

const MAX_BUS_BACKOFF_MS = 2_000
const EMPTY_SET: ReadonlySet<string> = new Set()

/** What the group's ledger said of a batch: the ids it holds, among those it was asked about. */
interface LedgerAnswer {
  completed: ReadonlySet<string>
  asked: ReadonlySet<string>
}
const NOTHING_ASKED: LedgerAnswer = {completed: EMPTY_SET, asked: EMPTY_SET}
let instanceSeq = 0

/**
 * Deliveries the bus counts that were no attempt of their event: it was handled, and left unacked
 * for the bus to bring again because its commit read a document another process wrote meanwhile
 * (STALE_READ) or because it waited behind another event's failure. Two processes of a group on
 * one hot document refuse each other's units again and again, and counted, those refusals sent
 * events that never failed to the DLQ (DELIVERY_ATTEMPTS_EXHAUSTED). Kept in this process only: a
 * crash loses them, and its deliveries count as attempts again, as they should. At most
 * MAX_FREE_DELIVERIES per event, so that two processes refusing each other for ever still end.
 */
class FreeDeliveries {
  private readonly counts = new Map<string, number>()

  leftBack(eventId: string): void {
    if (this.counts.size >= MAX_TRACKED_FREE && !this.counts.has(eventId)) this.counts.clear()
    this.counts.set(eventId, Math.min(MAX_FREE_DELIVERIES, (this.counts.get(eventId) ?? 0) + 1))
  }

  of(eventId: string): number {
    return this.counts.get(eventId) ?? 0
  }

  forget(eventId: string): void {
    this.counts.delete(eventId)
  }
}
const MAX_FREE_DELIVERIES = 16
const MAX_TRACKED_FREE = 10_000

/** One delivery's journey through the runner. */
interface Item {
  delivery: Delivery
  /** Parsed and validated once, kept across retries. */
  event?: EventEnvelope
  definition?: CatalogEvent
  /** Attempts so far, counting the bus's earlier deliveries (a consumer that crashed on it). */
  attempt: number
  /** The duplicate checks ran (once per delivery). */
  checked: boolean
  firstFailureAt?: number
  delivered: boolean
  /** The event id the group's ledger already holds for this delivery's header (checked against the body). */
  ledgerId?: string
  /** The header's event id, when the group's ledger was read for it and did not hold it. */
  notInLedger?: string
  /** A copy of an event whose completion was not committed yet: acked only once that is. */
  awaiting?: string
  /** Its commit or ack is in the next flushes: held until they are over. */
  flushing?: boolean
}

/**
 * Events of a unit left out of its commit, and what must stay out with them: a later event of the
 * same key (it would overtake them), and an event that read a document they wrote (it decided from
 * a write that is not in the store).
 */
class Refusals {
  private readonly keys = new Set<string>()
  private readonly docs = new Set<string>()

  add(segment: Segment<Item>, key: string): void {
    this.keys.add(key)
    for (const write of segment.writes.projections) this.docs.add(docKey(write.collection, write.id))
  }

  /** Whether the segment stays out behind one refused before it (it is then refused too). */
  holdsBack(segment: Segment<Item>, key: string): boolean {
    const behind = this.keys.has(key) || (this.docs.size > 0 && segment.writes.reads.some((read) => this.docs.has(read.key)))
    if (behind) this.add(segment, key)
    return behind
  }
}

interface Lane {
  key: string
  queue: Item[]
  active: boolean
  parked: boolean
}

/**
 * Remembers at least the last `capacity` keys (at most twice that): two generations of sets, the
 * older dropped whole when the newer fills. An exact LRU on a Map (delete the first key) made each
 * eviction skip the Map's deleted slots, which showed up in profiles; a cache needs no exactness
 * (the store's applyOnce guards are the truth).
 */
class RecentKeys {
  private current = new Set<string>()
  private previous = new Set<string>()
  constructor(private readonly capacity: number) {}
  has(key: string): boolean {
    if (this.current.has(key)) return true
    if (!this.previous.has(key)) return false
    // Refresh: a hot duplicate stays remembered.
    this.add(key)
    return true
  }
  add(key: string): void {
    if (this.capacity <= 0) return
    if (this.current.size >= this.capacity) {
      this.previous = this.current
      this.current = new Set()
    }
    this.current.add(key)
  }
}

function describeError(error: unknown): {name: string; message: string; code?: string; details?: Record<string, unknown>} {
  if (error instanceof Error) {
    const code = (error as {code?: unknown}).code
    const details = (error as {details?: unknown}).details
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' && code !== '' ? {code} : {}),
      ...(details && typeof details === 'object' ? {details: details as Record<string, unknown>} : {}),
    }
  }
  return {name: typeof error, message: String(error)}
}

/** The topics the service's types travel on, and a predicate over canonical types. */
export function resolveSubscription(catalog: Catalog, consumes: readonly string[]): {topics: string[]; accepts: (definition: CatalogEvent) => boolean} {
  if (consumes.length === 0) throw new Error('A service must consume at least one event type')
  const match = compileTypeGlobs(consumes)
  const accepted = new Set<CatalogEvent>()
  for (const definition of catalog.events) {
    if (match(definition.type) || definition.aliases.some(match)) accepted.add(definition)
  }
  const topics = [...new Set([...accepted].map((d) => d.topic))].sort()
  return {topics, accepts: (definition) => accepted.has(definition)}
}

/** The store refused the whole commit for itself (its file locked past the busy timeout). */
const storeUnavailable = (error: unknown) => (error as {code?: unknown} | null)?.code === 'STORE_BUSY'

/** The lane of a delivery: one partition key of one topic, handled in order. */
const laneKeyOf = (delivery: Delivery) => `${delivery.topic}\u0000${delivery.key}`

interface HeldDelivery {
  delivery: Delivery
  /** When it was received, or last extended (ms). */
  since: number
}

/**
 * The held deliveries the keeper (which runs every `everyMs`, a third of the visibility timeout)
 * extends now: those held for half a period or more. One received or extended since is safe until
 * the next run (it is then at most 1.5 periods old, half the timeout), so most of a busy runner's
 * buffer, received moments ago, costs the bus nothing.
 */
function dueForExtension<T extends {since: number}>(held: Iterable<T>, now: number, everyMs: number): T[] {
  const due: T[] = []
  const cutoff = now - everyMs / 2
  for (const h of held) if (h.since <= cutoff) due.push(h)
  return due
}

/** Attempts a retried DLQ entry had spent before this delivery. */
function priorAttempts(delivery: Delivery): number {
  const n = Number(delivery.headers[PRIOR_ATTEMPTS_HEADER] ?? 0)
  return Number.isInteger(n) && n > 0 ? n : 0
}

export function startConsumer(deps: ConsumerDeps, service: ServiceDefinition, options: ConsumerOptions = {}): ConsumerHandle {
  const parts = 'runtime' in deps ? deps.runtime : deps
  const {bus, store, leaderboards, clock} = parts
  // Leaderboards kept in this store score with the unit of work (ports.ts, Leaderboards.within).
  const boardsInUnit = store.transactional && typeof leaderboards.within === 'function'
  const metrics: RuntimeMetrics | undefined = parts.metrics
  const {catalog, validator, publisher} = deps
  const group = service.name
  const consumer = options.consumer ?? `${group}-${hostname()}-${process.pid}-${++instanceSeq}`
  const batchSize = options.batchSize ?? 256
  const concurrency = Math.max(1, options.concurrency ?? 64)
  const maxBuffered = Math.max(batchSize, options.maxBuffered ?? Math.max(batchSize * 4, concurrency * 4))
  const retryDelays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
  const maxAttempts = retryDelays.length + 1
  const seen = new RecentKeys(options.dedupeCacheSize ?? 10_000)
  const sequenceCollection = `seq_${group}`

  const {topics: domainTopics, accepts} = resolveSubscription(catalog, service.consumes)
  if (domainTopics.length === 0) {
    throw new Error(`Service "${group}" consumes ${service.consumes.join(', ')}, which matches no event type of ${catalog.title}`)
  }
  // Plus the group's own topic: DLQ retries and replays reach this group and no other.
  const topics = [...domainTopics, directTopic(group)]

  const stats: ConsumerStats = {
    group,
    consumer,
    received: 0,
    handled: 0,
    acked: 0,
    duplicates: 0,
    skipped: 0,
    ignoredRedeliveries: 0,
    retried: 0,
    deadLettered: 0,
    failures: 0,
    staleReads: 0,
    busErrors: 0,
    inFlight: 0,
    parked: 0,
    buffered: 0,
  }

  const notify = (event: RunnerEvent) => {
    if (!options.onEvent) return
    try {
      options.onEvent(event)
    } catch {
      // A listener must not break the runner.
    }
  }

  // Lifecycle. `stopping`: no more fetching. `crashed`: the signal aborted; nothing more is acked.
  let stopping = false
  let crashed = false
  const fetchAbort = new AbortController() // ends a blocked next()
  const sleepAbort = new AbortController() // ends retry waits and backoffs
  // Every parked lane listens on sleepAbort: many listeners are expected, not a leak.
  setMaxListeners(0, fetchAbort.signal, sleepAbort.signal)
  let subscription: Subscription | null = null

  const lanes = new Map<string, Lane>()
  /**
   * Deliveries held here by transport id (`topic/partition/id`): redeliveries of them are ignored.
   * `since`: when it was received or last extended (the keeper extends only those getting old).
   */
  const held = new Map<string, HeldDelivery>()
  const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000
  const heldId = (d: Delivery) => `${d.topic}\u0000${d.partition}\u0000${d.id}`

  // Slots: at most `concurrency` lanes run a handler at once; a parked lane holds no slot.
  let slotsUsed = 0
  const slotWaiters: Array<() => void> = []
  const acquireSlot = (): Promise<void> => {
    if (slotsUsed < concurrency) {
      slotsUsed++
      return Promise.resolve()
    }
    return new Promise((resolve) => slotWaiters.push(resolve))
  }
  const releaseSlot = () => {
    const next = slotWaiters.shift()
    if (next) next()
    else slotsUsed--
  }

  // Signals the fetch loop (capacity freed) and stop() (a lane finished).
  let changeWaiters: Array<() => void> = []
  const changed = () => {
    const waiters = changeWaiters
    changeWaiters = []
    for (const wake of waiters) wake()
  }
  const nextChange = () => new Promise<void>((resolve) => changeWaiters.push(resolve))
  /** A change, stop, or `ms`, whichever first; leaves no timer or listener behind. */
  const waitForChange = (ms: number) =>
    new Promise<void>((resolve) => {
      const signal = fetchAbort.signal
      if (signal.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, {once: true})
      changeWaiters.push(done)
    })

  // Work is committed per turn of the event loop: one Store.commit for every event completed since
  // the last (their projection writes, derived events and handled records, together), then one bus
  // call acking them with whatever needed no writes (skips, duplicates, dead letters).
  const pending = new PendingUnits<Item>(store, group)
  /** Reads outside any attempt (the sequence guard) see the uncommitted writes too. */
  const committedView = pending.view(store, new WriteSet())
  let flushing: Promise<void> | null = null
  const mergedWrites = (segments: readonly Segment<Item>[]) => {
    const merged = new WriteSet()
    for (const segment of segments) merged.absorb(segment.writes)
    return merged
  }
  /** One Store.commit of `writes` (with `segments`' records and the versions its reads expect). */
  const commitWrites = async (writes: WriteSet, segments: readonly Segment<Item>[]): Promise<void> => {
    const {inserted} = await store.commit(pending.storeWrites(writes, segments))
    pending.committed(writes)
    if (inserted > 0) publisher.kick()
  }
  const freeDeliveries = new FreeDeliveries()
  /** Later events of a key whose commit failed wait behind it (held-behind-failures.ts). */
  const behindFailures = new HeldBehindFailures<Item>((item) => laneKeyOf(item.delivery), visibilityTimeoutMs * 4)
  /**
   * Deliveries left unacked that should come again at once, not after their visibility timeout
   * (30 s in `tektree services`): those the flush under way refused as stale reads (with those held
   * behind them in their unit), and those held behind a key whose failed events are all in now.
   */
  let toRelease: Delivery[] = []
  const releaseLeftBack = async (): Promise<void> => {
    for (const item of behindFailures.cleared()) toRelease.push(item.delivery)
    if (toRelease.length === 0) return
    const deliveries = toRelease
    toRelease = []
    if (crashed || !subscription) return
    try {
      await subscription.release(deliveries)
    } catch (error) {
      // They come back after the visibility timeout instead.
      stats.busErrors++
      notify({type: 'bus_error', phase: 'release', error})
    }
  }
  const unblock = (delivery: Delivery, eventId: string) => behindFailures.forget(laneKeyOf(delivery), eventId)

  /** The segments that are in the store: all of them, or those that went in one by one. */
  const commitUnit = async (unit: Unit<Item>, segments: readonly Segment<Item>[]): Promise<Segment<Item>[]> => {
    try {
      await commitWrites(segments.length === unit.segments.length ? unit : mergedWrites(segments), segments)
      return [...segments]
    } catch (error) {
      if (error instanceof StaleReadError) {
        // Those that read what another process wrote since wait for the bus to bring them again
        // (with what follows them); the others go in together, as they would have.
        const kept = withoutStaleReads(segments, error)
        const keptSet = new Set(kept)
        countStaleReads(segments.filter((segment) => !keptSet.has(segment)))
        if (kept.length === 0) return []
        if (kept.length < segments.length) return commitUnit(unit, kept)
        // None of them expected what the store found (a commit of this process in between): one by one.
      } else {
        notify({type: 'store_error', phase: 'commit', error, eventId: null})
        // A conflict is never about the whole unit: sort its events out one by one. A store that
        // stayed locked is about none of them: one by one, each would wait out the lock again.
        if (!(error instanceof CommitConflictError) && (segments.length === 1 || crashed || storeUnavailable(error))) return []
      }
    }
    // One event's writes may be what the store refuses: commit them one by one, so that the others
    // go in. A refused one stays unacked; the bus redelivers it and its delivery count leads it to
    // the DLQ once its attempts are spent. One another consumer of the group completed first (it
    // took the partition while this one was paused or slow) is done: acked, its writes dropped,
    // never applied twice. One that read a document another process wrote since (a stale read) is
    // refused: handled again, it reads the document as it is.
    const committed: Segment<Item>[] = []
    const refused = new Refusals()
    for (const segment of segments) {
      if (crashed) break
      const key = laneKeyOf(segment.completion.delivery)
      if (refused.holdsBack(segment, key)) {
        freeDeliveries.leftBack(segment.eventId)
        continue
      }
      try {
        await commitWrites(segment.writes, [segment])
        committed.push(segment)
      } catch (error) {
        if (error instanceof CommitConflictError) {
          stats.duplicates++
          committed.push(segment)
          continue
        }
        if (error instanceof StaleReadError) countStaleReads([segment])
        else notify({type: 'store_error', phase: 'commit', error, eventId: segment.eventId})
        refused.add(segment, key)
      }
    }
    return committed
  }
  const countStaleReads = (refused: readonly Segment<Item>[]) => {
    stats.staleReads += refused.length
    for (const {eventId, completion} of refused) {
      freeDeliveries.leftBack(eventId)
      toRelease.push(completion.delivery)
    }
    if (metrics) for (const {completion} of refused) metrics.staleRead(group, completion.event!.event_type)
  }
  /** `segments` less those whose reads `error` found stale and those held back behind them. */
  const withoutStaleReads = (segments: readonly Segment<Item>[], error: StaleReadError): Segment<Item>[] => {
    const found = new Map<string, number>()
    for (const document of error.documents) found.set(docKey(document.collection, document.id), document.found)
    const refused = new Refusals()
    const kept: Segment<Item>[] = []
    for (const segment of segments) {
      const key = laneKeyOf(segment.completion.delivery)
      if (refused.holdsBack(segment, key)) continue
      const stale = segment.writes.reads.some((read) => {
        const version = found.get(read.key)
        return version !== undefined && pending.isStale(read, version)
      })
      if (stale) refused.add(segment, key)
      else kept.push(segment)
    }
    return kept
  }

  const flush = async (): Promise<void> => {
    while (!pending.idle && !crashed && subscription) {
      const unit = await pending.take()
      if (crashed) {
        pending.settle(unit)
        return
      }
      const ready = behindFailures.ready(unit.segments)
      const committed = ready.length > 0 ? await commitUnit(unit, ready) : []
      if (!crashed) behindFailures.settle(ready, committed)
      pending.settle(unit)
      if (crashed) return
      if (ready.length < unit.segments.length) {
        // Held behind another event's failure: not tried, so not this event's attempt.
        const tried = new Set(ready)
        for (const segment of unit.segments) {
          if (tried.has(segment)) continue
          freeDeliveries.leftBack(segment.eventId)
          behindFailures.heldBack(segment.completion)
        }
      }
      for (const segment of committed) {
        seen.add(segment.eventId)
        freeDeliveries.forget(segment.eventId)
      }
      const deliveries: Delivery[] = []
      // A copy that waited on its event's commit is acked only if that commit went in; otherwise it
      // is left to come back (the bus redelivers it) and be handled then.
      let waitedDuplicates = 0
      for (const item of unit.others) {
        if (item.awaiting === undefined) deliveries.push(item.delivery)
        else if (seen.has(item.awaiting)) {
          deliveries.push(item.delivery)
          waitedDuplicates++
        }
      }
      for (const segment of committed) deliveries.push(segment.completion.delivery)
      // Acked or not, the bus may hand any of them out again from here on.
      const items = [...unit.others, ...unit.segments.map((segment) => segment.completion)]
      if (deliveries.length === 0) {
        unhold(items)
        await releaseLeftBack()
        continue
      }
      try {
        await subscription.ack(deliveries)
        stats.acked += deliveries.length
        stats.duplicates += waitedDuplicates
      } catch (error) {
        // Unacked deliveries come back after the visibility timeout; the ledger (committed with
        // their effects) makes them duplicates. Nothing is lost.
        stats.busErrors++
        notify({type: 'bus_error', phase: 'ack', error})
        unhold(items)
        await releaseLeftBack()
        continue
      }
      unhold(items)
      await releaseLeftBack()
      await clearRetried(committed)
      if (!metrics) continue
      const now = Date.now()
      for (const {completion} of committed) {
        const event = completion.event!
        const latency = now - Date.parse(event.timestamp)
        metrics.acked(group, event.event_type, 1, Number.isFinite(latency) ? latency : undefined)
      }
    }
  }
  /**
   * Retried DLQ entries whose events are now handled and acked leave the DLQ (not before: a retry
   * that fails goes back in, counted). A crash just before this leaves the entry in although the
   * event was applied; retrying it again applies nothing twice (the handlers' guards).
   */
  const clearRetried = async (committed: readonly Segment<Item>[]): Promise<void> => {
    const ids: string[] = []
    for (const {completion} of committed) {
      const id = completion.delivery.headers[REDRIVE_HEADER]
      if (id !== undefined) ids.push(id)
    }
    if (ids.length === 0) return
    try {
      await store.dlq.remove(ids)
    } catch (error) {
      notify({type: 'store_error', phase: 'dlq', error, eventId: null})
    }
  }

  const scheduleFlush = () => {
    if (flushing || crashed) return
    flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(flush)
      .finally(() => {
        flushing = null
        if (!pending.idle) scheduleFlush()
      })
  }
  /** Acks a delivery that needed no writes, after what was completed before it. */
  const ack = (item: Item) => {
    if (crashed) return
    item.flushing = true
    pending.after(item)
    scheduleFlush()
  }

  /**
   * The lane is done with the item. One waiting for a flush (its commit, its ack) stays held until
   * that is over: the keeper goes on extending it (a commit can wait long for a locked store) and
   * copies the bus hands back meanwhile are ignored rather than counted as attempts.
   */
  const release = (item: Item) => {
    if (!item.flushing) held.delete(heldId(item.delivery))
    stats.buffered--
  }
  /** The flush is over for these (acked, or left for the bus to deliver again). */
  const unhold = (items: Iterable<Item>) => {
    for (const item of items) held.delete(heldId(item.delivery))
  }

  const nowIso = () => new Date(clock.now()).toISOString()

  const deadLetter = async (item: Item, error: ErrorContract, attempts: number): Promise<void> => {
    const delivery = item.delivery
    let event = item.event ?? null
    let eventId: string | null = event?.event_id ?? null
    let eventType: string | null = event?.event_type ?? delivery.headers.event_type ?? null
    if (!event) {
      // Best effort: a schema-invalid envelope still names its id and type.
      try {
        const parsed = JSON.parse(delivery.value) as Record<string, unknown>
        if (parsed && typeof parsed === 'object') {
          if (typeof parsed.event_id === 'string') eventId = parsed.event_id
          if (typeof parsed.event_type === 'string') eventType = parsed.event_type
        }
      } catch {
        // Unparseable: the raw bytes are all there is.
      }
    }
    const now = nowIso()
    const record: DlqRecord = {
      // A retried entry keeps its id (an unparsed one would otherwise get a new one per delivery).
      // Unparsed: its transport id, which is unique only within its partition's stream.
      id: delivery.headers[REDRIVE_HEADER] ?? `${group}:${eventId ?? `${delivery.topic}/${delivery.partition}/${delivery.id}`}`,
      group,
      event_id: eventId,
      event_type: eventType,
      topic: delivery.topic,
      partition: delivery.partition,
      delivery_id: delivery.id,
      error,
      // A retried entry that fails again keeps the attempts it had spent and its first failure.
      attempts: attempts + priorAttempts(delivery),
      first_failure_at: delivery.headers[FIRST_FAILURE_HEADER] ?? new Date(item.firstFailureAt ?? clock.now()).toISOString(),
      last_failure_at: now,
      dead_lettered_at: now,
      // Capped at the event size limit: a record must fit in any store (16 MiB in MongoDB) whatever arrived.
      raw: delivery.value.length > validator.limits.maxEventBytes ? delivery.value.slice(0, validator.limits.maxEventBytes) : delivery.value,
      envelope: event,
    }
    await store.dlq.add(record)
    if (eventId) {
      unblock(delivery, eventId)
      freeDeliveries.forget(eventId)
    }
    stats.deadLettered++
    metrics?.deadLettered(group, eventType ?? 'unknown')
    notify({type: 'dead_lettered', record})
  }

  /**
   * Whether this runner still owns the delivery's partition. A partition handed over (a rebalance,
   * a pause past the lease) belongs to its new owner with everything unacked in it: this runner
   * must not dead-letter what the new owner may complete, nor retry behind its back.
   */
  const owns = (delivery: Delivery): boolean =>
    !subscription || subscription.assignment().some((p) => p.partition === delivery.partition && p.topic === delivery.topic)

  /**
   * Runs one attempt. Returns the delay before the next attempt, null when the item is finished,
   * or 'lost' when its partition moved to another consumer (the lane is given up, unacked).
   */
  const attempt = async (item: Item): Promise<number | null | 'lost'> => {
    const delivery = item.delivery
    // 1. Another type on a subscribed topic was told apart by its header at fetch (skipOthers); one
    // whose header names no type of the catalog is found out here, once parsed.
    if (!item.event) {
      // 2. Parse and validate once: a poison pill goes straight to the DLQ.
      const result = validator.validateJson(delivery.value)
      if (!result.ok) {
        item.attempt = 1
        item.firstFailureAt = clock.now()
        try {
          await deadLetter(item, errorContract(result.error.error.code, result.error.error.message, {...result.error.error.details, service: group, attempt: 1}), 1)
        } catch (error) {
          // The DLQ write failed: do not ack; the bus redelivers and we try again.
          notify({type: 'store_error', phase: 'dlq', error, eventId: null})
          return null
        }
        ack(item)
        return null
      }
      if (!accepts(result.definition)) {
        stats.skipped++
        ack(item)
        return null
      }
      item.event = result.event
      item.definition = result.definition
    }
    const event = item.event
    const definition = item.definition!

    // 3. Already done here? (redelivery after a lost ack, a duplicate on the bus) Not asked of a
    // retry or a replay: handling it again is what was asked for.
    if (!item.checked && isForced(delivery.headers)) item.checked = true
    if (!item.checked) {
      item.checked = true
      if (seen.has(event.event_id) || item.ledgerId === event.event_id) {
        stats.duplicates++
        unblock(delivery, event.event_id)
        ack(item)
        return null
      }
      if (pending.isHandled(event.event_id)) {
        // Its completion is not committed yet: this copy is acked only if that commit succeeds. Acked
        // regardless, it would be lost with a failed commit (the same entry, redelivered meanwhile).
        // Counted as a duplicate when it is acked.
        item.awaiting = event.event_id
        ack(item)
        return null
      }
      const sequence = event.metadata?.sequence
      const aggregate = event.metadata?.aggregate_id
      if (typeof sequence === 'number' && typeof aggregate === 'string') {
        let last: unknown
        try {
          last = (await committedView.projections.get(sequenceCollection, sequenceKey(event, definition)))?.sequence
        } catch (error) {
          // Cannot read the guard: go on; the handlers' own applyOnce guards still hold.
          notify({type: 'store_error', phase: 'sequence', error, eventId: event.event_id})
        }
        if (typeof last === 'number' && sequence <= last) {
          stats.duplicates++
          seen.add(event.event_id)
          ack(item)
          return null
        }
      }
    }

    // 4. Attempts spent on earlier deliveries: a consumer took it and never acked, that often
    // (each time it crashed, or its commit was refused). Trying once more would only repeat that.
    if (item.attempt >= maxAttempts) {
      if (!owns(delivery)) return 'lost'
      item.firstFailureAt ??= clock.now()
      const contract = errorContract('DELIVERY_ATTEMPTS_EXHAUSTED', `Delivered ${delivery.deliveryCount} times without being completed (a consumer crashed or its commit failed each time); ${maxAttempts} attempts are allowed`, {
        service: group,
        attempt: item.attempt,
        delivery_count: delivery.deliveryCount,
        retriable: true,
      })
      try {
        await deadLetter(item, contract, item.attempt)
      } catch (dlqError) {
        notify({type: 'store_error', phase: 'dlq', error: dlqError, eventId: event.event_id})
        return null
      }
      ack(item)
      return null
    }

    // 5. The handler, writing into a buffer of its own.
    item.attempt++
    if (!item.delivered) {
      item.delivered = true
      metrics?.delivered(group, event.event_type, 1)
    }
    const writes = pending.begin()
    // An event the ledger was just asked about, and did not hold, was applied nowhere by this group:
    // its own applyOnce guards need no read of the store (a replay or retry may be, and reads).
    // Replayed onto live state, an event this group completed applies none of its guarded writes
    // and emits none of its derived events again, however long ago: they committed with its ledger
    // record (a rebuild dropped them first).
    const completed = isReplayAgain(delivery.headers) && (item.ledgerId === event.event_id || seen.has(event.event_id)) ? event.event_id : undefined
    const view = pending.view(store, writes, item.notInLedger === event.event_id && !isForced(delivery.headers) ? event.event_id : undefined, completed)
    const boards = boardsInUnit ? leaderboards.within!(view.projections) : leaderboards
    const emitted: EventEnvelope[] = []
    const perType = new Map<string, number>()
    const ctx: HandlerContext = {
      event,
      definition,
      attempt: item.attempt,
      group,
      store: view,
      leaderboards: completed === undefined ? boards : boardsWithoutGuardsOf(boards, completed),
      clock,
      emit(type, payload, emitOptions) {
        const target = catalog.get(type)
        if (!target) throw new NonRetryableError(`${group} emitted "${type}", which is not an event type of ${catalog.title}`, {code: 'UNKNOWN_EVENT_TYPE', details: {event_type: type}})
        const n = perType.get(target.type) ?? 0
        perType.set(target.type, n + 1)
        const envelope = publisher.draft(target.type, payload, {
          eventId:
            emitOptions?.identity === undefined
              ? derivedEventId(event.event_id, group, target.type, emitOptions?.key ?? n)
              : derivedEventId(`identity:${emitOptions.identity}`, group, target.type, 0),
          causationId: event.event_id,
          correlationId: event.correlation_id,
          traceId: event.trace_id,
          timestamp: clock.now(),
          source: group,
        })
        // A completed event's derived events committed with its ledger record: none again (what
        // it would emit now can differ: a fan-out to followers who came since).
        if (completed === undefined) emitted.push(envelope)
        return envelope
      },
    }
    try {
      await service.handle(event, ctx)
      if (emitted.length > 0) {
        const {valid, rejected} = publisher.prepare(emitted, {trusted: !options.validateEmitted})
        if (rejected.length > 0) {
          const first = rejected[0]
          // The handler built an invalid event: the same input builds it again, retrying cannot help.
          throw new NonRetryableError(`${group} emitted an invalid ${emitted[first.index].event_type}: ${first.error.error.message}`, {
            code: 'DERIVED_EVENT_INVALID',
            details: {derived_event_type: emitted[first.index].event_type, cause: first.error.error},
          })
        }
        for (const envelope of valid) writes.events.push(envelope)
      }
    } catch (error) {
      pending.abandon(writes)
      if (crashed) return null
      stats.failures++
      item.firstFailureAt ??= clock.now()
      const nonRetryable = isNonRetryable(error)
      if (nonRetryable || item.attempt >= maxAttempts) {
        if (!owns(delivery)) return 'lost'
        const info = describeError(error)
        const contract = errorContract(info.code ?? 'HANDLER_FAILED', info.message, {
          ...info.details,
          service: group,
          attempt: item.attempt,
          error_name: info.name,
          retriable: !nonRetryable,
        })
        try {
          await deadLetter(item, contract, item.attempt)
        } catch (dlqError) {
          notify({type: 'store_error', phase: 'dlq', error: dlqError, eventId: event.event_id})
          return null // unacked: redelivered, handled again
        }
        ack(item)
        return null
      }
      const delay = retryDelays[item.attempt - 1] ?? 0
      stats.retried++
      metrics?.retried(group, event.event_type)
      notify({type: 'retry', eventId: event.event_id, eventType: event.event_type, attempt: item.attempt, delayMs: delay, error})
      return delay
    }
    if (crashed) {
      pending.abandon(writes)
      return null
    }

    // 6. Success: the writes, the sequence guard and the handled record go into the next commit; the
    // ack follows it.
    const sequence = event.metadata?.sequence
    if (typeof sequence === 'number' && typeof event.metadata?.aggregate_id === 'string') {
      writes.add({collection: sequenceCollection, id: sequenceKey(event, definition), update: {$max: {sequence}}, eventId: event.event_id})
    }
    stats.handled++
    item.flushing = true
    pending.complete(event.event_id, writes, item, {group, event_id: event.event_id, handled_at: nowIso(), attempts: item.attempt}, delivery.headers[REPLAY_HEADER] !== undefined)
    scheduleFlush()
    return null
  }

  /** Drives one lane: its items in order, parking on a retry. */
  const runLane = async (lane: Lane): Promise<void> => {
    lane.active = true
    let holding = false
    const take = async () => {
      await acquireSlot()
      holding = true
      stats.inFlight++
    }
    const give = () => {
      if (!holding) return
      holding = false
      stats.inFlight--
      releaseSlot()
    }
    try {
      await take()
      while (lane.queue.length > 0 && !crashed) {
        const item = lane.queue[0]
        let delay: number | null | 'lost'
        try {
          delay = await attempt(item)
        } catch (error) {
          // attempt() catches what it expects; anything else is a runner bug. Leave the delivery
          // unacked (the bus redelivers it) rather than spin on it.
          notify({type: 'store_error', phase: 'dlq', error, eventId: item.event?.event_id ?? null})
          break
        }
        if (delay === 'lost') break
        if (delay === null) {
          lane.queue.shift()
          release(item)
          changed()
          continue
        }
        if (delay <= 0 && !stopping) continue
        // Park: give the slot to other keys while this one waits.
        give()
        lane.parked = true
        stats.parked++
        let woke = !stopping
        try {
          if (woke) await clock.sleep(delay, sleepAbort.signal)
        } catch (error) {
          if (!isAbortError(error)) throw error
          woke = false
        } finally {
          lane.parked = false
          stats.parked--
        }
        // Stopping, or the partition moved while parked: the lane's deliveries stay unacked and
        // the group (its new owner) gets them again.
        if (!woke || crashed || !owns(item.delivery)) break
        await take()
      }
    } finally {
      give()
      for (const left of lane.queue) release(left)
      lane.queue.length = 0
      lane.active = false
      lanes.delete(lane.key)
      changed()
    }
  }

  const dispatch = (delivery: Delivery, ledger: LedgerAnswer) => {
    const id = heldId(delivery)
    if (held.has(id)) {
      stats.ignoredRedeliveries++
      return
    }
    held.set(id, {delivery, since: Date.now()})
    stats.received++
    stats.buffered++
    const key = laneKeyOf(delivery)
    let lane = lanes.get(key)
    if (!lane) {
      lane = {key, queue: [], active: false, parked: false}
      lanes.set(key, lane)
    }
    const headerId = delivery.headers?.event_id
    // Earlier deliveries that were never acked count as attempts (Delivery.deliveryCount, which the
    // bus keeps): an event that kills its consumer every time still reaches the DLQ.
    const attempts = Math.max(0, (delivery.deliveryCount || 1) - 1 - (headerId === undefined ? 0 : freeDeliveries.of(headerId)))
    const inLedger = headerId !== undefined && ledger.completed.has(headerId)
    lane.queue.push({
      delivery,
      attempt: attempts,
      checked: false,
      delivered: false,
      ledgerId: inLedger ? headerId : undefined,
      notInLedger: headerId !== undefined && !inLedger && ledger.asked.has(headerId) ? headerId : undefined,
    })
    if (!lane.active) {
      void runLane(lane).catch(() => {
        // runLane handles its own errors; nothing reaches here but a bug in the runner itself.
      })
    }
  }

  /** The ack of the last fetch's deliveries of other types, under way (one at a time). */
  let skipping: Promise<void> = Promise.resolve()
  /**
   * The deliveries of types this group handles. The others (its topics carry other groups' types
   * too: an event reaches 2.6 groups, 1.7 of which handle it) are told apart by their header and
   * acked at once, together, without a lane, a unit or a flush: nothing orders them, as the group
   * never handles them.
   */
  const skipOthers = (deliveries: Delivery[]): Delivery[] => {
    const wanted: Delivery[] = []
    const others: Delivery[] = []
    for (const delivery of deliveries) {
      const type = delivery.headers?.event_type
      const definition = type ? catalog.get(type) : undefined
      if (definition && !accepts(definition)) others.push(delivery)
      else wanted.push(delivery)
    }
    if (others.length === 0 || !subscription) return deliveries
    stats.received += others.length
    stats.skipped += others.length
    const sub = subscription
    skipping = skipping.then(async () => {
      if (crashed) return
      try {
        await sub.ack(others)
        stats.acked += others.length
      } catch (error) {
        // Delivered again after the visibility timeout, and skipped again.
        stats.busErrors++
        notify({type: 'bus_error', phase: 'ack', error})
      }
    })
    return wanted
  }

  /** The batch's event ids (from the relay's headers) that the group's ledger holds: one store call (after skipOthers). */
  const completedBefore = async (deliveries: readonly Delivery[]): Promise<LedgerAnswer> => {
    const ids: string[] = []
    for (const delivery of deliveries) {
      const id = delivery.headers?.event_id
      // Redeliveries of deliveries held here are asked about too (dispatch ignores them): they are
      // rare, and leaving them out cost a second transport-id string per delivery.
      if (typeof id !== 'string' || seen.has(id)) continue
      ids.push(id)
    }
    if (ids.length === 0) return NOTHING_ASKED
    try {
      return {completed: await store.handled.completed(group, ids), asked: new Set(ids)}
    } catch (error) {
      // Unreadable: handle them; the handlers' guards still hold.
      notify({type: 'store_error', phase: 'ledger', error, eventId: null})
      return NOTHING_ASKED
    }
  }

  const busBackoff = (failures: number) => Math.min(MAX_BUS_BACKOFF_MS, 50 * 2 ** Math.min(failures, 16))

  const loop = async (): Promise<void> => {
    let failures = 0
    // Subscribe (retrying: the bus may be down when the service starts).
    while (!stopping && !subscription) {
      try {
        await bus.ensureTopics([...catalog.topics(), directTopicSpec(group)])
        subscription = await bus.subscribe({
          group,
          consumer,
          topics,
          batchSize,
          blockMs: options.blockMs,
          visibilityTimeoutMs,
          startFrom: options.startFrom,
        })
        failures = 0
        notify({type: 'subscribed', group, consumer, topics})
      } catch (error) {
        failures++
        stats.busErrors++
        const backoffMs = busBackoff(failures)
        notify({type: 'bus_error', phase: 'subscribe', error, backoffMs})
        await pause(backoffMs, sleepAbort.signal)
      }
    }
    while (!stopping && subscription) {
      if (stats.buffered >= maxBuffered) {
        await waitForChange(1_000)
        // Not fetching is not dead: keep the partitions whose deliveries this runner holds.
        if (stats.buffered >= maxBuffered && !stopping) await subscription.heartbeat().catch(() => undefined)
        continue
      }
      let deliveries: Delivery[]
      try {
        deliveries = await subscription.next(fetchAbort.signal)
        failures = 0
      } catch (error) {
        if (stopping) break
        failures++
        stats.busErrors++
        const backoffMs = busBackoff(failures)
        notify({type: 'bus_error', phase: 'fetch', error, backoffMs})
        await pause(backoffMs, sleepAbort.signal)
        continue
      }
      if (crashed) break
      const wanted = skipOthers(deliveries)
      const ledger = await completedBefore(wanted)
      if (crashed) break
      for (const delivery of wanted) dispatch(delivery, ledger)
    }
  }

  /**
   * What this runner holds (queued behind a parked retry, running, parked) is still being worked
   * on: it keeps it from its visibility timeout, which would otherwise hand it back to this same
   * consumer (ignored here) and count a delivery each time, so that after a crash its next owner
   * would find attempts spent that were never made.
   */
  let extending = false
  const keeperEveryMs = Math.max(10, Math.floor(visibilityTimeoutMs / 3))
  const keepHeld = async () => {
    if (extending || crashed || !subscription || held.size === 0) return
    const due = dueForExtension(held.values(), Date.now(), keeperEveryMs)
    if (due.length === 0) return
    extending = true
    try {
      const at = Date.now()
      await subscription.extend(due.map((h) => h.delivery))
      for (const h of due) h.since = at
    } catch (error) {
      notify({type: 'bus_error', phase: 'extend', error})
    } finally {
      extending = false
    }
  }
  const keeper = setInterval(() => void keepHeld(), keeperEveryMs)
  keeper.unref()

  const finish = async (reason: 'stop' | 'abort'): Promise<void> => {
    await loop().catch(() => {})
    // Wait for running lanes (parked ones end at once: their sleep was aborted).
    for (let guard = 0; lanes.size > 0 && guard < 1_000_000 && !crashed; guard++) await nextChange()
    if (!crashed) {
      while (flushing) await flushing
      await flush()
      await skipping
    }
    if (subscription) {
      try {
        await subscription.close()
      } catch (error) {
        notify({type: 'bus_error', phase: 'close', error})
      }
    }
    clearInterval(keeper)
    pending.leave()
    notify({type: 'stopped', reason: crashed ? 'abort' : reason})
  }

  let resolveStarted!: () => void
  const started = new Promise<void>((resolve) => (resolveStarted = resolve))
  const done = started.then(() => finish('stop'))

  const beginStop = () => {
    if (stopping) return
    stopping = true
    fetchAbort.abort()
    sleepAbort.abort()
    changed()
  }

  const onAbort = () => {
    crashed = true
    // Its uncommitted writes are gone with it: the group's other runners here must stop seeing them.
    pending.discard()
    pending.leave()
    beginStop()
    // Lanes still running handlers finish in the background; nothing of theirs is acked.
    changed()
  }
  if (options.signal?.aborted) onAbort()
  else options.signal?.addEventListener('abort', onAbort, {once: true})
  resolveStarted()

  return {
    async stop() {
      beginStop()
      await done
      options.signal?.removeEventListener('abort', onAbort)
    },
    done,
    stats: () => ({...stats}),
  }
}

/** The sequence guard's document: per aggregate type and id (producers number each aggregate separately). */
function sequenceKey(event: EventEnvelope, definition: CatalogEvent): string {
  return `${event.metadata.aggregate_type ?? definition.domain}:${event.metadata.aggregate_id}`
}
