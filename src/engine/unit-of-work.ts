/**
 * A consumer runner's writes between two commits (Marten's async daemon, Kafka Streams' EOS): each
 * handler attempt writes into a buffer of its own, dropped whole when the handler throws (no
 * partial effects), merged into the runner's open unit when it succeeds. The runner commits units
 * in order, each with the group's handled records (its ledger), in one Store.commit, and acks their deliveries
 * only after: a crash anywhere before the commit leaves nothing applied, and the redelivery applies
 * once.
 *
 * Handlers read through a view that shows the store plus every write not yet committed, in order:
 * an event sees what earlier events of this runner wrote, committed or not. find() and count() see
 * committed documents only (no handler decides from them). On a store without transactions the
 * view is the store itself: writes apply at once, each under its own guard.
 *
 * What another process writes is not in the layers: two processes of a group can each read a
 * profile without the other's increment and both miss the threshold they cross together. So an
 * attempt's reads are versioned, and its commit expects each document it read to have moved on by
 * this process's commits only (StoreWrites.expect): otherwise the store refuses it (StaleReadError)
 * and the events are handled again, reading the document as it is now.
 */
import type {EventEnvelope} from '../core/envelope.js'
import {APPLIED_FIELD, DocDraft} from '../core/projection-update.js'
import type {ExpectedVersion, HandledRecord, Leaderboards, ProjectionDoc, ProjectionStore, ProjectionUpdate, Store, StoreWrites} from '../core/ports.js'

export interface ProjectionWrite {
  collection: string
  id: string
  update: ProjectionUpdate
  /** applyOnce's guard id; absent for a plain update. */
  eventId?: string
}

/** A document's key in a WriteSet's index: made once per read, not once per layer searched. */
export const docKey = (collection: string, id: string) => `${collection}\u0000${id}`

/** A document an attempt read from the store: the version it read, and this process's commits of it then. */
export interface DocRead {
  collection: string
  id: string
  key: string
  version: number
  localCommits: number
}

/** Projection writes in order, indexed by document, and derived events. */
export class WriteSet {
  readonly projections: ProjectionWrite[] = []
  readonly events: EventEnvelope[] = []
  /** The documents the attempts of this set read from the store, first read of each per attempt. */
  readonly reads: DocRead[] = []
  private readonly byDoc = new Map<string, ProjectionWrite[]>()
  /**
   * The applyOnce guard ids of each document's writes. A hot document (a day's analytics counter)
   * takes hundreds of guarded writes in one unit, each asking whether the unit holds its guard.
   */
  private readonly guardsByDoc = new Map<string, Set<string>>()

  add(write: ProjectionWrite): void {
    this.projections.push(write)
    const key = docKey(write.collection, write.id)
    const list = this.byDoc.get(key)
    if (list) list.push(write)
    else this.byDoc.set(key, [write])
    if (write.eventId === undefined) return
    const guards = this.guardsByDoc.get(key)
    if (guards) guards.add(write.eventId)
    else this.guardsByDoc.set(key, new Set([write.eventId]))
  }

  /** This set's writes to the document of `key` (docKey), in order. */
  writesFor(key: string): readonly ProjectionWrite[] | undefined {
    return this.byDoc.get(key)
  }

  /** Whether an applyOnce of `eventId` on the document of `key` is already here. */
  holds(key: string, eventId: string): boolean {
    return this.guardsByDoc.get(key)?.has(eventId) ?? false
  }

  get hasProjectionWrites(): boolean {
    return this.projections.length > 0
  }

  absorb(other: WriteSet): void {
    for (const write of other.projections) this.add(write)
    for (const event of other.events) this.events.push(event)
    for (const read of other.reads) this.reads.push(read)
  }

  /** Whether an attempt of this set read the document of `key` already (its first read is the one expected). */
  hasRead(key: string): boolean {
    for (const read of this.reads) if (read.key === key) return true
    return false
  }
}

/**
 * This process's commits per document through one store, counted while an attempt's read of it
 * waits for its commit: the version a commit expects is the version read plus these. Counts are
 * taken only once a commit has resolved, so they can fall short (a refused commit: a needless
 * retry) but never run ahead, which would hide another process's write.
 */
class LocalCommits {
  private readonly docs = new Map<string, {count: number; readers: number}>()

  /** A read of the document begins: the count to compare with at commit. */
  read(key: string): number {
    let entry = this.docs.get(key)
    if (!entry) this.docs.set(key, (entry = {count: 0, readers: 0}))
    entry.readers++
    return entry.count
  }

  release(reads: readonly DocRead[]): void {
    for (const {key} of reads) {
      const entry = this.docs.get(key)
      if (entry && --entry.readers <= 0) this.docs.delete(key)
    }
  }

  /** A commit of these writes went in: one more for each document it named (the store counts so). */
  committed(writes: readonly ProjectionWrite[]): void {
    const named = new Set<string>()
    for (const {collection, id} of writes) named.add(docKey(collection, id))
    for (const key of named) {
      const entry = this.docs.get(key)
      if (entry) entry.count++
    }
  }

  expected(read: DocRead): ExpectedVersion {
    const since = (this.docs.get(read.key)?.count ?? read.localCommits) - read.localCommits
    return {collection: read.collection, id: read.id, version: read.version + since}
  }
}

const localCommitsByStore = new WeakMap<Store, LocalCommits>()

/** One successful attempt's share of a unit: committed alone when the whole unit cannot be. */
export interface Segment<T> {
  eventId: string
  writes: WriteSet
  completion: T
  /** Kept with the event: which group handled it, when, after how many attempts (the group's ledger). */
  record: HandledRecord
  /** A replay: the event was completed before (its record replaces the earlier one). */
  replayed?: boolean
}

/** What one commit carries: the writes, the event ids it completes, and what to do once it is in. */
export class Unit<T> extends WriteSet {
  readonly segments: Segment<T>[] = []
  /** Completions that need no writes (acks of skipped or dead-lettered deliveries). */
  readonly others: T[] = []

  get empty(): boolean {
    return this.segments.length === 0 && this.others.length === 0
  }
}

/**
 * The Store.commit of `writes` with the handled records of `segments`. Exclusive: a unit whose
 * event another consumer of the group completed first is refused (CommitConflictError). Except a
 * replayed event's: it was completed before, and handling it again is what was asked.
 */
function unitWrites<T>(writes: WriteSet, segments: readonly Segment<T>[]): StoreWrites {
  return {
    projections: writes.projections,
    events: writes.events,
    handled: segments.map((segment) => (segment.replayed ? {...segment.record, again: true} : segment.record)),
  }
}

/**
 * The runners of one group in this process (a group scaled out over several consumers): each reads
 * what all of them have not committed yet, as it would if their writes went straight to the store.
 */
class Siblings {
  readonly members = new Set<PendingUnits<unknown>>()
  /**
   * Reads of the store under way. A base read and a commit never overlap: a read waits for the
   * commits under way, a commit for the reads, so a read sees a unit either in the store or in
   * the layers, never in both (a double count) nor in neither.
   */
  reading = 0
  /**
   * Units taken for a commit and not yet settled, a runner's that left included: a runner that
   * crashed mid-commit has left, and its commit may still go in.
   */
  commits = 0
  private settleWaiters: Array<() => void> = []
  private readWaiters: Array<() => void> = []

  settled(): void {
    const waiters = this.settleWaiters
    this.settleWaiters = []
    for (const wake of waiters) wake()
  }

  nextSettle(): Promise<void> {
    return new Promise((resolve) => this.settleWaiters.push(resolve))
  }

  doneReading(): void {
    if (--this.reading > 0) return
    const waiters = this.readWaiters
    this.readWaiters = []
    for (const wake of waiters) wake()
  }

  async noReads(): Promise<void> {
    while (this.reading > 0) await new Promise<void>((resolve) => this.readWaiters.push(resolve))
  }

  get committing(): boolean {
    return this.commits > 0
  }

  /**
   * Every write not yet in the store, oldest first; `own` last when it is not a running buffer.
   * Sets without projection writes are left out: most running attempts have none yet, and every
   * read searches every layer (a profile of the in-process engine found 15% of its time here).
   */
  layers(own: WriteSet): WriteSet[] {
    const layers: WriteSet[] = []
    let ownSeen = false
    for (const member of this.members) ownSeen = member.collectLayers(layers, own) || ownSeen
    if (!ownSeen && own.hasProjectionWrites) layers.push(own)
    return layers
  }
}

const siblingsByStore = new WeakMap<Store, Map<string, Siblings>>()

/** The runner's uncommitted units: the open one, and those being committed, oldest first. */
export class PendingUnits<T> {
  private open = new Unit<T>()
  private readonly committing: Unit<T>[] = []
  /** Event ids handled and not yet committed (a duplicate of one is not handled twice). */
  private readonly inFlight = new Set<string>()
  /**
   * The buffers of attempts still running, in the order they began. Other attempts read them, as
   * they read each other's writes when every write went straight to the store: two events of one
   * user on two lanes must see each other's XP, or neither notices the level they reach together.
   */
  private readonly running = new Set<WriteSet>()
  private readonly siblings: Siblings
  private readonly localCommits: LocalCommits

  /** Joins the other runners of `group` on `store` in this process; leave() when the runner ends. */
  constructor(store: Store, group: string) {
    let local = localCommitsByStore.get(store)
    if (!local) localCommitsByStore.set(store, (local = new LocalCommits()))
    this.localCommits = local
    let byGroup = siblingsByStore.get(store)
    if (!byGroup) siblingsByStore.set(store, (byGroup = new Map()))
    let siblings = byGroup.get(group)
    if (!siblings) byGroup.set(group, (siblings = new Siblings()))
    this.siblings = siblings
    siblings.members.add(this as PendingUnits<unknown>)
  }

  leave(): void {
    this.siblings.members.delete(this as PendingUnits<unknown>)
    this.siblings.settled()
  }

  /** A buffer for an attempt that starts now. */
  begin(): WriteSet {
    const writes = new WriteSet()
    this.running.add(writes)
    return writes
  }

  /** The attempt failed: its writes are dropped (its retry writes them again). */
  abandon(writes: WriteSet): void {
    if (this.running.delete(writes)) this.localCommits.release(writes.reads)
  }

  /** Merges a successful attempt's writes into the open unit. */
  complete(eventId: string, writes: WriteSet, completion: T, record: HandledRecord, replayed = false): void {
    this.running.delete(writes)
    this.open.absorb(writes)
    this.open.segments.push({eventId, writes, completion, record, replayed})
    this.inFlight.add(eventId)
  }

  /** Something to be done once the open unit is in (an ack that needs no writes). */
  after(completion: T): void {
    this.open.others.push(completion)
  }

  isHandled(eventId: string): boolean {
    return this.inFlight.has(eventId)
  }

  get idle(): boolean {
    return this.open.empty
  }

  /**
   * The open unit, to commit now (once no read of the store is under way, and no other unit of the
   * group: the versions a commit expects count this process's commits before it, so none may be
   * under way beside it); a fresh one takes its place.
   */
  async take(): Promise<Unit<T>> {
    const siblings = this.siblings
    for (;;) {
      await siblings.noReads()
      if (siblings.commits === 0) break
      await siblings.nextSettle()
    }
    const unit = this.open
    this.open = new Unit<T>()
    this.committing.push(unit)
    this.siblings.commits++
    return unit
  }

  /** The unit from take() is committed, or given up: either way its writes are no longer pending here. */
  settle(unit: Unit<T>): void {
    const index = this.committing.indexOf(unit)
    if (index >= 0) this.committing.splice(index, 1)
    this.siblings.commits--
    this.localCommits.release(unit.reads)
    for (const segment of unit.segments) this.inFlight.delete(segment.eventId)
    this.siblings.settled()
  }

  /**
   * Drops everything not yet being committed (a crash: nothing more is taken). A commit under way
   * may still go in: its unit stays until the flush settles it, and until then the group's reads
   * wait for it, as for any commit.
   */
  discard(): void {
    for (const set of [this.open, ...this.running]) this.localCommits.release(set.reads)
    this.open = new Unit<T>()
    this.inFlight.clear()
    this.running.clear()
    this.siblings.settled()
  }

  /**
   * What a Store.commit of `writes` carries: its writes, the handled records of `segments`, and the
   * versions its reads expect now. Call committed() as soon as it has gone in.
   */
  storeWrites(writes: WriteSet, segments: readonly Segment<T>[]): StoreWrites {
    const out = unitWrites(writes, segments)
    if (writes.reads.length === 0) return out
    // Many events of a unit read the same document (a hot profile): each version is checked once.
    const expect = new Map<string, ExpectedVersion>()
    for (const read of writes.reads) {
      const expected = this.localCommits.expected(read)
      expect.set(`${read.key}\u0000${expected.version}`, expected)
    }
    out.expect = [...expect.values()]
    return out
  }

  /** Whether `read` expects `found` (the version a refused commit found) no longer. */
  isStale(read: DocRead, found: number): boolean {
    return this.localCommits.expected(read).version !== found
  }

  /** A commit of `writes` went in (this process's commits are not another's writes). */
  committed(writes: WriteSet): void {
    if (writes.hasProjectionWrites) this.localCommits.committed(writes.projections)
  }

  /** Appends this runner's uncommitted writes, oldest first; true when `own` is among them. */
  collectLayers(layers: WriteSet[], own: WriteSet): boolean {
    for (const unit of this.committing) if (unit.hasProjectionWrites) layers.push(unit)
    if (this.open.hasProjectionWrites) layers.push(this.open)
    for (const writes of this.running) if (writes.hasProjectionWrites) layers.push(writes)
    return this.running.has(own)
  }

  /**
   * The store as a handler attempt sees it: the store, then every uncommitted write of this
   * group's runners here (its own among them). `own` (from begin(); a fresh WriteSet for a
   * read-only view) takes its writes. `notApplied`: an event id the group's ledger was asked about
   * just before this attempt and did not hold, so no document holds it from this group either (a
   * unit's applied marks and its ledger records commit together): applyOnce under it skips the
   * store's guard. Should another consumer complete it meanwhile, this unit's ledger record is
   * refused at commit, and the event's writes are dropped whole. `completed`: an event the group's
   * ledger holds, replayed onto live state: its guarded writes committed with that record, so none
   * applies again (withoutGuardsOf).
   */
  view(store: Store, own: WriteSet, notApplied?: string, completed?: string): Store {
    const view = this.unitView(store, own, notApplied)
    return completed === undefined ? view : withoutGuardsOf(view, completed)
  }

  private unitView(store: Store, own: WriteSet, notApplied?: string): Store {
    // Without transactions (a standalone mongod) a unit cannot be atomic anyway: writes go straight
    // to the store, each guarded on its own, where every process sees them at once; the unit then
    // carries the derived events and the handled records only.
    if (!store.transactional) return store
    const heldHere = (collection: string, id: string, eventId: string) => {
      const key = docKey(collection, id)
      return this.siblings.layers(own).some((layer) => layer.holds(key, eventId))
    }
    const projections: ProjectionStore = {
      get: (collection, id) => this.read(store, own, collection, id),
      find: (collection, filter, options) => store.projections.find(collection, filter, options),
      count: (collection, filter) => store.projections.count(collection, filter),
      drop: (collection) => store.projections.drop(collection),
      update: async (collection, id, update) => {
        checkPaths(update)
        own.add({collection, id, update})
      },
      applyOnce: async (collection, id, eventId, update) => {
        checkPaths(update)
        if (heldHere(collection, id, eventId)) return false
        if (eventId !== notApplied) {
          // A duplicate that got past the runner's checks (another consumer of the group completed
          // it meanwhile), or a guard id of another event's: the store's guard answers, and the
          // handler learns its write was applied.
          if (await store.projections.isApplied(collection, id, eventId)) return false
          // Asked again after the wait: a sibling may have taken the same guard meanwhile, and both
          // counting it (in what they read back) would cross a threshold that was never crossed.
          if (heldHere(collection, id, eventId)) return false
        }
        own.add({collection, id, update, eventId})
        return true
      },
      isApplied: async (collection, id, eventId) => heldHere(collection, id, eventId) || store.projections.isApplied(collection, id, eventId),
    }
    return withProjections(store, projections)
  }

  /** The document, its version kept in `own` for the commit to expect. */
  private async readVersioned(store: Store, own: WriteSet, collection: string, id: string, key: string): Promise<ProjectionDoc | null> {
    const read: DocRead = {collection, id, key, version: 0, localCommits: this.localCommits.read(key)}
    try {
      const found = await store.projections.getVersioned!(collection, id)
      read.version = found.version
      // Dropped meanwhile (a crash discards every buffer): nothing would commit or release it.
      if (!this.running.has(own)) this.localCommits.release([read])
      else own.reads.push(read)
      return found.doc
    } catch (error) {
      this.localCommits.release([read])
      throw error
    }
  }

  /** A unit being committed may be in the store or not yet: a read waits until none is. */
  private async read(store: Store, own: WriteSet, collection: string, id: string): Promise<ProjectionDoc | null> {
    const siblings = this.siblings
    while (siblings.committing) await siblings.nextSettle()
    const key = docKey(collection, id)
    // An attempt's first read of a document is versioned: its commit expects no other process's write since.
    const versioned = store.projections.getVersioned !== undefined && this.running.has(own) && !own.hasRead(key)
    let base: ProjectionDoc | null
    siblings.reading++
    try {
      base = versioned ? await this.readVersioned(store, own, collection, id, key) : await store.projections.get(collection, id)
    } finally {
      siblings.doneReading()
    }
    // One copy for all of a hot document's uncommitted writes, not one per write.
    let draft: DocDraft | null = null
    for (const layer of siblings.layers(own)) {
      for (const write of layer.writesFor(key) ?? []) (draft ??= new DocDraft(base)).apply(write.update)
    }
    if (draft === null) return base
    const doc = draft.doc!
    doc._id = id
    return doc as ProjectionDoc
  }
}

/**
 * The bookkeeping field is the store's, and every adapter refuses it at commit; refusing it here
 * fails the one handler that wrote it instead of every event committed with it.
 */
function checkPaths(update: ProjectionUpdate): void {
  // for-in, not Object.values/keys: this runs for every write a handler makes.
  for (const operator in update) {
    const paths = update[operator as keyof ProjectionUpdate]
    for (const path in paths) {
      if (path.startsWith(APPLIED_FIELD) && (path.length === APPLIED_FIELD.length || path.charCodeAt(APPLIED_FIELD.length) === 46)) {
        throw new Error(`"${APPLIED_FIELD}" is reserved for applyOnce bookkeeping`)
      }
    }
  }
}

/** A guard of `eventId`'s own: the event's id, or the id and a suffix (`${id}:level`). */
const guardOf = (guard: string, eventId: string): boolean => guard === eventId || (guard.startsWith(eventId) && guard.charCodeAt(eventId.length) === 58)

/**
 * The store as a handler sees it when `eventId` was completed by the group before: every guarded
 * write under a guard of the event's own is already applied (it committed with the ledger record),
 * however many writes the document has taken since; unguarded writes and other guards go through.
 */
export function withoutGuardsOf(store: Store, eventId: string): Store {
  const projections: ProjectionStore = {
    ...store.projections,
    applyOnce: async (collection, id, guard, update) => (guardOf(guard, eventId) ? false : store.projections.applyOnce(collection, id, guard, update)),
    isApplied: async (collection, id, guard) => guardOf(guard, eventId) || store.projections.isApplied(collection, id, guard),
  }
  return withProjections(store, projections)
}

/** `store` seen through other projections; closing it closes nothing (the store is not its own). */
function withProjections(store: Store, projections: ProjectionStore): Store {
  return {
    kind: store.kind,
    transactional: store.transactional,
    events: store.events,
    outbox: store.outbox,
    dlq: store.dlq,
    handled: store.handled,
    projections,
    commit: (writes) => store.commit(writes),
    close: async () => undefined,
  }
}

/** Leaderboards likewise: an increment under a guard of the completed event's own is already made. */
export function boardsWithoutGuardsOf(leaderboards: Leaderboards, eventId: string): Leaderboards {
  return {
    kind: leaderboards.kind,
    incrementOnce: (board, member, delta, guard) => (guardOf(guard, eventId) ? Promise.resolve(null) : leaderboards.incrementOnce(board, member, delta, guard)),
    top: (board, n) => leaderboards.top(board, n),
    score: (board, member) => leaderboards.score(board, member),
    rank: (board, member) => leaderboards.rank(board, member),
    boards: () => leaderboards.boards(),
    drop: (board) => leaderboards.drop(board),
    close: async () => undefined,
  }
}
