/**
 * The Kafka Bus (kafkajs 2; nothing of kafkajs leaves this folder, so another client could replace it).
 *
 * Layout: a tektree topic is a Kafka topic of the same name with the catalog's partition count;
 * publish() names the partition itself, partitionFor(key) (src/core/partition.ts), never Kafka's
 * murmur2 partitioner, so a key lands on the partition it lands on with every other bus and one
 * aggregate's events stay in one partition's order while a group spans processes. Topics are made
 * with message.timestamp.type=LogAppendTime (enqueuedAt is the broker's clock, as on Redis) and
 * retention.ms = the catalog's maxAgeMs (-1 when it keeps everything).
 *
 * What Kafka does differently from Redis Streams, and how the port is kept:
 * - No per-message ack. A group's position per partition is one committed offset: ack() commits up
 *   to the first delivery still unacked, so an unacked earlier message holds back the commit of
 *   later acked ones, and after a crash or a rebalance the partition's next owner gets everything
 *   from that offset again (redelivery is at-least-once, as on Redis; consumers dedupe by event_id).
 *   An ack that arrives after the partition moved to another consumer is lost the same way.
 * - No pending list on the broker. What a consumer delivered is written into the commit's metadata
 *   string (d: the offset after the last delivered, t: when the oldest pending was delivered, x:
 *   acked past the commit, s: where the group started, c: delivery counts above 1, a: when the owner
 *   last delivered or acked, its idle time): it goes with the next commit, which stats() in the same
 *   process waits for. So stats() from any process tells lag (log end - d) from pending
 *   (d - committed - x), Kafka's own LAG (log end - committed, what kafka-consumer-groups shows) is
 *   lag + pending + x, and a new owner knows which messages are redeliveries (deliveryCount >= 2).
 * - The visibility timeout is this consumer's: an unacked delivery older than it is handed out
 *   again by the subscription that holds it (Kafka would only redeliver after a rebalance).
 * - Membership is Kafka's consumer group (kafkajs's: classic protocol, round-robin assignment). A
 *   new group's start (log start, or end for 'latest') is committed at subscribe(), as XGROUP
 *   CREATE makes a Redis group: it shows in stats() before its first join has finished.
 *   kafkajs heartbeats on its own while it fetches; like Kafka's max.poll.interval.ms, a
 *   subscription whose owner neither calls next() nor heartbeat() for the session timeout leaves
 *   the group (its partitions move) and joins again on its next call.
 * - Retention is by topic configuration (retention.ms, applied by the broker); trim() deletes
 *   records below an offset (DeleteRecords); maxLen has no Kafka setting and is applied by trim().
 *   The length limit is known only to the process that ensured the topic (topics() shows it there).
 * - No sorted sets: openRuntime keeps the leaderboards in the store (src/adapters/store-leaderboards).
 * - read(), eventIds() and topics()' first/last times fetch outside any group through kafkajs's
 *   own cluster object (kafkajs has no manual assignment): nothing shows up as a group.
 * - Publishing is bounded: batches of at most 500 messages / 512 KiB, at most 4 in flight per bus
 *   (unbounded concurrent sends gave "Response without match" and MESSAGE_TOO_LARGE under load).
 */
import {Kafka, logLevel, AssignerProtocol, type Admin, type Consumer, type Producer, type LogEntry, type EachBatchPayload} from 'kafkajs'
import {UnknownTopicError} from '../../core/errors.js'
import {partitionFor} from '../../core/partition.js'
import type {Bus, BusEventId, ConsumerInfo, Delivery, GroupStats, OutgoingMessage, PartitionStats, SubscribeOptions, Subscription, TopicInfo, TopicSpec} from '../../core/ports.js'

export interface KafkaBusOptions {
  /** host:port list (kafka://host:port,host2:port in a URL). */
  brokers: string[]
  /** A consumer that neither fetches nor beats for this long loses its partitions (default 10 s). */
  sessionTimeoutMs?: number
  /** Bound on connecting (default 5 s). */
  connectTimeoutMs?: number
  defaultBatchSize?: number
  defaultBlockMs?: number
  defaultVisibilityTimeoutMs?: number
  /** kafkajs's errors (default: ignored; its other log levels are dropped). */
  onError?: (error: Error) => void
  /** client.id prefix (default "tektree"). */
  clientId?: string
}

interface TopicMeta {
  partitions: number
  retention?: {maxAgeMs?: number; maxLen?: number}
}

/** The commit metadata (see the header). */
interface CommitMeta {
  d?: number
  t?: number | null
  x?: number
  s?: number
  c?: Record<string, number>
  /** When the owner last delivered or acked here (ms): its idle time in stats(). */
  a?: number
}

const MAX_BATCH_MESSAGES = 500
const MAX_BATCH_BYTES = 512 * 1024
const MAX_IN_FLIGHT = 4
const READ_MAX_BYTES = 1024 * 1024
/** How long close() waits for each step that needs the broker (a commit, a disconnect). */
const CLOSE_WAIT_MS = 5_000

const closedBusError = () => new Error('The Kafka bus is closed')

function parseMeta(text: string | null | undefined): CommitMeta {
  if (!text) return {}
  try {
    const parsed = JSON.parse(text) as unknown
    return parsed && typeof parsed === 'object' ? (parsed as CommitMeta) : {}
  } catch {
    return {}
  }
}

function headersOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!raw || typeof raw !== 'object') return out
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (value === undefined || value === null) continue
    const one = Array.isArray(value) ? value[value.length - 1] : value
    out[name] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one)
  }
  return out
}

interface RawMessage {
  offset: string
  timestamp: string
  key: Buffer | null
  value: Buffer | null
  headers?: unknown
}

function toDelivery(message: RawMessage, topic: string, partition: number, deliveryCount: number): Delivery {
  return {
    id: message.offset,
    topic,
    partition,
    key: message.key ? message.key.toString('utf8') : '',
    value: message.value ? message.value.toString('utf8') : '',
    headers: headersOf(message.headers),
    deliveryCount,
    enqueuedAt: Number(message.timestamp),
  }
}

const sleep = (ms: number, ...signals: Array<AbortSignal | undefined>) =>
  new Promise<void>((resolve) => {
    if (signals.some((signal) => signal?.aborted)) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      for (const signal of signals) signal?.removeEventListener('abort', done)
      resolve()
    }
    for (const signal of signals) signal?.addEventListener('abort', done, {once: true})
  })

/** A counting semaphore: at most `limit` holders. */
class Gate {
  private active = 0
  private readonly waiting: Array<() => void> = []
  constructor(private readonly limit: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.active++
    try {
      return await task()
    } finally {
      this.active--
      this.waiting.shift()?.()
    }
  }
}

/** The fetch part of kafkajs's internal cluster (a frozen API: kafkajs has had no release since 2023). */
interface RawCluster {
  connect(): Promise<void>
  disconnect(): Promise<void>
  addTargetTopic(topic: string): Promise<void>
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>
  findGroupCoordinator(query: {groupId: string}): Promise<{offsetCommit(request: Record<string, unknown>): Promise<unknown>}>
  findBroker(query: {nodeId: string}): Promise<{
    fetch(request: Record<string, unknown>): Promise<{responses: Array<{topicName: string; partitions: Array<{partition: number; errorCode: number; highWatermark: string; messages: RawMessage[]}>}>}>
  }>
}

/**
 * Runs `task` again while it fails with an error kafkajs marks retriable (a coordinator loading), for
 * up to 75 attempts, each with kafkajs's own retries. `stop` (the bus closed) ends it: a loop left
 * running against a broker that is gone kept the process alive for minutes after close().
 */
async function retrying<T>(task: () => Promise<T>, stop: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await task()
    } catch (error) {
      if (attempt >= 75 || !isRetriable(error)) throw error
      await sleep(200, stop)
      if (stop.aborted) throw closedBusError()
    }
  }
}

/** kafkajs's retriable errors, also when wrapped in its "number of retries exceeded", and a topic not yet known. */
function isRetriable(error: unknown): boolean {
  const e = error as {retriable?: unknown; originalError?: {retriable?: unknown; type?: unknown}; type?: unknown} | null
  if (!e) return false
  const types = ['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'COORDINATOR_LOAD_IN_PROGRESS', 'COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR']
  return e.retriable === true || e.originalError?.retriable === true || types.includes(String(e.type)) || types.includes(String(e.originalError?.type))
}

/** Runs `task` again on any failure, for up to 50 attempts (reads that race a topic's creation), until `stop` (as retrying). */
async function settled<T>(task: () => Promise<T>, stop: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await task()
    } catch (error) {
      if (attempt >= 50) throw error
      await sleep(200, stop)
      if (stop.aborted) throw closedBusError()
    }
  }
}

/** Waits for `task` (its failure ignored) for at most `ms`: a broker that is gone is not waited for. The timer does not outlive the wait. */
async function bounded(task: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([task?.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
  clearTimeout(timer)
}

function errorType(error: unknown): string {
  return String((error as {type?: unknown})?.type ?? '')
}

export class KafkaBus implements Bus {
  readonly kind = 'kafka'
  readonly sessionTimeoutMs: number
  /** @internal */ readonly defaults: {batchSize: number; blockMs: number; visibilityTimeoutMs: number}
  /** @internal */ readonly options: KafkaBusOptions
  private readonly kafka: Kafka
  private readonly topicCache = new Map<string, TopicMeta>()
  private readonly subscriptions = new Set<KafkaSubscription>()
  private readonly gate = new Gate(MAX_IN_FLIGHT)
  private producer?: Producer
  private producerReady?: Promise<Producer>
  private cluster?: Promise<RawCluster>
  private closed = false
  /** @internal Aborted by close() once the subscriptions have committed: every retry loop gives up. */
  readonly stopping = new AbortController()

  constructor(
    /** @internal */ readonly admin: Admin,
    kafka: Kafka,
    options: KafkaBusOptions,
  ) {
    this.kafka = kafka
    this.options = options
    this.sessionTimeoutMs = Math.max(500, options.sessionTimeoutMs ?? 10_000)
    this.defaults = {
      batchSize: options.defaultBatchSize ?? 100,
      blockMs: options.defaultBlockMs ?? 1_000,
      visibilityTimeoutMs: options.defaultVisibilityTimeoutMs ?? 30_000,
    }
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** @internal */ check(): void {
    if (this.closed) throw closedBusError()
  }

  /** @internal A kafkajs client for one consumer (its client.id is the consumer's name, as kafka-consumer-groups shows it). */
  clientFor(consumer: string): Kafka {
    return makeKafka(this.options, consumer)
  }

  /** @internal */ async topicMeta(name: string): Promise<TopicMeta> {
    const cached = this.topicCache.get(name)
    if (cached) return cached
    const partitions = await this.partitionCount(name)
    if (partitions === null) throw new UnknownTopicError(name)
    const meta: TopicMeta = {partitions}
    this.topicCache.set(name, meta)
    return meta
  }

  private async partitionCount(name: string): Promise<number | null> {
    try {
      const {topics} = await this.admin.fetchTopicMetadata({topics: [name]})
      const found = topics.find((t) => t.name === name)
      return found ? found.partitions.length : null
    } catch (error) {
      if (errorType(error) === 'UNKNOWN_TOPIC_OR_PARTITION') return null
      throw error
    }
  }

  /** @internal Low and high watermarks per partition (retried: a topic just made may not be known to kafkajs's metadata yet). */
  topicOffsets(topic: string): Promise<Array<{partition: number; offset: string; high: string; low: string}>> {
    return settled(() => this.admin.fetchTopicOffsets(topic), this.stopping.signal)
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.check()
    for (const spec of specs) {
      if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
        throw new Error(`Topic "${spec.name}" needs a positive integer partition count, got ${spec.partitions}`)
      }
      const existing = await this.partitionCount(spec.name)
      const retentionMs = String(spec.retention?.maxAgeMs ?? -1)
      if (existing === null) {
        try {
          await this.admin.createTopics({
            waitForLeaders: true,
            topics: [
              {
                topic: spec.name,
                numPartitions: spec.partitions,
                configEntries: [
                  {name: 'message.timestamp.type', value: 'LogAppendTime'},
                  {name: 'retention.ms', value: retentionMs},
                ],
              },
            ],
          })
        } catch (error) {
          // Another process made it meanwhile: check it as an existing one below. Or it was made
          // and kafkajs's wait for its leaders asked before the broker's metadata had it.
          const type = errorType(error)
          if (type !== 'TOPIC_ALREADY_EXISTS' && type !== 'UNKNOWN_TOPIC_OR_PARTITION' && !/already exists/i.test(String((error as Error).message))) throw error
        }
      }
      const partitions =
        existing ??
        (await settled(async () => {
          const count = await this.partitionCount(spec.name)
          if (count === null) throw new Error(`Topic "${spec.name}" was created but the broker does not list it yet`)
          return count
        }, this.stopping.signal))
      if (partitions < spec.partitions) {
        // Routing by partitionFor(key, fewer) would put keys where tektree's other processes do not look.
        throw new Error(
          `Topic "${spec.name}" exists on the Kafka broker with ${partitions} partition${partitions === 1 ? '' : 's'}; tektree expects ${spec.partitions}. ` +
            `Add partitions with kafka-topics --alter --partitions ${spec.partitions} before any event is published, or delete the topic so that tektree creates it`,
        )
      }
      if (existing !== null && spec.retention?.maxAgeMs !== undefined) {
        await retrying(() => this.admin.alterConfigs({validateOnly: false, resources: [{type: 2, name: spec.name, configEntries: [{name: 'retention.ms', value: retentionMs}]}]}), this.stopping.signal)
      }
      const previous = this.topicCache.get(spec.name)
      const retention = spec.retention ?? previous?.retention
      this.topicCache.set(spec.name, {partitions, ...(retention ? {retention} : {})})
    }
  }

  private async getProducer(): Promise<Producer> {
    if (this.producer) return this.producer
    this.producerReady ??= (async () => {
      const producer = this.kafka.producer({
        allowAutoTopicCreation: false,
        // Partitions are chosen by tektree (partitionFor); this only silences kafkajs's default-partitioner warning.
        createPartitioner: () => ({message}) => message.partition ?? 0,
        maxInFlightRequests: MAX_IN_FLIGHT,
      })
      await producer.connect()
      if (this.closed) {
        // close() ran meanwhile and did not see it: its connections would keep the process alive.
        await bounded(producer.disconnect(), CLOSE_WAIT_MS)
        throw closedBusError()
      }
      this.producer = producer
      return producer
    })()
    try {
      return await this.producerReady
    } catch (error) {
      this.producerReady = undefined
      throw error
    }
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<string[]> {
    this.check()
    if (messages.length === 0) return []
    const metas = new Map<string, TopicMeta>()
    for (const message of messages) if (!metas.has(message.topic)) metas.set(message.topic, await this.topicMeta(message.topic))
    const producer = await this.getProducer()
    const ids: string[] = new Array(messages.length)
    for (let start = 0; start < messages.length; ) {
      let end = start
      let bytes = 0
      while (end < messages.length && end - start < MAX_BATCH_MESSAGES) {
        const m = messages[end]
        const size = m.value.length + m.key.length + 64
        if (end > start && bytes + size > MAX_BATCH_BYTES) break
        bytes += size
        end++
      }
      await this.sendChunk(producer, messages, start, end, metas, ids)
      start = end
    }
    return ids
  }

  private async sendChunk(producer: Producer, messages: readonly OutgoingMessage[], start: number, end: number, metas: Map<string, TopicMeta>, ids: string[]): Promise<void> {
    // Per topic-partition, the input indexes in order: the broker gives one base offset per partition.
    const groups = new Map<string, {topic: string; partition: number; indexes: number[]}>()
    for (let i = start; i < end; i++) {
      const m = messages[i]
      const partition = partitionFor(m.key, metas.get(m.topic)!.partitions)
      const key = `${m.topic}\u0000${partition}`
      const group = groups.get(key)
      if (group) group.indexes.push(i)
      else groups.set(key, {topic: m.topic, partition, indexes: [i]})
    }
    const byTopic = new Map<string, Array<{partition: number; key: string; value: string; headers: Record<string, string>}>>()
    for (const group of groups.values()) {
      const list = byTopic.get(group.topic) ?? []
      for (const i of group.indexes) list.push({partition: group.partition, key: messages[i].key, value: messages[i].value, headers: messages[i].headers ?? {}})
      byTopic.set(group.topic, list)
    }
    const results = await this.gate.run(() =>
      producer.sendBatch({acks: -1, topicMessages: [...byTopic].map(([topic, list]) => ({topic, messages: list}))}),
    )
    for (const result of results) {
      const group = groups.get(`${result.topicName}\u0000${result.partition}`)
      if (!group) continue
      if (result.errorCode) throw new Error(`Kafka refused the batch for ${result.topicName}/${result.partition} (error ${result.errorCode}): publish it again`)
      const base = BigInt(result.baseOffset ?? '-1')
      if (base < 0n) throw new Error(`Kafka gave no offset for ${result.topicName}/${result.partition}: publish the batch again`)
      group.indexes.forEach((index, n) => {
        ids[index] = String(base + BigInt(n))
      })
    }
    for (let i = start; i < end; i++) if (ids[i] === undefined) throw new Error('Kafka answered for fewer partitions than were sent: publish the batch again')
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.check()
    if (options.topics.length === 0) throw new Error('subscribe() needs at least one topic')
    const topics = [...new Set(options.topics)].sort()
    for (const topic of topics) await this.topicMeta(topic)
    await this.registerGroup(options.group, topics, options.startFrom ?? 'earliest')
    this.check()
    const subscription = new KafkaSubscription(this, options, topics)
    this.subscriptions.add(subscription)
    try {
      await subscription.start()
    } catch (error) {
      this.subscriptions.delete(subscription)
      await subscription.close().catch(() => undefined)
      throw error
    }
    return subscription
  }

  /**
   * A new group gets its starting position committed at once (the log start, or its end for
   * startFrom 'latest'), as XGROUP CREATE does on Redis: the group and its lag show in stats()
   * before its first member has joined (a first join can wait for a fresh broker's coordinator),
   * and what is published between subscribe() and the first fetch is not skipped ('latest').
   */
  private async registerGroup(group: string, topics: readonly string[], from: 'earliest' | 'latest'): Promise<void> {
    // A fresh broker loads its offsets topic for a moment (COORDINATOR_LOAD_IN_PROGRESS): retried.
    const committed = await retrying(() => this.admin.fetchOffsets({groupId: group, topics: [...topics]}), this.stopping.signal)
    for (const {topic, partitions} of committed) {
      if (partitions.some((p) => Number(p.offset) >= 0)) continue
      const ends = await this.topicOffsets(topic)
      const cluster = await this.rawCluster()
      try {
        // A commit outside any generation, as a group with no members accepts; kafkajs's own
        // setOffsets joins the group with a consumer to do it, which takes seconds.
        await retrying(async () => {
          const coordinator = await cluster.findGroupCoordinator({groupId: group})
          await coordinator.offsetCommit({
            groupId: group,
            groupGenerationId: -1,
            memberId: '',
            topics: [
              {
                topic,
                partitions: ends.map((e) => {
                  const start = Number(from === 'latest' ? e.high : e.low)
                  return {partition: e.partition, offset: String(start), metadata: JSON.stringify({d: start, s: start} satisfies CommitMeta)}
                }),
              },
            ],
          })
        }, this.stopping.signal)
      } catch {
        // The group has members already: it has (or will have) its own position.
      }
    }
  }

  /** @internal */
  forget(subscription: KafkaSubscription): void {
    this.subscriptions.delete(subscription)
  }

  private async allTopics(): Promise<Map<string, TopicMeta>> {
    const {topics} = await this.admin.fetchTopicMetadata()
    const out = new Map<string, TopicMeta>()
    for (const topic of topics.map((t) => t.name).sort()) {
      if (topic.startsWith('__')) continue
      const partitions = topics.find((t) => t.name === topic)!.partitions.length
      out.set(topic, {partitions, ...(this.topicCache.get(topic)?.retention ? {retention: this.topicCache.get(topic)!.retention} : {})})
    }
    return out
  }

  /** Each consumer group: its members (name, owned partitions) and committed offsets with metadata. */
  private async groups(onlyGroup?: string): Promise<
    Array<{
      group: string
      members: Array<{name: string; owned: Array<{topic: string; partition: number}>}>
      subscribed: Set<string>
      offsets: Map<string, {offset: number; meta: CommitMeta}>
    }>
  > {
    let ids: string[]
    if (onlyGroup !== undefined) ids = [onlyGroup]
    else {
      const {groups} = await retrying(() => this.admin.listGroups(), this.stopping.signal)
      ids = groups.filter((g) => g.protocolType === 'consumer' || g.protocolType === '').map((g) => g.groupId)
    }
    if (ids.length === 0) return []
    const {groups: described} = await retrying(() => this.admin.describeGroups(ids), this.stopping.signal)
    const out = []
    for (const description of described) {
      const members: Array<{name: string; owned: Array<{topic: string; partition: number}>}> = []
      const subscribed = new Set<string>()
      for (const member of description.members) {
        const owned: Array<{topic: string; partition: number}> = []
        try {
          const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
          for (const [topic, partitions] of Object.entries(assignment?.assignment ?? {})) for (const partition of partitions) owned.push({topic, partition})
        } catch {
          // Not a kafkajs-style assignment (another client): no owners shown.
        }
        try {
          const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata)
          for (const topic of metadata?.topics ?? []) subscribed.add(topic)
        } catch {
          // idem
        }
        for (const o of owned) subscribed.add(o.topic)
        members.push({name: member.clientId, owned})
      }
      const offsets = new Map<string, {offset: number; meta: CommitMeta}>()
      if (description.state !== 'Dead') {
        const fetched = await retrying(() => this.admin.fetchOffsets({groupId: description.groupId}), this.stopping.signal)
        for (const {topic, partitions} of fetched) {
          for (const p of partitions) {
            if (Number(p.offset) < 0) continue
            offsets.set(`${topic}\u0000${p.partition}`, {offset: Number(p.offset), meta: parseMeta(p.metadata)})
          }
        }
      }
      if (members.length === 0 && offsets.size === 0) continue
      out.push({group: description.groupId, members, subscribed, offsets})
    }
    return out.sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0))
  }

  /** What this process's subscriptions delivered and acked, committed before it is read back. */
  private async flushLocal(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.flushCommits()))
  }

  async stats(filter: {group?: string; topic?: string} = {}): Promise<GroupStats[]> {
    this.check()
    await this.flushLocal()
    const topics = await this.allTopics()
    const groups = await this.groups(filter.group)
    const ends = new Map<string, Array<{partition: number; low: number; high: number}>>()
    const endsOf = async (topic: string) => {
      let found = ends.get(topic)
      if (!found) {
        found = (await this.topicOffsets(topic)).map((e) => ({partition: e.partition, low: Number(e.low), high: Number(e.high)})).sort((a, b) => a.partition - b.partition)
        ends.set(topic, found)
      }
      return found
    }
    const now = Date.now()
    const out: GroupStats[] = []
    for (const g of groups) {
      for (const [topic] of topics) {
        if (filter.topic !== undefined && topic !== filter.topic) continue
        const has = g.subscribed.has(topic) || [...g.offsets.keys()].some((k) => k.startsWith(`${topic}\u0000`))
        if (!has) continue
        const partitions: PartitionStats[] = []
        const pendingBy = new Map<string, number>()
        /** Each owner's last delivery or ack on this topic (Kafka keeps no consumer idle time). */
        const activeBy = new Map<string, number>()
        for (const end of await endsOf(topic)) {
          const committed = g.offsets.get(`${topic}\u0000${end.partition}`)
          const position = committed ? Math.max(committed.offset, end.low) : end.low
          const delivered = Math.min(end.high, Math.max(position, committed?.meta.d ?? position))
          const pending = Math.max(0, delivered - position - (committed?.meta.x ?? 0))
          const owner = g.members.find((m) => m.owned.some((o) => o.topic === topic && o.partition === end.partition))?.name ?? null
          if (owner) pendingBy.set(owner, (pendingBy.get(owner) ?? 0) + pending)
          if (owner && typeof committed?.meta.a === 'number') activeBy.set(owner, Math.max(activeBy.get(owner) ?? 0, committed.meta.a))
          partitions.push({
            partition: end.partition,
            lag: Math.max(0, end.high - delivered),
            pending,
            oldestPendingAgeMs: pending > 0 && typeof committed?.meta.t === 'number' ? Math.max(0, now - committed.meta.t) : null,
            owner,
            acked: committed ? Math.max(0, committed.offset - (committed.meta.s ?? 0)) : 0,
          })
        }
        const ages = partitions.map((p) => p.oldestPendingAgeMs).filter((a): a is number => a !== null)
        const consumers: ConsumerInfo[] = g.members.map((m) => ({name: m.name, pending: pendingBy.get(m.name) ?? 0, idleMs: activeBy.has(m.name) ? Math.max(0, now - activeBy.get(m.name)!) : 0, live: true}))
        out.push({
          group: g.group,
          topic,
          lag: partitions.reduce((sum, p) => sum + p.lag, 0),
          pending: partitions.reduce((sum, p) => sum + p.pending, 0),
          oldestPendingAgeMs: ages.length > 0 ? Math.max(...ages) : null,
          consumers,
          partitions,
          acked: partitions.reduce((sum, p) => sum + (p.acked ?? 0), 0),
        })
      }
    }
    return out
  }

  async topics(): Promise<TopicInfo[]> {
    this.check()
    await this.flushLocal()
    const topics = await this.allTopics()
    if (topics.size === 0) return []
    const groups = await this.groups()
    const configs = await this.admin.describeConfigs({includeSynonyms: false, resources: [...topics.keys()].map((name) => ({type: 2, name, configNames: ['retention.ms']}))})
    const retentionMs = new Map<string, number>()
    for (const resource of configs.resources) {
      const entry = resource.configEntries.find((e) => e.configName === 'retention.ms')
      if (entry && Number(entry.configValue) > 0) retentionMs.set(resource.resourceName, Number(entry.configValue))
    }
    const out: TopicInfo[] = []
    for (const [name, meta] of topics) {
      const offsets = (await this.topicOffsets(name)).sort((a, b) => a.partition - b.partition)
      let length = 0
      let appended = 0
      let firstAt: number | null = null
      let lastAt: number | null = null
      for (const o of offsets) {
        const low = Number(o.low)
        const high = Number(o.high)
        length += high - low
        appended += high
        if (high > low) {
          const [first] = await this.fetchRange(name, o.partition, low, 1)
          const [last] = await this.fetchRange(name, o.partition, high - 1, 1)
          if (first) firstAt = firstAt === null ? first.enqueuedAt : Math.min(firstAt, first.enqueuedAt)
          if (last) lastAt = lastAt === null ? last.enqueuedAt : Math.max(lastAt, last.enqueuedAt)
        }
      }
      const maxAgeMs = retentionMs.get(name)
      const retention = {...(maxAgeMs !== undefined ? {maxAgeMs} : {}), ...(meta.retention?.maxLen !== undefined ? {maxLen: meta.retention.maxLen} : {})}
      out.push({
        name,
        partitions: meta.partitions,
        length,
        groups: groups.filter((g) => g.subscribed.has(name) || [...g.offsets.keys()].some((k) => k.startsWith(`${name}\u0000`))).map((g) => g.group),
        appended,
        firstAt,
        lastAt,
        ...(Object.keys(retention).length > 0 ? {retention} : {}),
      })
    }
    return out
  }

  private rawCluster(): Promise<RawCluster> {
    this.cluster ??= (async () => {
      const symbol = Object.getOwnPropertySymbols(this.kafka).find((s) => s.description === 'private:Kafka:createCluster')
      if (!symbol) throw new Error('This kafkajs version has no internal cluster factory: read() needs kafkajs 2.x')
      const create = (this.kafka as unknown as Record<symbol, (options: Record<string, unknown>) => RawCluster>)[symbol]
      const cluster = create({allowAutoTopicCreation: false})
      await cluster.connect()
      if (this.closed) {
        // As in getProducer: made while close() ran, it is closed here.
        await bounded(cluster.disconnect(), CLOSE_WAIT_MS)
        throw closedBusError()
      }
      return cluster
    })()
    return this.cluster.catch((error: unknown) => {
      this.cluster = undefined
      throw error
    })
  }

  /** Up to `count` messages of one partition from `offset` on (clamped to the oldest retained). */
  private async fetchRange(topic: string, partition: number, offset: number, count: number): Promise<Delivery[]> {
    const cluster = await this.rawCluster()
    await cluster.addTargetTopic(topic)
    const out: Delivery[] = []
    let next = offset
    for (let round = 0; round < 10_000 && out.length < count; round++) {
      const leaders = cluster.findLeaderForPartitions(topic, [partition])
      const nodeId = Object.keys(leaders)[0]
      if (nodeId === undefined) throw new Error(`No leader for ${topic}/${partition}`)
      const broker = await cluster.findBroker({nodeId})
      const response = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 0,
        minBytes: 0,
        maxBytes: READ_MAX_BYTES,
        topics: [{topic, partitions: [{partition, fetchOffset: String(next), maxBytes: READ_MAX_BYTES}]}],
      }).catch(async (error: unknown) => {
        if (errorType(error) !== 'OFFSET_OUT_OF_RANGE') throw error
        const [ends] = (await this.topicOffsets(topic)).filter((e) => e.partition === partition)
        if (ends && next < Number(ends.low)) {
          next = Number(ends.low)
          return null
        }
        return {responses: []}
      })
      if (response === null) continue
      const messages = response.responses.flatMap((r) => r.partitions.filter((p) => p.partition === partition).flatMap((p) => p.messages))
      const fresh = messages.filter((m) => Number(m.offset) >= next)
      if (fresh.length === 0) break
      for (const m of fresh) {
        if (out.length >= count) break
        out.push(toDelivery(m, topic, partition, 1))
        next = Number(m.offset) + 1
      }
    }
    return out
  }

  async read(topic: string, partition: number, afterId: string | null, count: number): Promise<Delivery[]> {
    this.check()
    const meta = await this.topicMeta(topic)
    if (partition < 0 || partition >= meta.partitions) return []
    return this.fetchRange(topic, partition, afterId === null ? 0 : Number(afterId) + 1, count)
  }

  async positionAt(topic: string, partition: number, at: number | 'end'): Promise<string | null> {
    this.check()
    await this.topicMeta(topic)
    let offset: number
    if (at === 'end') {
      const [end] = (await this.topicOffsets(topic)).filter((e) => e.partition === partition)
      offset = Number(end?.high ?? 0)
    } else {
      const [found] = (await this.admin.fetchTopicOffsetsByTimestamp(topic, at)).filter((e) => e.partition === partition)
      offset = Number(found?.offset ?? 0)
    }
    return offset <= 0 ? null : String(offset - 1)
  }

  async trim(topic: string, policy: {maxAgeMs?: number; maxLen?: number}): Promise<number> {
    this.check()
    await this.topicMeta(topic)
    const offsets = await this.topicOffsets(topic)
    const byAge = policy.maxAgeMs !== undefined ? await this.admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - policy.maxAgeMs) : []
    const deletions: Array<{partition: number; offset: string}> = []
    let removed = 0
    for (const o of offsets) {
      const low = Number(o.low)
      const high = Number(o.high)
      let cut = low
      if (policy.maxLen !== undefined) cut = Math.max(cut, high - policy.maxLen)
      const aged = byAge.find((b) => b.partition === o.partition)
      if (aged) cut = Math.max(cut, Math.min(high, Number(aged.offset)))
      if (cut > low) {
        deletions.push({partition: o.partition, offset: String(cut)})
        removed += cut - low
      }
    }
    if (deletions.length > 0) await this.admin.deleteTopicRecords({topic, partitions: deletions})
    return removed
  }

  async eventIds(topic: string, partition: number, options: {afterId?: string | null; sinceMs?: number; count: number}): Promise<BusEventId[]> {
    this.check()
    let from = 0
    if (options.afterId !== undefined && options.afterId !== null) from = Number(options.afterId) + 1
    else if (options.sinceMs !== undefined) {
      const cursor = await this.positionAt(topic, partition, options.sinceMs)
      from = cursor === null ? 0 : Number(cursor) + 1
    } else await this.topicMeta(topic)
    const got = await this.fetchRange(topic, partition, from, options.count)
    return got.map((d) => ({id: d.id, eventId: d.headers.event_id ?? null, enqueuedAt: d.enqueuedAt}))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // The subscriptions commit what was acked before anything stops retrying (their close is bounded).
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()))
    // Then what is still under way (a probe, a read, a commit after its bounded wait) gives up after
    // kafkajs's own retries: with the broker gone, it retried for minutes and kept the process alive.
    this.stopping.abort()
    const cluster = this.cluster
    this.cluster = undefined
    // Bounded: kafkajs may wait on a request to a broker that is gone. What publish() resolved was acked.
    await Promise.all([
      bounded(this.producer?.disconnect(), CLOSE_WAIT_MS),
      bounded(cluster?.then((c) => c.disconnect()), CLOSE_WAIT_MS),
      bounded(this.admin.disconnect(), CLOSE_WAIT_MS),
    ])
  }
}

interface PartitionState {
  topic: string
  partition: number
  /** The next offset to commit: the oldest delivered and unacked, or `delivered` when none is. */
  committed: number
  /** The offset after the last one handed out. */
  delivered: number
  /** Where the group started on this partition (for the acked counter). */
  start: number
  /** Delivered, not acked; `released` ones are due again now, whatever their visibility timeout. */
  pending: Map<number, {delivery: Delivery; deliveredAt: number; released?: boolean}>
  /** Delivery counts of messages a previous owner handed out (from the commit metadata). */
  prior: {delivered: number; counts: Record<string, number>}
  /** Fetched, not yet handed out. */
  buffer: RawMessage[]
  /** The offset after the last one fetched (duplicates from kafkajs's re-seek are dropped). */
  fetched: number
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`

class KafkaSubscription implements Subscription {
  private readonly group: string
  private readonly consumerName: string
  private readonly batchSize: number
  private readonly blockMs: number
  private readonly visibilityTimeoutMs: number
  private readonly highWater: number
  private consumer?: Consumer
  private owned: Array<{topic: string; partition: number}> = []
  private readonly parts = new Map<string, PartitionState>()
  /** Partitions assigned whose position (committed offset, metadata) is still being read. */
  private readonly loading = new Map<string, Promise<void>>()
  private closed = false
  private expired = false
  private lastActivity = Date.now()
  private watchdog?: NodeJS.Timeout
  private readonly closeController = new AbortController()
  private wake?: () => void
  private queue: Promise<unknown> = Promise.resolve()
  private joined?: {resolve: () => void; promise: Promise<void>}
  private crashed?: Error
  /** Partitions whose state changed since the last commit (see scheduleCommit). */
  private readonly dirty = new Set<string>()
  private pumping?: Promise<void>
  private commitTicket = 0
  private committedTicket = 0
  private commitError?: Error
  /**
   * Commits the broker answered (kafkajs's COMMIT_OFFSETS event). kafkajs's commitOffsets() also
   * resolves when it sent nothing: while the consumer restarts after a crash (a broker restart) it
   * returns at once, so a commit counts as made only when this moved during it.
   */
  private commitsAnswered = 0
  /**
   * Partitions whose last commit failed or was not sent (commitsAnswered). Their acks are already
   * off `pending` and kafkajs re-fetches only from the broker's commit, what we drop as acked:
   * nothing would commit them again on a quiet partition, and the group would stay behind
   * (pending, or lag when what was delivered was not committed) for good.
   */
  private readonly unconfirmed = new Set<string>()
  private closing?: Promise<void>

  constructor(
    private readonly bus: KafkaBus,
    options: SubscribeOptions,
    private readonly topics: readonly string[],
  ) {
    this.group = options.group
    this.consumerName = options.consumer
    this.batchSize = options.batchSize ?? bus.defaults.batchSize
    this.blockMs = options.blockMs ?? bus.defaults.blockMs
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? bus.defaults.visibilityTimeoutMs
    this.highWater = Math.max(this.batchSize * 4, 500)
  }

  /** Joins the group and waits for the first assignment (so the group shows up at once). */
  async start(): Promise<void> {
    this.lastActivity = Date.now()
    this.expired = false
    const session = this.bus.sessionTimeoutMs
    const consumer = this.bus.clientFor(this.consumerName).consumer({
      groupId: this.group,
      sessionTimeout: session,
      rebalanceTimeout: Math.max(3_000, session * 2),
      heartbeatInterval: Math.max(100, Math.min(1_000, Math.floor(session / 4))),
      maxWaitTimeInMs: Math.min(200, Math.floor(session / 4)),
      allowAutoTopicCreation: false,
      retry: {
        retries: 10,
        initialRetryTime: 100,
        maxRetryTime: 1_000,
        // kafkajs restarts a crashed consumer (a broker gone) on a timer that its disconnect() can miss
        // (a restart under way): after close() it went on restarting for good and kept the process alive.
        restartOnFailure: async () => !this.closed && this.consumer === consumer,
      },
    })
    this.consumer = consumer
    let resolveJoin!: () => void
    const promise = new Promise<void>((resolve) => (resolveJoin = resolve))
    this.joined = {resolve: resolveJoin, promise}
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (this.consumer !== consumer) return
      this.assign(event.payload.memberAssignment as Record<string, number[]>)
      this.joined?.resolve()
    })
    consumer.on(consumer.events.COMMIT_OFFSETS, () => {
      if (this.consumer === consumer) this.commitsAnswered++
    })
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.consumer !== consumer) return
      const error = event.payload.error
      if (!event.payload.restart) this.crashed = error instanceof Error ? error : new Error(String(error))
    })
    await consumer.connect()
    // Topics made a moment ago may not be in the broker's metadata yet (UNKNOWN_TOPIC_OR_PARTITION).
    await retrying(() => consumer.subscribe({topics: [...this.topics], fromBeginning: true}), this.bus.stopping.signal)
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(consumer, payload),
    })
    const timeout = sleep(Math.max(10_000, session * 3), this.closeController.signal)
    await Promise.race([promise, timeout])
    this.watchdog ??= setInterval(() => void this.checkAlive(), Math.max(100, Math.floor(session / 4)))
    this.watchdog.unref()
  }

  /** A new assignment: keep the state of partitions still ours, read the position of new ones. */
  private assign(assignment: Record<string, number[]>): void {
    const owned: Array<{topic: string; partition: number}> = []
    for (const topic of Object.keys(assignment).sort()) for (const partition of [...assignment[topic]].sort((a, b) => a - b)) owned.push({topic, partition})
    const keep = new Set(owned.map((o) => tpKey(o.topic, o.partition)))
    for (const key of [...this.parts.keys()]) if (!keep.has(key)) this.parts.delete(key)
    for (const key of [...this.loading.keys()]) if (!keep.has(key)) this.loading.delete(key)
    const fresh = owned.filter((o) => !this.parts.has(tpKey(o.topic, o.partition)))
    // Partitions we keep restart from the committed offset in kafkajs: what we hold is dropped as it comes again.
    for (const part of this.parts.values()) part.fetched = part.committed
    if (fresh.length > 0) {
      const load = this.loadPositions(fresh).catch((error: unknown) => {
        // Reported by the next next(); the partitions stay unread until a new assignment.
        this.crashed = error instanceof Error ? error : new Error(String(error))
      })
      for (const o of fresh) this.loading.set(tpKey(o.topic, o.partition), load)
    }
    this.owned = owned
    this.wake?.()
  }

  private async loadPositions(list: ReadonlyArray<{topic: string; partition: number}>): Promise<void> {
    const topics = [...new Set(list.map((o) => o.topic))]
    try {
      // Just after a topic is made, kafkajs's metadata may not know its leaders yet: try again shortly.
      const committed = await settled(() => this.bus.admin.fetchOffsets({groupId: this.group, topics}), this.bus.stopping.signal)
      for (const topic of topics) {
        const ends = await this.bus.topicOffsets(topic)
        for (const o of list.filter((x) => x.topic === topic)) {
          const c = committed.find((t) => t.topic === topic)?.partitions.find((p) => p.partition === o.partition)
          const end = ends.find((e) => e.partition === o.partition)
          const low = Number(end?.low ?? 0)
          const offset = c && Number(c.offset) >= 0 ? Math.max(Number(c.offset), low) : low
          const meta = parseMeta(c?.metadata)
          const key = tpKey(o.topic, o.partition)
          if (!this.owned.some((x) => tpKey(x.topic, x.partition) === key)) continue
          this.parts.set(key, {
            topic: o.topic,
            partition: o.partition,
            committed: offset,
            delivered: offset,
            start: meta.s ?? (c && Number(c.offset) >= 0 ? 0 : offset),
            pending: new Map(),
            prior: {delivered: meta.d ?? offset, counts: meta.c ?? {}},
            buffer: [],
            fetched: offset,
          })
        }
      }
    } finally {
      for (const o of list) this.loading.delete(tpKey(o.topic, o.partition))
    }
  }

  private async onBatch(consumer: Consumer, {batch, resolveOffset, heartbeat, isRunning, isStale}: EachBatchPayload): Promise<void> {
    const key = tpKey(batch.topic, batch.partition)
    const loading = this.loading.get(key)
    if (loading) await loading.catch(() => undefined)
    const part = this.parts.get(key)
    if (!part || this.consumer !== consumer) return
    for (const message of batch.messages as RawMessage[]) {
      const offset = Number(message.offset)
      if (offset < part.fetched) continue
      part.buffer.push(message)
      part.fetched = offset + 1
    }
    if (batch.messages.length > 0) resolveOffset(batch.messages[batch.messages.length - 1].offset)
    this.wake?.()
    // Back-pressure: wait while the buffer is full, beating (a rebalance throws out of here, as kafkajs wants).
    while (this.buffered() > this.highWater && isRunning() && !isStale() && !this.closed && this.consumer === consumer && !this.expired) {
      await sleep(50, this.closeController.signal)
      await heartbeat()
    }
  }

  private buffered(): number {
    let n = 0
    for (const part of this.parts.values()) n += part.buffer.length
    return n
  }

  /**
   * The watchdog's tick. Makes again the commits that failed; and, like Kafka's
   * max.poll.interval.ms, takes an owner that neither polls nor beats out of the group.
   */
  private async checkAlive(): Promise<void> {
    if (this.closed || this.expired) return
    if (this.unconfirmed.size > 0 && !this.pumping && this.consumer) this.scheduleCommit([...this.unconfirmed]).catch(() => undefined)
    if (Date.now() - this.lastActivity <= this.bus.sessionTimeoutMs) return
    this.expired = true
    const consumer = this.consumer
    this.consumer = undefined
    this.owned = []
    this.parts.clear()
    this.loading.clear()
    await consumer?.disconnect().catch(() => undefined)
  }

  /** Back in the group after checkAlive() took it out (the next call of a consumer that was stuck). */
  private async revive(): Promise<void> {
    if (!this.expired || this.closed) return
    await this.start()
  }

  heartbeat(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('This subscription is closed'))
    this.lastActivity = Date.now()
    const beat = this.queue.then(async () => {
      this.bus.check()
      await this.revive()
    })
    this.queue = beat.catch(() => undefined)
    return beat
  }

  next(signal?: AbortSignal): Promise<Delivery[]> {
    this.lastActivity = Date.now()
    const run = this.queue.then(() => this.nextNow(signal))
    this.queue = run.catch(() => undefined)
    return run
  }

  private async nextNow(signal?: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new Error('This subscription is closed')
    this.bus.check()
    this.lastActivity = Date.now()
    await this.revive()
    if (this.crashed) {
      const error = this.crashed
      this.crashed = undefined
      throw error
    }
    const deadline = Date.now() + this.blockMs
    for (;;) {
      if (this.closed || signal?.aborted) return []
      this.lastActivity = Date.now()
      const out = this.take()
      if (out.length > 0) {
        // Not awaited: what was delivered reaches the commit metadata with the next commit (stats()
        // in this process waits for it); one round trip per fetch halved the throughput.
        // A failure here loses no progress (each commit is computed afresh from the partitions'
        // state): it must not surface as an unhandled rejection (CI saw one after a broker restart).
        this.scheduleCommit(out.map((d) => tpKey(d.topic, d.partition))).catch(() => undefined)
        return out
      }
      const remaining = deadline - Date.now()
      if (remaining <= 0) return []
      const waitMs = Math.min(remaining, this.nextExpiry() - Date.now(), 100)
      await this.waitForWake(Math.max(1, waitMs), signal)
    }
  }

  /**
   * Sleeps until `ms` pass, a batch arrives (wake), the subscription closes (close() wakes it) or
   * `signal` aborts. A wake-up ends the sleep itself, timer and listener: left to run out, each
   * woken wait kept its listener on the signal for up to 100 ms, and a fetch's batches woke one
   * after another (MaxListenersExceededWarning in `tektree services`). No AbortController per
   * wait: aborting one builds a DOMException, 3% of a worker's time on the Kafka bus.
   */
  private waitForWake(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || signal?.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        if (this.wake === done) this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, {once: true})
      this.wake = done
    })
  }

  /** When the next pending delivery's visibility timeout ends. */
  private nextExpiry(): number {
    let at = Infinity
    for (const part of this.parts.values()) for (const p of part.pending.values()) at = Math.min(at, p.released ? 0 : p.deliveredAt + this.visibilityTimeoutMs)
    return at
  }

  /** Timed-out pending deliveries first (again, count + 1), then fetched ones, up to batchSize. */
  private take(): Delivery[] {
    const now = Date.now()
    const out: Delivery[] = []
    for (const part of this.parts.values()) {
      // Sorted only when one has timed out: copying and sorting every pending delivery on every
      // call was 3.5% of a worker's time on the Kafka bus, for what is almost never there.
      const expired: number[] = []
      for (const [offset, p] of part.pending) if (p.released || p.deliveredAt + this.visibilityTimeoutMs <= now) expired.push(offset)
      for (const offset of expired.sort((a, b) => a - b)) {
        if (out.length >= this.batchSize) return out
        const p = part.pending.get(offset)!
        const again = {...p.delivery, deliveryCount: p.delivery.deliveryCount + 1}
        part.pending.set(offset, {delivery: again, deliveredAt: now})
        out.push(again)
      }
    }
    for (const part of this.parts.values()) {
      while (part.buffer.length > 0 && out.length < this.batchSize) {
        const message = part.buffer.shift()!
        const offset = Number(message.offset)
        if (offset < part.delivered) continue
        const before = offset < part.prior.delivered ? (part.prior.counts[message.offset] ?? 1) : 0
        const delivery = toDelivery(message, part.topic, part.partition, before + 1)
        part.pending.set(offset, {delivery, deliveredAt: now})
        part.delivered = offset + 1
        out.push(delivery)
      }
    }
    return out
  }

  /**
   * Marks partitions for a commit and resolves once a commit that includes the mark is done. One
   * commit is in flight per subscription; marks made meanwhile go together into the next one, so
   * concurrent acks cost one round trip between them.
   */
  private scheduleCommit(keys: Iterable<string>): Promise<void> {
    for (const key of keys) this.dirty.add(key)
    const ticket = ++this.commitTicket
    if (!this.pumping) {
      this.pumping = this.pump().finally(() => {
        this.pumping = undefined
      })
    }
    return this.untilCommitted(ticket)
  }

  private async untilCommitted(ticket: number): Promise<void> {
    while (this.committedTicket < ticket && this.pumping) await this.pumping
    if (this.committedTicket < ticket && this.dirty.size > 0 && !this.closed) await this.scheduleCommit([])
    const error = this.commitError
    if (error && ticket <= this.committedTicket) {
      this.commitError = undefined
      throw error
    }
  }

  private async pump(): Promise<void> {
    while (this.dirty.size > 0) {
      const keys = new Set(this.dirty)
      const upTo = this.commitTicket
      this.dirty.clear()
      try {
        await this.commit(keys)
      } catch (error) {
        this.commitError = error instanceof Error ? error : new Error(String(error))
      }
      this.committedTicket = Math.max(this.committedTicket, upTo)
    }
  }

  /** @internal Waits for the commits under way and marked (stats() in this process reads them). */
  async flushCommits(): Promise<void> {
    if (this.dirty.size > 0 || this.pumping) await this.scheduleCommit([]).catch(() => undefined)
  }

  /** Commits each partition's contiguous acked offset, with what was delivered in the metadata. */
  private async commit(keys: Set<string>): Promise<void> {
    const consumer = this.consumer
    if (!consumer) return
    const offsets: Array<{topic: string; partition: number; offset: string; metadata: string}> = []
    for (const key of keys) {
      const part = this.parts.get(key)
      if (!part) {
        this.unconfirmed.delete(key) // its new owner commits it
        continue
      }
      let oldest: number | null = null
      const counts: Record<string, number> = {}
      for (const [offset, p] of part.pending) {
        oldest = oldest === null ? p.deliveredAt : Math.min(oldest, p.deliveredAt)
        if (p.delivery.deliveryCount > 1 && Object.keys(counts).length < 50) counts[String(offset)] = p.delivery.deliveryCount
      }
      const meta: CommitMeta = {d: part.delivered, t: oldest, x: Math.max(0, part.delivered - part.committed - part.pending.size), s: part.start, a: Date.now()}
      if (Object.keys(counts).length > 0) meta.c = counts
      offsets.push({topic: part.topic, partition: part.partition, offset: String(part.committed), metadata: JSON.stringify(meta)})
    }
    if (offsets.length === 0) return
    const answered = this.commitsAnswered
    try {
      await retrying(() => consumer.commitOffsets(offsets), this.bus.stopping.signal)
      const made = this.commitsAnswered > answered
      for (const o of offsets) {
        if (made) this.unconfirmed.delete(tpKey(o.topic, o.partition))
        else this.unconfirmed.add(tpKey(o.topic, o.partition))
      }
    } catch (error) {
      // Made again by the watchdog (checkAlive) until it goes through or the partition is not ours.
      for (const o of offsets) this.unconfirmed.add(tpKey(o.topic, o.partition))
      // A rebalance under way: the partitions may be another consumer's now; what was not
      // committed is delivered again by whoever owns them (at least once).
      if (this.closed || this.consumer !== consumer) return
      const type = errorType(error)
      if (['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS'].includes(type)) return
      // "Consumer group was not initialized": the consumer is restarting after a crash (a broker
      // restart); its partitions are delivered again from the last commit.
      if (/rebalanc|not (?:a )?member|generation|not initialized/i.test(String((error as Error).message))) return
      throw error
    }
  }

  assignment(): ReadonlyArray<{topic: string; partition: number}> {
    return this.closed || this.expired ? [] : [...this.owned]
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return
    this.bus.check()
    const touched = new Set<string>()
    for (const d of deliveries) {
      const key = tpKey(d.topic, d.partition)
      const part = this.parts.get(key)
      if (!part) continue // not ours any more: its next owner gets it again
      part.pending.delete(Number(d.id))
      while (part.committed < part.delivered && !part.pending.has(part.committed)) part.committed++
      touched.add(key)
    }
    await this.scheduleCommit(touched)
  }

  async extend(deliveries: readonly Delivery[]): Promise<void> {
    this.bus.check()
    const now = Date.now()
    for (const d of deliveries) {
      const pending = this.parts.get(tpKey(d.topic, d.partition))?.pending.get(Number(d.id))
      if (pending) pending.deliveredAt = now
    }
  }

  async release(deliveries: readonly Delivery[]): Promise<void> {
    this.bus.check()
    let released = false
    for (const d of deliveries) {
      const pending = this.parts.get(tpKey(d.topic, d.partition))?.pending.get(Number(d.id))
      if (!pending || pending.delivery.deliveryCount !== d.deliveryCount) continue
      pending.released = true
      released = true
    }
    if (released) this.wake?.()
  }

  close(): Promise<void> {
    this.closing ??= this.closeNow()
    return this.closing
  }

  private async closeNow(): Promise<void> {
    if (this.closed) return
    // Acks made before close() are committed before the group is left (bounded: a broker may be gone).
    if (this.consumer && !this.expired) await bounded(this.flushCommits(), CLOSE_WAIT_MS)
    this.closed = true
    this.closeController.abort()
    this.wake?.()
    if (this.watchdog) clearInterval(this.watchdog)
    this.bus.forget(this)
    const consumer = this.consumer
    this.consumer = undefined
    this.owned = []
    this.parts.clear()
    this.joined?.resolve()
    // Leaves the group at once (LeaveGroup): the partitions move now; nothing more is committed.
    // Bounded: kafkajs waits for a join under way, which a broker going down can hold up.
    await bounded(consumer?.disconnect(), CLOSE_WAIT_MS)
  }
}

/** "kafka://h1:9092,h2:9092" -> ["h1:9092", "h2:9092"] (9092 when a host has no port). */
export function brokersOf(url: string): string[] {
  const rest = url.replace(/^kafka:\/\//i, '').replace(/[/?#].*$/, '')
  const hosts = rest.split(',').map((h) => h.trim()).filter(Boolean)
  if (hosts.length === 0) throw new Error(`${url} names no broker`)
  return hosts.map((h) => (/:\d+$/.test(h) ? h : `${h}:9092`))
}

function makeKafka(options: KafkaBusOptions, clientId?: string): Kafka {
  // kafkajs prints a warning about its default partitioner on every run; tektree picks partitions itself.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1'
  const onError = options.onError
  return new Kafka({
    clientId: clientId ?? options.clientId ?? 'tektree',
    brokers: options.brokers,
    connectionTimeout: Math.min(options.connectTimeoutMs ?? 5_000, 5_000),
    requestTimeout: 30_000,
    retry: {retries: 5, initialRetryTime: 100, maxRetryTime: 2_000},
    logLevel: logLevel.ERROR,
    // Into tektree's log (onError), never kafkajs's own console output.
    logCreator: () => (entry: LogEntry) => {
      if (!onError || entry.level > logLevel.ERROR) return
      onError(new Error(`kafkajs ${entry.namespace}: ${entry.log.message}`))
    },
  })
}

/** A Bus on Kafka; rejects within about connectTimeoutMs when no broker answers. */
export async function createKafkaBus(options: KafkaBusOptions): Promise<KafkaBus> {
  const kafka = makeKafka(options)
  const admin = kafka.admin()
  const timeoutMs = options.connectTimeoutMs ?? 5_000
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      (async () => {
        await admin.connect()
        await admin.describeCluster()
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no broker answered within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (error) {
    await admin.disconnect().catch(() => undefined)
    throw error
  } finally {
    clearTimeout(timer)
  }
  return new KafkaBus(admin, kafka, options)
}
