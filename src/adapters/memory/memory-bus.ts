/**
 * The in-process Bus: the same semantics as the Redis and Kafka-like adapters, without a server.
 *
 * - A topic has partitions; a message goes to partitionFor(key) (src/core/partition.ts), like every
 *   adapter. A partition is an append-only array with a moving head (trimming), so publish and
 *   delivery are array pushes and reads: no per-message timers or promises.
 * - Ids are one bus-wide sequence, so they are unique and increase within a partition.
 * - A group keeps, per partition, a cursor (next undelivered position) and its pending entries in a
 *   Map ordered by last delivery time: the head is always the oldest, so finding deliveries whose
 *   visibility timeout has passed never scans the rest.
 * - Membership: a consumer is live while it calls next() (or is blocked in one); after
 *   `sessionTimeoutMs` without next() it is dropped from the assignment. Partitions are assigned over
 *   the live members subscribed to the topic, sorted by name: partition p -> members[p % n]. The
 *   assignment is derived from shared state, so two consumers never own one partition at once.
 * - A blocked next() waits on one promise woken by publish (or by its own deadline / the next
 *   redelivery due / a lease check), never by polling.
 * Visibility and leases use the wall clock, not a virtual clock: they are transport mechanics.
 */
import type {
  Bus,
  BusEventId,
  Delivery,
  GroupStats,
  OutgoingMessage,
  PartitionStats,
  SubscribeOptions,
  Subscription,
  TopicInfo,
  TopicSpec,
} from '../../core/ports.js'
import {partitionFor} from '../../core/partition.js'
import {UnknownTopicError} from '../../core/errors.js'

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

export interface MemoryBusOptions {
  /** A consumer that has not called next() for this long loses its partitions (default 30 s). */
  sessionTimeoutMs?: number
  /** Defaults for subscriptions that do not set them. */
  defaultBatchSize?: number
  defaultBlockMs?: number
  defaultVisibilityTimeoutMs?: number
  /** Wall clock (tests may inject one). */
  now?: () => number
}

interface Entry {
  seq: number
  id: string
  key: string
  value: string
  headers: Record<string, string>
  enqueuedAt: number
}

interface Partition {
  entries: Entry[]
  /** Index in `entries` of the oldest retained entry. */
  head: number
  /** Absolute position of entries[0] (positions count every entry ever appended). */
  base: number
}

interface Topic {
  spec: TopicSpec
  partitions: Partition[]
  groups: Map<string, GroupTopic>
  waiters: Set<() => void>
  lastAgeTrim: number
}

interface PendingEntry {
  entry: Entry
  consumer: string
  deliveredAt: number
  count: number
}

interface GroupPartition {
  /** Absolute position of the next entry never delivered to the group. */
  cursor: number
  /** Keyed by entry id, ordered by last delivery time (re-inserted on redelivery). */
  pending: Map<string, PendingEntry>
  /** Entries acked, ever. */
  acked: number
  /** The consumer that last read this partition: another one reading it has taken it over. */
  reader?: string
}

interface GroupTopic {
  topic: Topic
  parts: GroupPartition[]
}

interface Member {
  name: string
  topics: Set<string>
  lastSeen: number
  /** Last heartbeat() while not fetching (lastSeen stays the last fetch: it is what idle reports). */
  beatAt: number
  /** next() calls in progress: a consumer blocked in next() is alive. */
  waiting: number
}

interface Group {
  name: string
  topics: Map<string, GroupTopic>
  members: Map<string, Member>
  consumerPending: Map<string, number>
  /** Live member names joined, to notice membership changes cheaply. */
  liveKey: string
  /** topic -> owner name per partition (null: no live member). */
  owners: Map<string, Array<string | null>>
  /** Open subscriptions, woken when ownership changes (one may just have gained partitions). */
  subs: Set<MemorySubscription>
  /** When departed consumers (closed, with entries still pending) were last seen. */
  departed: Map<string, number>
}

const closedBusError = () => new Error('The in-process bus is closed')

/** Enqueue times of the oldest and newest retained entry over partitions. */
function retainedSpan(partitions: readonly Partition[]): {firstAt: number | null; lastAt: number | null} {
  let firstAt: number | null = null
  let lastAt: number | null = null
  for (const p of partitions) {
    if (p.head >= p.entries.length) continue
    const first = p.entries[p.head].enqueuedAt
    const last = p.entries[p.entries.length - 1].enqueuedAt
    if (firstAt === null || first < firstAt) firstAt = first
    if (lastAt === null || last > lastAt) lastAt = last
  }
  return {firstAt, lastAt}
}

function positionOf(partition: Partition): {first: number; end: number} {
  return {first: partition.base + partition.head, end: partition.base + partition.entries.length}
}

export class MemoryBus implements Bus {
  readonly kind = 'memory'
  private readonly topicsByName = new Map<string, Topic>()
  private readonly groups = new Map<string, Group>()
  private readonly subscriptions = new Set<MemorySubscription>()
  private seq = 0
  private closed = false
  readonly sessionTimeoutMs: number
  readonly defaults: {batchSize: number; blockMs: number; visibilityTimeoutMs: number}
  readonly now: () => number

  constructor(options: MemoryBusOptions = {}) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000
    this.defaults = {
      batchSize: options.defaultBatchSize ?? 100,
      blockMs: options.defaultBlockMs ?? 1_000,
      visibilityTimeoutMs: options.defaultVisibilityTimeoutMs ?? 30_000,
    }
    this.now = options.now ?? Date.now
  }

  get isClosed(): boolean {
    return this.closed
  }

  private check(): void {
    if (this.closed) throw closedBusError()
  }

  private topic(name: string): Topic {
    const topic = this.topicsByName.get(name)
    if (!topic) throw new UnknownTopicError(name)
    return topic
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.check()
    for (const spec of specs) {
      if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
        throw new Error(`Topic "${spec.name}" needs a positive integer partition count, got ${spec.partitions}`)
      }
      const existing = this.topicsByName.get(spec.name)
      if (existing) {
        // Partitions never shrink (keys would move); retention follows the latest spec.
        if (spec.partitions > existing.partitions.length) {
          throw new Error(
            `Topic "${spec.name}" has ${existing.partitions.length} partitions; changing it to ${spec.partitions} would move keys`,
          )
        }
        existing.spec = {...existing.spec, retention: spec.retention ?? existing.spec.retention}
        continue
      }
      this.topicsByName.set(spec.name, {
        spec: {...spec},
        partitions: Array.from({length: spec.partitions}, () => ({entries: [], head: 0, base: 0})),
        groups: new Map(),
        waiters: new Set(),
        lastAgeTrim: this.now(),
      })
    }
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<string[]> {
    this.check()
    const ids: string[] = new Array(messages.length)
    const now = this.now()
    const touched = new Set<Topic>()
    // Refused whole before anything is written, as the port says.
    for (const message of messages) this.topic(message.topic)
    let lastTopic: Topic | undefined
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]
      const topic = lastTopic && lastTopic.spec.name === message.topic ? lastTopic : this.topic(message.topic)
      lastTopic = topic
      const id = String(++this.seq)
      const partition = topic.partitions[partitionFor(message.key, topic.partitions.length)]
      partition.entries.push({seq: this.seq, id, key: message.key, value: message.value, headers: message.headers, enqueuedAt: now})
      ids[i] = id
      touched.add(topic)
    }
    for (const topic of touched) {
      this.applyRetention(topic, now)
      if (topic.waiters.size > 0) {
        const waiters = [...topic.waiters]
        topic.waiters.clear()
        for (const wake of waiters) wake()
      }
    }
    return ids
  }

  /** The retention of the spec, cheaply: maxLen once 10% over (like Redis' "~"), age once a second. */
  private applyRetention(topic: Topic, now: number): void {
    const retention = topic.spec.retention
    if (!retention) return
    if (retention.maxLen !== undefined) {
      const slack = Math.max(1, Math.floor(retention.maxLen / 10))
      for (const partition of topic.partitions) {
        if (partition.entries.length - partition.head > retention.maxLen + slack) this.trimPartition(topic, partition, retention.maxLen, null)
      }
    }
    if (retention.maxAgeMs !== undefined && now - topic.lastAgeTrim >= 1_000) {
      topic.lastAgeTrim = now
      for (const partition of topic.partitions) this.trimPartition(topic, partition, null, now - retention.maxAgeMs)
    }
  }

  /** Removes entries beyond maxLen and older than minEnqueuedAt; returns how many. */
  private trimPartition(topic: Topic, partition: Partition, maxLen: number | null, minEnqueuedAt: number | null): number {
    const before = partition.head
    const length = partition.entries.length
    if (maxLen !== null && length - partition.head > maxLen) partition.head = length - maxLen
    if (minEnqueuedAt !== null) {
      while (partition.head < length && partition.entries[partition.head].enqueuedAt < minEnqueuedAt) partition.head++
    }
    const removed = partition.head - before
    if (removed === 0) return 0
    // Compact now and then, so trimmed entries can be collected (pending ones stay referenced).
    if (partition.head > 1024 && partition.head * 2 > length) {
      partition.entries = partition.entries.slice(partition.head)
      partition.base += partition.head
      partition.head = 0
    }
    const first = partition.base + partition.head
    const index = topic.partitions.indexOf(partition)
    for (const groupTopic of topic.groups.values()) {
      const part = groupTopic.parts[index]
      if (part.cursor < first) part.cursor = first
    }
    return removed
  }

  async trim(topicName: string, policy: {maxAgeMs?: number; maxLen?: number}): Promise<number> {
    this.check()
    const topic = this.topic(topicName)
    const minEnqueuedAt = policy.maxAgeMs === undefined ? null : this.now() - policy.maxAgeMs
    let removed = 0
    for (const partition of topic.partitions) removed += this.trimPartition(topic, partition, policy.maxLen ?? null, minEnqueuedAt)
    return removed
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.check()
    if (options.topics.length === 0) throw new Error('subscribe() needs at least one topic')
    const topics = options.topics.map((name) => this.topic(name))
    let group = this.groups.get(options.group)
    if (!group) {
      group = {
        name: options.group,
        topics: new Map(),
        members: new Map(),
        consumerPending: new Map(),
        liveKey: '',
        owners: new Map(),
        subs: new Set(),
        departed: new Map(),
      }
      this.groups.set(options.group, group)
    }
    for (const topic of topics) {
      if (group.topics.has(topic.spec.name)) continue
      const groupTopic: GroupTopic = {
        topic,
        parts: topic.partitions.map((partition) => {
          const {first, end} = positionOf(partition)
          return {cursor: options.startFrom === 'latest' ? end : first, pending: new Map(), acked: 0}
        }),
      }
      group.topics.set(topic.spec.name, groupTopic)
      topic.groups.set(group.name, groupTopic)
    }
    const existing = group.members.get(options.consumer)
    if (existing && this.isLive(existing, this.now())) {
      throw new Error(`Consumer "${options.consumer}" is already a live member of group "${options.group}"`)
    }
    const member: Member = {name: options.consumer, topics: new Set(options.topics), lastSeen: this.now(), beatAt: 0, waiting: 0}
    group.members.set(member.name, member)
    group.departed.delete(member.name)
    const subscription = new MemorySubscription(this, group, member, topics, {
      batchSize: options.batchSize ?? this.defaults.batchSize,
      blockMs: options.blockMs ?? this.defaults.blockMs,
      visibilityTimeoutMs: options.visibilityTimeoutMs ?? this.defaults.visibilityTimeoutMs,
    })
    this.subscriptions.add(subscription)
    group.subs.add(subscription)
    this.refreshMembership(group, this.now())
    return subscription
  }

  /** @internal */
  isLive(member: Member, now: number): boolean {
    return member.waiting > 0 || now - Math.max(member.lastSeen, member.beatAt) <= this.sessionTimeoutMs
  }

  /** @internal Recomputes ownership when the set of live members changed. */
  refreshMembership(group: Group, now: number): void {
    const live: Member[] = []
    for (const member of group.members.values()) if (this.isLive(member, now)) live.push(member)
    live.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const liveKey = live.map((m) => m.name).join('\u0000')
    if (liveKey === group.liveKey && group.owners.size === group.topics.size) return
    group.liveKey = liveKey
    for (const [name, groupTopic] of group.topics) {
      const members = live.filter((m) => m.topics.has(name))
      group.owners.set(
        name,
        groupTopic.parts.map((_, p) => (members.length === 0 ? null : members[p % members.length].name)),
      )
    }
    for (const sub of group.subs) sub.wake()
  }

  /** @internal */
  forget(subscription: MemorySubscription): void {
    this.subscriptions.delete(subscription)
  }

  async stats(filter: {group?: string; topic?: string} = {}): Promise<GroupStats[]> {
    this.check()
    const now = this.now()
    const out: GroupStats[] = []
    for (const group of this.groups.values()) {
      if (filter.group !== undefined && group.name !== filter.group) continue
      this.refreshMembership(group, now)
      for (const [topicName, groupTopic] of group.topics) {
        if (filter.topic !== undefined && topicName !== filter.topic) continue
        const perConsumer = new Map<string, number>()
        const owners = group.owners.get(topicName) ?? []
        const partitions = groupTopic.parts.map((part, index): PartitionStats => {
          for (const p of part.pending.values()) perConsumer.set(p.consumer, (perConsumer.get(p.consumer) ?? 0) + 1)
          const head = part.pending.values().next()
          return {
            partition: index,
            lag: Math.max(0, positionOf(groupTopic.topic.partitions[index]).end - part.cursor),
            pending: part.pending.size,
            oldestPendingAgeMs: head.done ? null : Math.max(0, now - head.value.deliveredAt),
            owner: owners[index] ?? null,
            acked: part.acked,
          }
        })
        const names = new Set<string>([...group.members.keys()].filter((name) => group.members.get(name)!.topics.has(topicName)))
        for (const name of perConsumer.keys()) names.add(name)
        const ages = partitions.map((p) => p.oldestPendingAgeMs).filter((age): age is number => age !== null)
        out.push({
          group: group.name,
          topic: topicName,
          lag: partitions.reduce((sum, p) => sum + p.lag, 0),
          pending: partitions.reduce((sum, p) => sum + p.pending, 0),
          oldestPendingAgeMs: ages.length === 0 ? null : Math.max(...ages),
          consumers: [...names].sort().map((name) => ({
            name,
            pending: perConsumer.get(name) ?? 0,
            idleMs: Math.max(0, now - (group.members.get(name)?.lastSeen ?? group.departed.get(name) ?? now)),
            live: group.members.has(name) && this.isLive(group.members.get(name)!, now),
          })),
          partitions,
          acked: partitions.reduce((sum, p) => sum + (p.acked ?? 0), 0),
        })
      }
    }
    return out
  }

  async topics(): Promise<TopicInfo[]> {
    this.check()
    return [...this.topicsByName.values()].map((topic) => ({
      name: topic.spec.name,
      partitions: topic.partitions.length,
      length: topic.partitions.reduce((sum, p) => sum + p.entries.length - p.head, 0),
      groups: [...topic.groups.keys()],
      appended: topic.partitions.reduce((sum, p) => sum + positionOf(p).end, 0),
      ...retainedSpan(topic.partitions),
      ...(topic.spec.retention ? {retention: {...topic.spec.retention}} : {}),
    }))
  }

  async positionAt(topicName: string, partitionIndex: number, at: number | 'end'): Promise<string | null> {
    this.check()
    const partition = this.topic(topicName).partitions[partitionIndex]
    if (!partition) throw new Error(`Topic "${topicName}" has no partition ${partitionIndex}`)
    const {entries, head} = partition
    let index = entries.length
    if (at !== 'end') {
      // Enqueue times only grow along a partition: the first entry at or after `at`.
      let lo = head
      let hi = entries.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (entries[mid].enqueuedAt < at) lo = mid + 1
        else hi = mid
      }
      index = lo
    }
    return index <= head ? null : String(entries[index - 1].seq)
  }

  async read(topicName: string, partitionIndex: number, afterId: string | null, count: number): Promise<Delivery[]> {
    this.check()
    const topic = this.topic(topicName)
    const partition = topic.partitions[partitionIndex]
    if (!partition) throw new Error(`Topic "${topicName}" has no partition ${partitionIndex}`)
    let index = partition.head
    if (afterId !== null) {
      const after = Number(afterId)
      if (!Number.isFinite(after)) throw new Error(`Invalid in-process message id "${afterId}"`)
      let lo = partition.head
      let hi = partition.entries.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (partition.entries[mid].seq <= after) lo = mid + 1
        else hi = mid
      }
      index = lo
    }
    const out: Delivery[] = []
    for (let i = index; i < partition.entries.length && out.length < count; i++) {
      out.push(toDelivery(partition.entries[i], topicName, partitionIndex, 0))
    }
    return out
  }

  async eventIds(topicName: string, partitionIndex: number, options: {afterId?: string | null; sinceMs?: number; count: number}): Promise<BusEventId[]> {
    this.check()
    const topic = this.topic(topicName)
    const partition = topic.partitions[partitionIndex]
    if (!partition) throw new Error(`Topic "${topicName}" has no partition ${partitionIndex}`)
    const entries = partition.entries
    // First index whose entry passes `after` (entries are in seq and enqueuedAt order).
    const firstWhere = (after: (e: Entry) => boolean): number => {
      let lo = partition.head
      let hi = entries.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (after(entries[mid])) hi = mid
        else lo = mid + 1
      }
      return lo
    }
    let index = partition.head
    if (options.afterId !== undefined && options.afterId !== null) {
      const after = Number(options.afterId)
      if (!Number.isFinite(after)) throw new Error(`Invalid in-process message id "${options.afterId}"`)
      index = firstWhere((e) => e.seq > after)
    } else if (options.sinceMs !== undefined) {
      const since = options.sinceMs
      index = firstWhere((e) => e.enqueuedAt >= since)
    }
    const out: BusEventId[] = []
    for (let i = index; i < entries.length && out.length < options.count; i++) {
      const e = entries[i]
      out.push({id: e.id, eventId: e.headers?.event_id ?? null, enqueuedAt: e.enqueuedAt})
    }
    return out
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const subscription of [...this.subscriptions]) subscription.abandon()
    for (const topic of this.topicsByName.values()) {
      const waiters = [...topic.waiters]
      topic.waiters.clear()
      for (const wake of waiters) wake()
    }
  }
}

function toDelivery(entry: Entry, topic: string, partition: number, deliveryCount: number): Delivery {
  return {
    id: entry.id,
    topic,
    partition,
    key: entry.key,
    value: entry.value,
    headers: entry.headers,
    deliveryCount,
    enqueuedAt: entry.enqueuedAt,
  }
}

class MemorySubscription implements Subscription {
  private closed = false
  private rotation = 0
  private readonly wakers = new Set<() => void>()

  constructor(
    private readonly bus: MemoryBus,
    private readonly group: Group,
    private readonly member: Member,
    private readonly topics: Topic[],
    private readonly options: {batchSize: number; blockMs: number; visibilityTimeoutMs: number},
  ) {}

  assignment(): ReadonlyArray<{topic: string; partition: number}> {
    if (this.closed || this.bus.isClosed) return []
    this.bus.refreshMembership(this.group, this.bus.now())
    const out: Array<{topic: string; partition: number}> = []
    for (const topic of this.topics) {
      const owners = this.group.owners.get(topic.spec.name) ?? []
      owners.forEach((owner, partition) => {
        if (owner === this.member.name) out.push({topic: topic.spec.name, partition})
      })
    }
    return out
  }

  async heartbeat(): Promise<void> {
    if (this.closed) throw new Error('This subscription is closed')
    if (this.bus.isClosed) throw closedBusError()
    this.member.beatAt = this.bus.now()
  }

  async next(signal?: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new Error('This subscription is closed')
    if (this.bus.isClosed) throw closedBusError()
    // A network bus yields to the event loop on every round trip; this one must too, or consumers and
    // the relay feeding each other through resolved promises starve every timer (rate control,
    // progress, heartbeats) until the whole backlog is gone.
    await yieldToLoop()
    const deadline = this.bus.now() + this.options.blockMs
    this.member.waiting++
    try {
      for (;;) {
        const now = this.bus.now()
        this.member.lastSeen = now
        const {deliveries, wakeAt} = this.poll(now)
        if (deliveries.length > 0) return deliveries
        if (this.closed || this.bus.isClosed || signal?.aborted || now >= deadline) return []
        // Wait for a publish, the deadline, the next redelivery due, or a lease check (another
        // member may have died), whichever comes first.
        const leaseCheck = now + Math.max(50, Math.floor(this.bus.sessionTimeoutMs / 2))
        await this.wait(Math.min(deadline, wakeAt ?? Number.POSITIVE_INFINITY, leaseCheck) - now, signal)
      }
    } finally {
      this.member.waiting--
      this.member.lastSeen = this.bus.now()
    }
  }

  private wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const wake = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', wake)
        for (const topic of this.topics) topic.waiters.delete(wake)
        this.wakers.delete(wake)
        resolve()
      }
      timer = setTimeout(wake, Math.max(1, ms))
      signal?.addEventListener('abort', wake, {once: true})
      for (const topic of this.topics) topic.waiters.add(wake)
      this.wakers.add(wake)
    })
  }

  /** Redeliveries due first, then new entries, over the owned partitions (rotating the start). */
  private poll(now: number): {deliveries: Delivery[]; wakeAt: number | null} {
    const group = this.group
    this.bus.refreshMembership(group, now)
    const limit = this.options.batchSize
    const visibility = this.options.visibilityTimeoutMs
    const owned: Array<{topic: Topic; index: number; part: GroupPartition}> = []
    for (const topic of this.topics) {
      const owners = group.owners.get(topic.spec.name)!
      const groupTopic = group.topics.get(topic.spec.name)!
      for (let p = 0; p < owners.length; p++) {
        if (owners[p] === this.member.name) owned.push({topic, index: p, part: groupTopic.parts[p]})
      }
    }
    const deliveries: Delivery[] = []
    let wakeAt: number | null = null
    const n = owned.length
    if (n === 0) return {deliveries, wakeAt}
    const start = this.rotation++ % n
    const name = this.member.name
    const counts = group.consumerPending

    const redeliver = (topic: Topic, index: number, part: GroupPartition, pending: PendingEntry) => {
      part.pending.delete(pending.entry.id)
      if (pending.consumer !== name) {
        counts.set(pending.consumer, (counts.get(pending.consumer) ?? 1) - 1)
        counts.set(name, (counts.get(name) ?? 0) + 1)
        pending.consumer = name
      }
      pending.count++
      pending.deliveredAt = now
      part.pending.set(pending.entry.id, pending)
      deliveries.push(toDelivery(pending.entry, topic.spec.name, index, pending.count))
    }

    // 1. A partition taken over: what its previous owner left unacked comes first, at once and in
    // log order (as the Redis bus claims it), and nothing newer until all of it is out; else a
    // later event of an aggregate would overtake an earlier one waiting for its visibility timeout.
    const takingOver = new Set<GroupPartition>()
    for (let k = 0; k < n; k++) {
      const {topic, index, part} = owned[(start + k) % n]
      if (part.reader === name) continue
      const left = [...part.pending.values()].filter((p) => p.consumer !== name).sort((a, b) => a.entry.seq - b.entry.seq)
      for (const pending of left) {
        if (deliveries.length >= limit) break
        redeliver(topic, index, part, pending)
      }
      if (left.length > 0 && deliveries.length >= limit && left.some((p) => p.consumer !== name)) takingOver.add(part)
      else part.reader = name
    }

    // 2. Our redeliveries whose visibility timeout has passed (pending maps are in delivery order).
    for (let k = 0; k < n && deliveries.length < limit; k++) {
      const {topic, index, part} = owned[(start + k) % n]
      for (const pending of part.pending.values()) {
        if (pending.consumer !== name) continue
        const due = pending.deliveredAt + visibility
        if (due > now) {
          if (wakeAt === null || due < wakeAt) wakeAt = due
          break
        }
        if (deliveries.length >= limit) break
        redeliver(topic, index, part, pending)
      }
    }

    // 3. New entries from the group's cursor.
    let delivered = 0
    for (let k = 0; k < n && deliveries.length < limit; k++) {
      const {topic, index, part} = owned[(start + k) % n]
      if (takingOver.has(part)) continue
      const partition = topic.partitions[index]
      const end = partition.base + partition.entries.length
      while (part.cursor < end && deliveries.length < limit) {
        const entry = partition.entries[part.cursor - partition.base]
        part.cursor++
        part.pending.set(entry.id, {entry, consumer: name, deliveredAt: now, count: 1})
        deliveries.push(toDelivery(entry, topic.spec.name, index, 1))
        delivered++
      }
    }
    if (delivered > 0) counts.set(name, (counts.get(name) ?? 0) + delivered)
    return {deliveries, wakeAt}
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    if (this.bus.isClosed) throw closedBusError()
    const counts = this.group.consumerPending
    for (const delivery of deliveries) {
      const part = this.group.topics.get(delivery.topic)?.parts[delivery.partition]
      const pending = part?.pending.get(delivery.id)
      if (!pending) continue // already acked, or trimmed away: acks are idempotent
      part!.pending.delete(delivery.id)
      part!.acked++
      counts.set(pending.consumer, (counts.get(pending.consumer) ?? 1) - 1)
    }
  }

  async extend(deliveries: readonly Delivery[]): Promise<void> {
    if (this.bus.isClosed) throw closedBusError()
    const now = this.bus.now()
    for (const delivery of deliveries) {
      const part = this.group.topics.get(delivery.topic)?.parts[delivery.partition]
      const pending = part?.pending.get(delivery.id)
      if (!pending || pending.consumer !== this.member.name) continue
      // To the end of the map: pending maps stay in delivery order (poll() stops at the first not due).
      part!.pending.delete(delivery.id)
      pending.deliveredAt = now
      part!.pending.set(delivery.id, pending)
    }
  }

  async release(deliveries: readonly Delivery[]): Promise<void> {
    if (this.bus.isClosed) throw closedBusError()
    const byPart = new Map<GroupPartition, Set<string>>()
    for (const delivery of deliveries) {
      const part = this.group.topics.get(delivery.topic)?.parts[delivery.partition]
      const pending = part?.pending.get(delivery.id)
      if (!pending || pending.consumer !== this.member.name || pending.count !== delivery.deliveryCount) continue
      pending.deliveredAt = Number.NEGATIVE_INFINITY
      let ids = byPart.get(part!)
      if (!ids) byPart.set(part!, (ids = new Set()))
      ids.add(delivery.id)
    }
    // To the front of the map, in log order: poll() takes the due ones from the front.
    for (const [part, ids] of byPart) {
      const released = [...part.pending.values()].filter((p) => ids.has(p.entry.id)).sort((a, b) => a.entry.seq - b.entry.seq)
      const rest = [...part.pending.entries()].filter(([id]) => !ids.has(id))
      part.pending.clear()
      for (const p of released) part.pending.set(p.entry.id, p)
      for (const [id, p] of rest) part.pending.set(id, p)
    }
    if (byPart.size > 0) this.wake()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.abandon()
  }

  /** Ends a blocked next() early so it polls again. */
  wake(): void {
    for (const wake of [...this.wakers]) wake()
  }

  /** Leaves the group: pending entries stay for the partitions' next owners. */
  abandon(): void {
    this.closed = true
    if (this.group.members.get(this.member.name) === this.member) {
      this.group.members.delete(this.member.name)
      this.group.departed.set(this.member.name, this.member.lastSeen)
    }
    this.group.subs.delete(this)
    this.bus.refreshMembership(this.group, this.bus.now())
    this.bus.forget(this)
    this.wake()
  }
}
