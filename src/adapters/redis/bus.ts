/**
 * The Redis Streams Bus (layout and reasons: docs/stream-layout.md).
 *
 * - One stream per topic partition, `<topic>:p<n>`; key -> partition by partitionFor() (shared with
 *   every adapter). Entry fields: k = key, v = value (bytes untouched), h = JSON headers. Topic
 *   metadata (partitions, retention) lives in the hash `tektree:topics`.
 * - A group is a Redis consumer group on each partition stream. Per-aggregate order needs one reader
 *   per partition, which consumer groups alone do not give, so ownership is layered on top:
 *   membership heartbeats in the ZSET `tektree:members:<group>` (score = expiry, server time), the
 *   assignment is the sorted partition list dealt round-robin over the live members sorted by name,
 *   and a consumer only reads a partition whose lease key `tektree:lease:<group>:<stream>` it holds
 *   (SET NX PX, renewed by compare-and-pexpire, released by compare-and-del on close).
 * - A consumer is live while it calls next() (heartbeats run inside next(), every session/3), so a
 *   crashed or stuck process loses its partitions after the session timeout.
 * - Unacked entries older than visibilityTimeoutMs are taken over with XPENDING IDLE + XCLAIM by the
 *   partition's current owner; deliveryCount = XPENDING's count + 1, i.e. exact.
 * - next() blocks on a dedicated connection, in slices of at most session/3 (heartbeats keep going
 *   while a long blockMs runs) and under a watchdog that recreates the connection when a BLOCK does
 *   not come back (the ioredis blocked-command-after-reconnect trap).
 */
import {randomUUID} from 'node:crypto'
import type {Redis} from 'ioredis'
import {UnknownTopicError} from '../../core/errors.js'
import {partitionFor} from '../../core/partition.js'
import type {Bus, BusEventId, ConsumerInfo, Delivery, GroupStats, OutgoingMessage, SubscribeOptions, Subscription, TopicInfo, TopicSpec} from '../../core/ports.js'
import {connectRedis, isConnectionError, LuaScript, type RedisConnection, type RedisTarget} from './connection.js'

export interface RedisBusOptions {
  /** Namespace for every key (tests); default none: streams are `<topic>:p<n>`, metadata `tektree:*`. */
  prefix?: string
  /** A consumer that stops calling next() loses its partitions after this long (default 10 s). */
  sessionTimeoutMs?: number
  /** Alias of sessionTimeoutMs (the lease TTL). */
  leaseMs?: number
  /** Bound on the initial connect (default 5 s). */
  connectTimeoutMs?: number
  defaultBatchSize?: number
  defaultBlockMs?: number
  defaultVisibilityTimeoutMs?: number
  /** Connection errors seen while reconnecting (default: ignored). */
  onError?: (error: Error) => void
}

interface TopicMeta {
  partitions: number
  retention?: {maxAgeMs?: number; maxLen?: number}
}

type StreamEntry = [id: string, fields: string[] | null]

const closedBusError = () => new Error('The Redis bus is closed')

/** Heartbeat: drops expired members, then joins / renews / leaves; returns the live member names. */
const MEMBERSHIP = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]) * 10, 60000))
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

/**
 * Resets the idle time of the given entries pending under this consumer, without counting a
 * delivery (XCLAIM JUSTID); entries another consumer holds now are left alone.
 */
const EXTEND = new LuaScript(`
local touched = 0
for i = 3, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    touched = touched + 1
  end
end
return touched
`)

/**
 * Makes the given entries (ARGV from 4: id, then the delivery count it was handed out with)
 * pending under this consumer look idle for ARGV[3] ms (its visibility timeout), without counting a
 * delivery (XCLAIM IDLE JUSTID): the next claim takes them. One delivered again since is left alone.
 */
const MAKE_DUE = new LuaScript(`
local touched = 0
for i = 4, #ARGV, 2 do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] and row[4] == tonumber(ARGV[i + 1]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    touched = touched + 1
  end
end
return touched
`)

/** For each lease key: 1 renewed (already ours), 2 newly acquired, 0 held by someone else. */
const ACQUIRE = new LuaScript(`
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif not holder then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
`)

/** Deletes the lease keys still held by ARGV[1]. */
const RELEASE = new LuaScript(`
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
`)

/** Removes the consumer from each stream's group where it has nothing pending (keeps XINFO tidy). */
const FORGET_CONSUMER = new LuaScript(`
local n = 0
for _, key in ipairs(KEYS) do
  local ok, pending = pcall(redis.call, 'XPENDING', key, ARGV[1], '-', '+', 1, ARGV[2])
  if ok and #pending == 0 then
    redis.call('XGROUP', 'DELCONSUMER', key, ARGV[1], ARGV[2])
    n = n + 1
  end
end
return n
`)

/**
 * How many entries follow ARGV[1] in the stream, counted in Redis up to ARGV[2] (only the count
 * and the last id seen cross the wire, not the entries).
 */
const COUNT_AFTER = new LuaScript(`
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local n = #entries
if n == 0 then return {0, ARGV[1]} end
return {n, entries[n][1]}
`)
/** Entries counted per call of COUNT_AFTER (a page), and the most pages counted for one lag. */
const LAG_PAGE = 1_000
const LAG_PAGES = 100

const ID_PATTERN = /^\d+-\d+$/

function fieldsToMap(fields: string[]): {k: string; v: string; h: string} {
  const out = {k: '', v: '', h: '{}'}
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]
    if (name === 'k' || name === 'v' || name === 'h') out[name] = fields[i + 1]
  }
  return out
}

function parseHeaders(text: string): Record<string, string> {
  try {
    const parsed = JSON.parse(text) as unknown
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, string>) : {}
  } catch {
    return {}
  }
}

function toDelivery(entry: StreamEntry, topic: string, partition: number, deliveryCount: number): Delivery | null {
  const [id, fields] = entry
  if (!fields) return null // deleted (trimmed) while pending
  const f = fieldsToMap(fields)
  return {id, topic, partition, key: f.k, value: f.v, headers: parseHeaders(f.h), deliveryCount, enqueuedAt: Number(id.slice(0, id.indexOf('-')))}
}

/**
 * Sleeps `ms` or until any of the signals aborts, then unhooks from all of them. Several signals
 * rather than AbortSignal.any: every composite it makes stays referenced from a long-lived source
 * (the bus's close signal, a consumer's stop signal) for the life of the process, one per read
 * (nodejs/node#55351), which the soak benchmark showed as steady heap growth.
 */
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

/** Pairs of [name, value] from XINFO replies as an object. */
function infoObject(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
  return out
}

/** The ms part of an XINFO STREAM first-entry / last-entry ([id, fields] or nil). */
function entryTime(entry: unknown): number | null {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') return null
  const ms = Number(entry[0].slice(0, entry[0].indexOf('-')))
  return Number.isFinite(ms) ? ms : null
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt)
  const [bm, bs] = b.split('-').map(BigInt)
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1
}

export class RedisBus implements Bus {
  readonly kind = 'redis'
  readonly sessionTimeoutMs: number
  /** @internal */ readonly defaults: {batchSize: number; blockMs: number; visibilityTimeoutMs: number}
  private readonly prefix: string
  private readonly topicCache = new Map<string, TopicMeta>()
  private readonly subscriptions = new Set<RedisSubscription>()
  /** By stream and group: how much XINFO GROUPS' lag overstates it (lagOf). */
  private readonly lagOverstatement = new Map<string, number>()
  private closed = false
  /** Bumped on every lost connection: a pipeline that spans one is rejected as a whole (ioredis#800). */
  private epoch = 0

  constructor(
    /** @internal */ readonly connection: RedisConnection,
    options: RedisBusOptions = {},
  ) {
    this.prefix = options.prefix ?? ''
    this.sessionTimeoutMs = Math.max(300, options.sessionTimeoutMs ?? options.leaseMs ?? 10_000)
    this.defaults = {
      batchSize: options.defaultBatchSize ?? 100,
      blockMs: options.defaultBlockMs ?? 1_000,
      visibilityTimeoutMs: options.defaultVisibilityTimeoutMs ?? 30_000,
    }
    connection.client.on('close', this.onClose)
  }

  private readonly onClose = () => {
    this.epoch++
    // The server may have restarted (and replayed its AOF): what was learned of its lag counters
    // no longer holds. Until relearned, lags are Redis's own figures, which only overstate.
    this.lagOverstatement.clear()
  }

  get client(): Redis {
    return this.connection.client
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** @internal */ key(name: string): string {
    return this.prefix ? `${this.prefix}:${name}` : name
  }
  /** @internal */ streamKey(topic: string, partition: number): string {
    return this.key(`${topic}:p${partition}`)
  }
  /** @internal */ membersKey(group: string): string {
    return this.key(`tektree:members:${group}`)
  }
  /** @internal */ leaseKey(group: string, topic: string, partition: number): string {
    return this.key(`tektree:lease:${group}:${topic}:p${partition}`)
  }
  private get topicsKey(): string {
    return this.key('tektree:topics')
  }

  /** @internal */ check(): void {
    if (this.closed) throw closedBusError()
  }

  /** @internal */ async topicMeta(name: string): Promise<TopicMeta> {
    const cached = this.topicCache.get(name)
    if (cached) return cached
    const raw = await this.client.hget(this.topicsKey, name)
    if (!raw) throw new UnknownTopicError(name)
    const meta = JSON.parse(raw) as TopicMeta
    this.topicCache.set(name, meta)
    return meta
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.check()
    for (const spec of specs) {
      if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
        throw new Error(`Topic "${spec.name}" needs a positive integer partition count, got ${spec.partitions}`)
      }
      const wanted: TopicMeta = {partitions: spec.partitions, ...(spec.retention ? {retention: spec.retention} : {})}
      const created = await this.client.hsetnx(this.topicsKey, spec.name, JSON.stringify(wanted))
      if (created === 1) {
        this.topicCache.set(spec.name, wanted)
        continue
      }
      const existing = JSON.parse((await this.client.hget(this.topicsKey, spec.name)) ?? '{}') as TopicMeta
      // Partitions never change (keys would move); retention follows the latest spec.
      if (spec.partitions > existing.partitions) {
        throw new Error(`Topic "${spec.name}" has ${existing.partitions} partitions; changing it to ${spec.partitions} would move keys`)
      }
      const next: TopicMeta = {partitions: existing.partitions, ...((spec.retention ?? existing.retention) ? {retention: spec.retention ?? existing.retention} : {})}
      if (JSON.stringify(next) !== JSON.stringify(existing)) await this.client.hset(this.topicsKey, spec.name, JSON.stringify(next))
      this.topicCache.set(spec.name, next)
    }
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<string[]> {
    this.check()
    if (messages.length === 0) return []
    const metas = new Map<string, TopicMeta>()
    for (const message of messages) if (!metas.has(message.topic)) metas.set(message.topic, await this.topicMeta(message.topic))
    const epoch = this.epoch
    const pipeline = this.client.pipeline()
    for (const message of messages) {
      const meta = metas.get(message.topic)!
      const stream = this.streamKey(message.topic, partitionFor(message.key, meta.partitions))
      const trim = meta.retention?.maxLen ? ['MAXLEN', '~', String(meta.retention.maxLen)] : []
      pipeline.call('XADD', [stream, ...trim, '*', 'k', message.key, 'v', message.value, 'h', JSON.stringify(message.headers ?? {})])
    }
    const results = (await pipeline.exec()) ?? []
    if (this.epoch !== epoch || results.length !== messages.length) {
      throw new Error('The Redis connection dropped during publish: the batch may be partly written, publish it again (consumers dedupe by event_id)')
    }
    return results.map(([error, id]) => {
      if (error) throw error
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new Error(`XADD answered ${JSON.stringify(id)}: replies are out of step, publish the batch again`)
      return id
    })
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.check()
    if (options.topics.length === 0) throw new Error('subscribe() needs at least one topic')
    const partitions: Array<{topic: string; partition: number; stream: string}> = []
    for (const topic of [...new Set(options.topics)].sort()) {
      const meta = await this.topicMeta(topic)
      for (let p = 0; p < meta.partitions; p++) partitions.push({topic, partition: p, stream: this.streamKey(topic, p)})
    }
    await this.ensureGroup(options.group, partitions.map((p) => p.stream), options.startFrom === 'latest' ? '$' : '0')
    this.check()
    const subscription = new RedisSubscription(this, options, partitions)
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

  /** @internal XGROUP CREATE ... MKSTREAM on each stream; an existing group is left as it is. */
  async ensureGroup(group: string, streams: readonly string[], from: '0' | '$'): Promise<void> {
    const pipeline = this.client.pipeline()
    for (const stream of streams) pipeline.call('XGROUP', ['CREATE', stream, group, from, 'MKSTREAM'])
    const results = (await pipeline.exec()) ?? []
    for (const [error] of results) if (error && !String(error.message).startsWith('BUSYGROUP')) throw error
  }

  /** @internal */
  forget(subscription: RedisSubscription): void {
    this.subscriptions.delete(subscription)
  }

  private async allTopics(): Promise<Map<string, TopicMeta>> {
    const raw = await this.client.hgetall(this.topicsKey)
    const out = new Map<string, TopicMeta>()
    for (const name of Object.keys(raw).sort()) out.set(name, JSON.parse(raw[name]) as TopicMeta)
    return out
  }

  /** Each group's members whose heartbeats hold now (the membership ZSET's scores are expiries, server time). */
  private async liveMembers(groups: readonly string[]): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>()
    if (groups.length === 0) return out
    const [time, ...members] = await this.exec([['TIME'], ...groups.map((g) => ['ZRANGE', this.membersKey(g), '0', '-1', 'WITHSCORES'])], true)
    const [seconds, micros] = time as [string, string]
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    groups.forEach((group, i) => {
      const flat = Array.isArray(members[i]) ? (members[i] as string[]) : []
      const names = new Set<string>()
      for (let k = 0; k + 1 < flat.length; k += 2) if (Number(flat[k + 1]) > now) names.add(flat[k])
      out.set(group, names)
    })
    return out
  }

  async stats(filter: {group?: string; topic?: string} = {}): Promise<GroupStats[]> {
    this.check()
    const topics = await this.allTopics()
    const streams: Array<{topic: string; partition: number; stream: string}> = []
    for (const [name, meta] of topics) {
      if (filter.topic !== undefined && name !== filter.topic) continue
      for (let p = 0; p < meta.partitions; p++) streams.push({topic: name, partition: p, stream: this.streamKey(name, p)})
    }
    const replies = await this.exec([...streams.map((s) => ['XINFO', 'GROUPS', s.stream]), ...streams.map((s) => ['XINFO', 'STREAM', s.stream])], true)
    const groupsReply = replies.slice(0, streams.length)
    const added = new Map(streams.map((s, i) => [s.stream, infoObject(replies[streams.length + i])['entries-added']]))
    type Row = {topic: string; partition: number; stream: string; group: string; info: Record<string, unknown>}
    const rows: Row[] = []
    streams.forEach((s, i) => {
      const groups = groupsReply[i]
      if (!Array.isArray(groups)) return
      for (const raw of groups) {
        const info = infoObject(raw)
        const group = String(info.name)
        if (filter.group !== undefined && group !== filter.group) continue
        rows.push({topic: s.topic, partition: s.partition, stream: s.stream, group, info})
      }
    })
    const details = await this.exec(
      rows.flatMap((r) => [
        ['XPENDING', r.stream, r.group, '-', '+', '1'],
        ['XINFO', 'CONSUMERS', r.stream, r.group],
        ['GET', this.leaseKey(r.group, r.topic, r.partition)],
      ]),
      true,
    )
    const lags = await Promise.all(rows.map((r) => this.lagOf(r.stream, r.group, r.info)))
    const live = await this.liveMembers([...new Set(rows.map((r) => r.group))])
    const out = new Map<string, GroupStats & {consumerMap: Map<string, ConsumerInfo>}>()
    rows.forEach((r, i) => {
      const id = `${r.group}\u0000${r.topic}`
      let stats = out.get(id)
      if (!stats) {
        stats = {group: r.group, topic: r.topic, lag: 0, pending: 0, oldestPendingAgeMs: null, consumers: [], consumerMap: new Map(), partitions: [], acked: 0}
        out.set(id, stats)
      }
      const [first, consumers, holder] = details.slice(i * 3, i * 3 + 3)
      const pending = Number(r.info.pending ?? 0)
      const oldest = Array.isArray(first) && Array.isArray(first[0]) ? Number((first[0] as unknown[])[2]) : null
      // What the stream ever took, less what waits for the group or is pending, was acked. (Not
      // entries-read: Redis leaves it unknown for a group created at an id, as groups are here.)
      const appended = added.get(r.stream)
      const acked = appended === null || appended === undefined ? null : Math.max(0, Number(appended) - lags[i] - pending)
      const owner = typeof holder === 'string' ? holder.slice(0, Math.max(0, holder.lastIndexOf('#'))) || holder : null
      stats.partitions.push({partition: r.partition, lag: lags[i], pending, oldestPendingAgeMs: oldest, owner, acked})
      stats.lag += lags[i]
      stats.pending += pending
      if (oldest !== null) stats.oldestPendingAgeMs = Math.max(stats.oldestPendingAgeMs ?? 0, oldest)
      stats.acked = stats.acked === null || acked === null ? null : stats.acked + acked
      if (Array.isArray(consumers)) {
        for (const raw of consumers) {
          const c = infoObject(raw)
          const name = String(c.name)
          const prev = stats.consumerMap.get(name)
          const pending = Number(c.pending ?? 0)
          const idle = Number(c.idle ?? 0)
          const isLive = live.get(r.group)?.has(name) ?? false
          // A consumer gone for good stays listed by Redis: shown while it holds pending entries only.
          if (!isLive && pending === 0 && !prev) continue
          stats.consumerMap.set(name, prev ? {name, pending: prev.pending + pending, idleMs: Math.min(prev.idleMs, idle), live: isLive} : {name, pending, idleMs: idle, live: isLive})
        }
      }
      // A live member that has read nothing from these partitions yet is not in XINFO: it is there.
      for (const name of live.get(r.group) ?? []) if (!stats.consumerMap.has(name)) stats.consumerMap.set(name, {name, pending: 0, idleMs: 0, live: true})
    })
    return [...out.values()]
      .sort((a, b) => (a.group === b.group ? (a.topic < b.topic ? -1 : 1) : a.group < b.group ? -1 : 1))
      .map(({consumerMap, ...stats}) => ({...stats, consumers: [...consumerMap.values()].sort((a, b) => (a.name < b.name ? -1 : 1))}))
  }

  /**
   * What follows the group's last-delivered-id in the stream. XINFO GROUPS `lag` is entries-added
   * less the group's entries-read, and redis-server 7.0 leaves entries-read short when it replays
   * its AOF on a restart: a group that had read everything was seen reporting a lag of 1,764 (and
   * one of 62,000), and under load a backlog of 20,000 that was not there held simulate's
   * generator back. Short only ever overstates, so a 0 is taken as it is. Otherwise the
   * overstatement is learned once per stream and group, and taken off what Redis says later, as
   * both counters then move in step:
   * - a group that has read the stream's newest entry has a lag of 0, so what Redis says then is
   *   its overstatement, exactly;
   * - seen first behind, its lag is counted once (a one-shot `tektree lag` has no other chance):
   *   entries appended during the count make it larger, so what it learns never overstates the
   *   overstatement.
   * Never below 1 while the group has not read the newest entry, so nothing (a drain) takes a lag
   * for 0 that is not; forgotten on a lost connection (the server may have restarted). Counting
   * on every sample instead cost Redis an XRANGE of the whole lag each time: at saturation that
   * took a fifth of the rate. Where Redis gives no figure (after deletions) the entries are
   * counted, in Redis, a page at a time.
   */
  private async lagOf(stream: string, group: string, info: Record<string, unknown>): Promise<number> {
    const last = String(info['last-delivered-id'] ?? '0-0')
    const reported = info.lag === null || info.lag === undefined ? null : Number(info.lag)
    if (reported === 0) return 0
    if (reported === null) return (await this.countAfter(stream, last)).count
    const newest = (await this.client.call('XREVRANGE', stream, '+', '-', 'COUNT', '1')) as StreamEntry[]
    const key = `${stream}\u0000${group}`
    if (newest.length === 0 || compareIds(newest[0][0], last) <= 0) {
      this.lagOverstatement.set(key, reported)
      return 0
    }
    const learned = this.lagOverstatement.get(key)
    if (learned !== undefined) return Math.max(1, reported - learned)
    const counted = await this.countAfter(stream, last)
    // Past the pages counted, nothing is learned: Redis's figure stands until the group catches up.
    this.lagOverstatement.set(key, counted.complete ? Math.max(0, reported - counted.count) : 0)
    return counted.complete ? Math.max(1, Math.min(reported, counted.count)) : reported
  }

  /** Entries after `id`, counted in Redis (COUNT_AFTER), up to LAG_PAGES pages (complete: all of them). */
  private async countAfter(stream: string, id: string): Promise<{count: number; complete: boolean}> {
    let count = 0
    let cursor = id
    for (let page = 0; page < LAG_PAGES; page++) {
      const [n, last] = (await COUNT_AFTER.run(this.client, [stream], [cursor, LAG_PAGE])) as [number, string]
      count += Number(n)
      if (Number(n) < LAG_PAGE) return {count, complete: true}
      cursor = String(last)
    }
    return {count, complete: false}
  }

  /** Runs commands in one pipeline; with `tolerate`, a failed command yields null instead of throwing. */
  private async exec(commands: string[][], tolerate = false): Promise<unknown[]> {
    if (commands.length === 0) return []
    const pipeline = this.client.pipeline()
    for (const [name, ...args] of commands) pipeline.call(name, args)
    const results = (await pipeline.exec()) ?? []
    return results.map(([error, value]) => {
      if (error && !tolerate) throw error
      return error ? null : value
    })
  }

  async topics(): Promise<TopicInfo[]> {
    this.check()
    const topics = await this.allTopics()
    const out: TopicInfo[] = []
    for (const [name, meta] of topics) {
      const streams = Array.from({length: meta.partitions}, (_, p) => this.streamKey(name, p))
      const replies = await this.exec([...streams.map((s) => ['XINFO', 'STREAM', s]), ...streams.map((s) => ['XINFO', 'GROUPS', s])], true)
      let length = 0
      let appended: number | null = 0
      let firstAt: number | null = null
      let lastAt: number | null = null
      for (const reply of replies.slice(0, streams.length)) {
        // A partition nobody wrote to yet has no stream: it holds nothing.
        if (!Array.isArray(reply)) continue
        const info = infoObject(reply)
        length += Number(info.length ?? 0)
        const added = info['entries-added']
        appended = appended === null || added === null || added === undefined ? null : appended + Number(added)
        const first = entryTime(info['first-entry'])
        const last = entryTime(info['last-entry'])
        if (first !== null && (firstAt === null || first < firstAt)) firstAt = first
        if (last !== null && (lastAt === null || last > lastAt)) lastAt = last
      }
      const groups = new Set<string>()
      for (const reply of replies.slice(streams.length)) if (Array.isArray(reply)) for (const g of reply) groups.add(String(infoObject(g).name))
      out.push({name, partitions: meta.partitions, length, groups: [...groups].sort(), appended, firstAt, lastAt, ...(meta.retention ? {retention: {...meta.retention}} : {})})
    }
    return out
  }

  async read(topic: string, partition: number, afterId: string | null, count: number): Promise<Delivery[]> {
    this.check()
    const meta = await this.topicMeta(topic)
    if (!Number.isInteger(partition) || partition < 0 || partition >= meta.partitions) throw new Error(`Topic "${topic}" has no partition ${partition}`)
    if (afterId !== null && !ID_PATTERN.test(afterId)) throw new Error(`Invalid stream entry id "${afterId}"`)
    if (count <= 0) return []
    const entries = (await this.client.call('XRANGE', this.streamKey(topic, partition), afterId === null ? '-' : `(${afterId}`, '+', 'COUNT', String(count))) as StreamEntry[]
    return entries.map((e) => toDelivery(e, topic, partition, 0)).filter((d): d is Delivery => d !== null)
  }

  async positionAt(topic: string, partition: number, at: number | 'end'): Promise<string | null> {
    this.check()
    const meta = await this.topicMeta(topic)
    if (!Number.isInteger(partition) || partition < 0 || partition >= meta.partitions) throw new Error(`Topic "${topic}" has no partition ${partition}`)
    if (at === 'end') {
      const newest = (await this.client.call('XREVRANGE', this.streamKey(topic, partition), '+', '-', 'COUNT', '1')) as StreamEntry[]
      return newest.length === 0 ? null : newest[0][0]
    }
    // Entry ids are <ms>-<seq>: the last possible id of the millisecond before `at`.
    const ms = Math.floor(at)
    return ms <= 0 ? null : `${ms - 1}-18446744073709551615`
  }

  async eventIds(topic: string, partition: number, options: {afterId?: string | null; sinceMs?: number; count: number}): Promise<BusEventId[]> {
    this.check()
    const meta = await this.topicMeta(topic)
    if (!Number.isInteger(partition) || partition < 0 || partition >= meta.partitions) throw new Error(`Topic "${topic}" has no partition ${partition}`)
    const {afterId, sinceMs, count} = options
    if (afterId !== undefined && afterId !== null && !ID_PATTERN.test(afterId)) throw new Error(`Invalid stream entry id "${afterId}"`)
    if (count <= 0) return []
    // Entry ids are the server's ms time first: a time bound is an id bound.
    const start = afterId ? `(${afterId}` : sinceMs !== undefined ? `${Math.max(0, Math.floor(sinceMs))}-0` : '-'
    const entries = (await this.client.call('XRANGE', this.streamKey(topic, partition), start, '+', 'COUNT', String(count))) as StreamEntry[]
    const out: BusEventId[] = []
    for (const [id, fields] of entries) {
      if (!fields) continue
      const eventId = parseHeaders(fieldsToMap(fields).h).event_id
      out.push({id, eventId: typeof eventId === 'string' ? eventId : null, enqueuedAt: Number(id.slice(0, id.indexOf('-')))})
    }
    return out
  }

  async trim(topic: string, policy: {maxAgeMs?: number; maxLen?: number}): Promise<number> {
    this.check()
    const meta = await this.topicMeta(topic)
    const commands: string[][] = []
    for (let p = 0; p < meta.partitions; p++) {
      const stream = this.streamKey(topic, p)
      // Exact trimming (no "~"): the contract keeps exactly maxLen; this runs rarely, not per publish.
      if (policy.maxLen !== undefined) commands.push(['XTRIM', stream, 'MAXLEN', String(Math.max(0, Math.floor(policy.maxLen)))])
      if (policy.maxAgeMs !== undefined) commands.push(['XTRIM', stream, 'MINID', `${Math.max(0, Date.now() - Math.floor(policy.maxAgeMs))}-0`])
    }
    const removed = await this.exec(commands)
    return removed.reduce<number>((sum, n) => sum + Number(n ?? 0), 0)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.allSettled([...this.subscriptions].map((s) => s.close()))
    this.connection.client.off('close', this.onClose)
    await this.connection.close()
  }
}

class RedisSubscription implements Subscription {
  private readonly group: string
  private readonly consumer: string
  /** Lease holder value: the consumer name plus this instance, so a namesake never renews our lease. */
  private readonly holder: string
  private readonly batchSize: number
  private readonly blockMs: number
  private readonly visibilityTimeoutMs: number
  private readonly byStream = new Map<string, {topic: string; partition: number; lease: string}>()
  private owned: string[] = []
  /** When the leases of `owned` expire unless renewed (measured from before the renewal was sent). */
  private leaseUntil = 0
  /**
   * Partitions taken over from another owner whose pending entries are not all claimed yet: they
   * are claimed at once (whatever their idle time) and nothing new is read from the partition
   * until they are, so a dead owner's unacked entries come before the entries after them (one
   * aggregate's order holds across a crash).
   */
  private readonly takeover = new Set<string>()
  /**
   * Per partition under takeover, the last entry its claims handed out: the next claim starts
   * after it. The caller keeps fetching while it works on what it holds, and a claim from the
   * start would take (and count, as Redis counts every XCLAIM) the same entries again each time.
   */
  private readonly takeoverCursor = new Map<string, string>()
  private closed = false
  private blocking: Redis | undefined
  private nextMaintenance = 0
  private nextClaim = 0
  private readonly tickMs: number
  private readonly claimEveryMs: number
  /** Deliveries read by a blocking call that finished after its next() had already returned. */
  private buffer: Delivery[] = []
  private inflight: Promise<unknown> | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private readonly closeController = new AbortController()

  constructor(
    private readonly bus: RedisBus,
    options: SubscribeOptions,
    private readonly partitions: ReadonlyArray<{topic: string; partition: number; stream: string}>,
  ) {
    this.group = options.group
    this.consumer = options.consumer
    this.holder = `${options.consumer}#${randomUUID()}`
    this.batchSize = Math.max(1, options.batchSize ?? bus.defaults.batchSize)
    this.blockMs = Math.max(0, options.blockMs ?? bus.defaults.blockMs)
    this.visibilityTimeoutMs = Math.max(1, options.visibilityTimeoutMs ?? bus.defaults.visibilityTimeoutMs)
    this.tickMs = Math.max(50, Math.floor(bus.sessionTimeoutMs / 3))
    this.claimEveryMs = Math.min(5_000, Math.max(50, Math.floor(this.visibilityTimeoutMs / 4)))
    for (const p of partitions) this.byStream.set(p.stream, {topic: p.topic, partition: p.partition, lease: bus.leaseKey(this.group, p.topic, p.partition)})
  }

  private get client(): Redis {
    return this.bus.client
  }

  /** Joins the group and takes the partitions that are free. */
  async start(): Promise<void> {
    await this.maintain()
  }

  assignment(): ReadonlyArray<{topic: string; partition: number}> {
    // Past the leases' expiry (no renewal since: a stall, a pause) another consumer may hold them.
    if (this.closed || Date.now() >= this.leaseUntil) return []
    return this.owned.map((stream) => {
      const p = this.byStream.get(stream)!
      return {topic: p.topic, partition: p.partition}
    })
  }

  /** Heartbeat, rebalance, lease renewal: one membership script and one lease script. */
  private async maintain(): Promise<void> {
    const began = Date.now()
    const live = ((await MEMBERSHIP.run(this.client, [this.bus.membersKey(this.group)], [this.consumer, 'beat', this.bus.sessionTimeoutMs])) as string[]).sort()
    if (this.closed) return
    const index = live.indexOf(this.consumer)
    const desired = index < 0 ? [] : this.partitions.filter((_, i) => i % live.length === index).map((p) => p.stream)
    const wanted = new Set(desired)
    const release = this.owned.filter((s) => !wanted.has(s))
    if (release.length > 0) await RELEASE.run(this.client, release.map((s) => this.byStream.get(s)!.lease), [this.holder])
    const results = desired.length === 0 ? [] : ((await ACQUIRE.run(this.client, desired.map((s) => this.byStream.get(s)!.lease), [this.holder, this.bus.sessionTimeoutMs])) as number[])
    const owned = desired.filter((_, i) => Number(results[i]) > 0)
    // A newly taken partition may hold a previous owner's unacked entries: claim them first.
    desired.forEach((stream, i) => {
      if (Number(results[i]) === 2) this.beginTakeover(stream)
    })
    if (this.takeover.size > 0) this.nextClaim = 0
    if (!this.closed) {
      this.owned = owned
      this.leaseUntil = began + this.bus.sessionTimeoutMs
      for (const stream of this.takeover) if (!owned.includes(stream)) this.endTakeover(stream)
    }
    this.nextMaintenance = Date.now() + this.tickMs
  }

  private beginTakeover(stream: string): void {
    this.takeover.add(stream)
    this.takeoverCursor.delete(stream)
  }

  private endTakeover(stream: string): void {
    this.takeover.delete(stream)
    this.takeoverCursor.delete(stream)
  }

  heartbeat(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('This subscription is closed'))
    // In line with next(): membership and leases are renewed as next() renews them, when due.
    const beat = this.queue.then(async () => {
      if (this.closed) return
      this.bus.check()
      if (Date.now() >= this.nextMaintenance) await this.maintain()
    })
    this.queue = beat.catch(() => undefined)
    return beat
  }

  next(signal?: AbortSignal): Promise<Delivery[]> {
    // One next() at a time per subscription: a second call waits for the first.
    const run = this.queue.then(() => this.nextNow(signal))
    this.queue = run.catch(() => undefined)
    return run
  }

  private async nextNow(signal?: AbortSignal): Promise<Delivery[]> {
    if (this.closed) throw new Error('This subscription is closed')
    this.bus.check()
    const deadline = Date.now() + this.blockMs
    for (let round = 0; round < 1_000_000; round++) {
      if (this.closed || signal?.aborted) return this.takeBuffer()
      try {
        if (this.buffer.length > 0) return await this.handOut(this.takeBuffer())
        if (Date.now() >= this.nextMaintenance) await this.maintain()
        if (this.closed) return []
        if (this.owned.length > 0 && Date.now() >= this.nextClaim) {
          const claimed = await this.claim()
          if (claimed.length > 0) return claimed
        }
        const remaining = deadline - Date.now()
        if (this.owned.length === 0) {
          if (remaining <= 0) return []
          await sleep(Math.min(remaining, this.tickMs, Math.max(1, this.nextMaintenance - Date.now())), signal, this.closeController.signal)
          continue
        }
        const slice = Math.min(Math.max(remaining, 0), this.tickMs, Math.max(1, this.nextClaim - Date.now()))
        const got = await this.handOut(await this.readNew(Math.floor(slice), signal))
        if (got.length > 0) return got
      } catch (error) {
        if (this.closed || this.bus.isClosed) return []
        if (!isConnectionError(error)) throw error
        // Redis is unreachable or restarting: report idle and let the caller come back.
        await sleep(Math.min(250, Math.max(0, deadline - Date.now())), signal, this.closeController.signal)
        return []
      }
      if (Date.now() >= deadline) return []
    }
    return []
  }

  private takeBuffer(): Delivery[] {
    return this.buffer.splice(0, this.batchSize)
  }

  /**
   * What reads brought, made safe to hand out. A read is served by Redis whenever an entry arrives,
   * so a previous owner's read (sent just before it lost the partition: a rebalance, a pause past
   * its lease) can take entries after this subscription took the partition over. Entries of
   * partitions no longer ours are left pending for their owner; before newer entries of a
   * partition go out, older ones pending under another consumer are claimed and go first, so one
   * aggregate's order holds however late the other read was.
   */
  private async handOut(deliveries: Delivery[]): Promise<Delivery[]> {
    if (deliveries.length === 0) return deliveries
    const owned = new Set(this.owned)
    const kept = deliveries.filter((d) => owned.has(this.bus.streamKey(d.topic, d.partition)))
    const firstNew = new Map<string, string>()
    for (const d of kept) {
      const stream = this.bus.streamKey(d.topic, d.partition)
      const seen = firstNew.get(stream)
      if (seen === undefined || compareIds(d.id, seen) < 0) firstNew.set(stream, d.id)
    }
    if (firstNew.size === 0) return kept
    try {
      const older = await this.claimOlderOfOthers(firstNew)
      if (older.length === 0 && this.takeover.size === 0) return kept
      return [...older, ...kept.filter((d) => !this.takeover.has(this.bus.streamKey(d.topic, d.partition)))]
    } catch (error) {
      // Not handed out: keep them for the next call rather than leave them to the visibility timeout.
      this.buffer.unshift(...kept)
      throw error
    }
  }

  /** Claims the entries older than `firstNew` (per stream) that other consumers of the group hold. */
  private async claimOlderOfOthers(firstNew: Map<string, string>): Promise<Delivery[]> {
    const streams = [...firstNew.keys()]
    const summaries = this.client.pipeline()
    for (const stream of streams) summaries.call('XPENDING', [stream, this.group])
    const summaryReplies = (await summaries.exec()) ?? []
    const suspects = streams.filter((stream, i) => {
      const [error, reply] = summaryReplies[i] ?? [null, null]
      if (error) throw error
      const [, minId, , consumers] = (reply ?? []) as [number, string | null, string | null, Array<[string, string]> | null]
      return minId !== null && compareIds(minId, firstNew.get(stream)!) < 0 && (consumers ?? []).some(([name, count]) => name !== this.consumer && Number(count) > 0)
    })
    if (suspects.length === 0) return []
    const limit = 1_000
    const ranges = this.client.pipeline()
    for (const stream of suspects) ranges.call('XPENDING', [stream, this.group, '-', `(${firstNew.get(stream)!}`, String(limit)])
    const rangeReplies = (await ranges.exec()) ?? []
    const wanted: Array<{stream: string; ids: string[]; counts: Map<string, number>}> = []
    suspects.forEach((stream, i) => {
      const [error, reply] = rangeReplies[i] ?? [null, null]
      if (error) throw error
      const rows = (reply ?? []) as Array<[string, string, number, number]>
      // More than fit one claim: claim the whole partition in order instead (takeover), newer entries after.
      if (rows.length >= limit) {
        this.beginTakeover(stream)
        this.nextClaim = 0
        return
      }
      const others = rows.filter((r) => r[1] !== this.consumer)
      if (others.length > 0) wanted.push({stream, ids: others.map((r) => r[0]), counts: new Map(others.map((r) => [r[0], Number(r[3])]))})
    })
    return this.claimEntries(wanted, () => '0')
  }

  private connection(): Redis {
    // Never a new connection after close(): a read that was under way when the subscription closed
    // would otherwise leave one reconnecting for ever, and the process could not exit.
    if (this.closed) throw new Error('This subscription is closed')
    this.blocking ??= this.bus.connection.duplicate(`tektree:${this.group}:${this.consumer}`)
    return this.blocking
  }

  /** Drops the blocking connection (a stuck BLOCK, a close); the next read makes a new one. */
  private resetConnection(): void {
    const old = this.blocking
    this.blocking = undefined
    // A read stuck on the old connection may never settle: stop waiting for it (if it ever
    // answers, its deliveries still reach the buffer).
    this.inflight = undefined
    old?.disconnect()
  }

  /** XREADGROUP ... BLOCK on the owned streams, under a watchdog, abortable. */
  private async readNew(blockMs: number, signal?: AbortSignal): Promise<Delivery[]> {
    if (this.inflight) {
      // A previous read outlived its next() (abort): let it finish into the buffer first.
      await Promise.race([this.inflight, sleep(this.tickMs * 2, signal, this.closeController.signal)])
      return this.takeBuffer()
    }
    const streams = this.owned.filter((stream) => !this.takeover.has(stream))
    if (streams.length === 0) {
      await sleep(Math.min(blockMs, 50), signal, this.closeController.signal)
      return []
    }
    const args = ['GROUP', this.group, this.consumer, 'COUNT', String(this.batchSize)]
    if (blockMs > 0) args.push('BLOCK', String(blockMs))
    args.push('STREAMS', ...streams, ...streams.map(() => '>'))
    const connection = this.connection()
    const read = connection.call('XREADGROUP', ...args) as Promise<Array<[string, StreamEntry[]]> | null>
    const parsed = read.then((reply) => this.parseRead(reply))
    let settled = false
    const tracked = parsed.then(
      (deliveries) => {
        settled = true
        return deliveries
      },
      (error: unknown) => {
        settled = true
        throw error
      },
    )
    const mine: Promise<unknown> = tracked
      .catch(() => undefined)
      .finally(() => {
        if (this.inflight === mine) this.inflight = undefined
      })
    this.inflight = mine
    const watchdogMs = blockMs + Math.max(1_000, this.tickMs)
    const stop = new AbortController()
    const outcome = await Promise.race([
      tracked.then((deliveries) => ({kind: 'read' as const, deliveries})),
      sleep(watchdogMs, signal, stop.signal, this.closeController.signal).then(() => ({kind: 'interrupted' as const, deliveries: [] as Delivery[]})),
    ]).finally(() => stop.abort())
    if (outcome.kind === 'read') return outcome.deliveries
    if (this.closed) return []
    if (signal?.aborted) {
      // Keep what the read brings for the next call instead of leaving it pending for a timeout.
      void tracked.then((deliveries) => this.buffer.push(...deliveries), () => undefined)
      return []
    }
    if (!settled) {
      // The BLOCK did not come back: the connection is stuck (e.g. reconnected under us). Replace it.
      this.resetConnection()
      void tracked.then((deliveries) => this.buffer.push(...deliveries), () => undefined)
    }
    return []
  }

  private parseRead(reply: Array<[string, StreamEntry[]]> | null): Delivery[] {
    const out: Delivery[] = []
    for (const [stream, entries] of reply ?? []) {
      const p = this.byStream.get(stream)
      if (!p) continue
      for (const entry of entries) {
        const delivery = toDelivery(entry, p.topic, p.partition, 1)
        if (delivery) out.push(delivery)
      }
    }
    return out
  }

  /** Takes over entries of owned streams idle longer than the visibility timeout (ours or a previous owner's). */
  private async claim(): Promise<Delivery[]> {
    this.nextClaim = Date.now() + this.claimEveryMs
    const streams = [...this.owned]
    // Decided before the replies below may end a takeover: its claim still takes every entry.
    const idle = new Map(streams.map((stream) => [stream, String(this.takeover.has(stream) ? 0 : this.visibilityTimeoutMs)]))
    const idleOf = (stream: string) => idle.get(stream)!
    const from = (stream: string) => {
      const cursor = this.takeover.has(stream) ? this.takeoverCursor.get(stream) : undefined
      return cursor === undefined ? '-' : `(${cursor}`
    }
    const pending = this.client.pipeline()
    for (const stream of streams) pending.call('XPENDING', [stream, this.group, 'IDLE', idleOf(stream), from(stream), '+', String(this.batchSize)])
    const pendingReplies = (await pending.exec()) ?? []
    const wanted: Array<{stream: string; ids: string[]; counts: Map<string, number>}> = []
    let total = 0
    streams.forEach((stream, i) => {
      const [error, reply] = pendingReplies[i] ?? [null, null]
      // A taken-over partition whose pending entries all fit here is read normally after these.
      if (!error && Array.isArray(reply) && reply.length < this.batchSize && total + reply.length <= this.batchSize) this.endTakeover(stream)
      if (error || !Array.isArray(reply) || reply.length === 0 || total >= this.batchSize) return
      const rows = (reply as Array<[string, string, number, number]>).slice(0, this.batchSize - total)
      total += rows.length
      wanted.push({stream, ids: rows.map((r) => r[0]), counts: new Map(rows.map((r) => [r[0], Number(r[3])]))})
    })
    const out = await this.claimEntries(wanted, idleOf)
    // Handed out (or gone from the stream): a takeover's next claim starts after them.
    for (const w of wanted) if (this.takeover.has(w.stream)) this.takeoverCursor.set(w.stream, w.ids[w.ids.length - 1]!)
    // More may be waiting: look again on the next call rather than after a full period.
    if (out.length >= this.batchSize || this.takeover.size > 0) this.nextClaim = 0
    return out
  }

  /** XCLAIM per stream; the deliveries in id order, deliveryCount = XPENDING's count + 1. */
  private async claimEntries(wanted: ReadonlyArray<{stream: string; ids: string[]; counts: Map<string, number>}>, idleOf: (stream: string) => string): Promise<Delivery[]> {
    if (wanted.length === 0) return []
    const claims = this.client.pipeline()
    for (const w of wanted) claims.call('XCLAIM', [w.stream, this.group, this.consumer, idleOf(w.stream), ...w.ids])
    const claimReplies = (await claims.exec()) ?? []
    const out: Delivery[] = []
    wanted.forEach((w, i) => {
      const [error, reply] = claimReplies[i] ?? [null, null]
      if (error || !Array.isArray(reply)) return
      const p = this.byStream.get(w.stream)!
      const entries = (reply as StreamEntry[]).filter((e) => Array.isArray(e)).sort((a, b) => compareIds(a[0], b[0]))
      for (const entry of entries) {
        // XCLAIM counts this delivery: XPENDING's count (before it) + 1.
        const delivery = toDelivery(entry, p.topic, p.partition, (w.counts.get(entry[0]) ?? 0) + 1)
        if (delivery) out.push(delivery)
      }
    })
    return out
  }

  /** Entry ids by stream, in the order given. */
  private idsByStream(deliveries: readonly Delivery[]): Map<string, string[]> {
    const byStream = new Map<string, string[]>()
    for (const d of deliveries) {
      const stream = this.bus.streamKey(d.topic, d.partition)
      const ids = byStream.get(stream)
      if (ids) ids.push(d.id)
      else byStream.set(stream, [d.id])
    }
    return byStream
  }

  async ack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return
    this.bus.check()
    const pipeline = this.client.pipeline()
    for (const [stream, ids] of this.idsByStream(deliveries)) pipeline.call('XACK', [stream, this.group, ...ids])
    const results = (await pipeline.exec()) ?? []
    for (const [error] of results) if (error) throw error
  }

  async extend(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return
    this.bus.check()
    await Promise.all([...this.idsByStream(deliveries)].map(([stream, ids]) => EXTEND.run(this.client, [stream], [this.group, this.consumer, ...ids])))
  }

  async release(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return
    this.bus.check()
    const idle = String(this.visibilityTimeoutMs)
    const byStream = new Map<string, string[]>()
    for (const d of deliveries) {
      const stream = this.bus.streamKey(d.topic, d.partition)
      const args = byStream.get(stream)
      if (args) args.push(d.id, String(d.deliveryCount))
      else byStream.set(stream, [d.id, String(d.deliveryCount)])
    }
    await Promise.all([...byStream].map(([stream, args]) => MAKE_DUE.run(this.client, [stream], [this.group, this.consumer, idle, ...args])))
    // Claimed on the next fetch, not the next period's.
    this.nextClaim = 0
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.closeController.abort()
    this.resetConnection()
    this.bus.forget(this)
    const owned = this.owned
    this.owned = []
    this.buffer = []
    if (this.client.status !== 'ready') return
    // Hand the partitions over at once: leave the membership and release the leases.
    try {
      await MEMBERSHIP.run(this.client, [this.bus.membersKey(this.group)], [this.consumer, 'leave', this.bus.sessionTimeoutMs])
      if (owned.length > 0) await RELEASE.run(this.client, owned.map((s) => this.byStream.get(s)!.lease), [this.holder])
      await FORGET_CONSUMER.run(this.client, this.partitions.map((p) => p.stream), [this.group, this.consumer])
    } catch (error) {
      if (!isConnectionError(error)) throw error
      // Unreachable: the leases and the membership expire by themselves.
    }
  }
}

/**
 * A Bus on Redis Streams. `{url}` connects (and close() disconnects); `{client}` uses the caller's
 * client for commands and only duplicates it for blocking reads (close() leaves it open).
 */
export async function createRedisBus(target: RedisTarget & RedisBusOptions, options: RedisBusOptions = {}): Promise<RedisBus> {
  const merged: RedisBusOptions = {...target, ...options}
  const connection = await connectRedis(target, {connectTimeoutMs: merged.connectTimeoutMs, connectionName: 'tektree:bus', onError: merged.onError})
  return new RedisBus(connection, merged)
}

