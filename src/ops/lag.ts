/**
 * Consumer-group lag as an operator reads it (rpk group describe, kafka-consumer-groups, Kafka UI):
 * per group and topic, and per partition, what is not yet delivered (lag), delivered and not acked
 * (pending), how long the oldest pending message has waited, the consumers, and from two readings
 * the rates in and out, the trend and an ETA to drain. Plain code over the Bus port: any bus.
 */
import type {Bus, GroupStats, PartitionStats} from '../core/ports.js'

export interface LagSample {
  /** ms since the epoch when the reading was taken. */
  at: number
  groups: GroupStats[]
}

export type Trend = 'growing' | 'shrinking' | 'steady'

export interface LagRow {
  group: string
  topic: string
  /** null on a group-and-topic row (all its partitions). */
  partition: number | null
  lag: number
  pending: number
  oldestPendingAgeMs: number | null
  /** Consumers of the group on this topic (on a partition row: its owner, when it has one). */
  consumers: string[]
  /** The least idle consumer's idle time (group-and-topic rows only). */
  idleMs: number | null
  /** Messages arriving for the group per second, and acked by it, between the two readings. */
  inPerSec: number | null
  outPerSec: number | null
  trend: Trend | null
  /** Time to drain the backlog (lag + pending) at the current rates; 0 when empty, null when not draining. */
  etaMs: number | null
}

export async function sampleLag(bus: Bus, filter: {group?: string; topic?: string} = {}, now: () => number = Date.now): Promise<LagSample> {
  const groups = await bus.stats(filter)
  return {at: now(), groups}
}

/** Below this many messages a second the backlog is steady: a reading's own noise. */
const STEADY_PER_SEC = 1

interface Counters {
  lag: number
  pending: number
  acked: number | null
}

/** Rates, trend and ETA of one row from its counters in two readings `seconds` apart. */
function motion(before: Counters | undefined, now: Counters, seconds: number): Pick<LagRow, 'inPerSec' | 'outPerSec' | 'trend' | 'etaMs'> {
  const backlog = now.lag + now.pending
  if (!before || seconds <= 0 || before.acked === null || now.acked === null) {
    return {inPerSec: null, outPerSec: null, trend: null, etaMs: backlog === 0 ? 0 : null}
  }
  // Everything the group has seen or will see = acked + pending + lag; its growth is what came in.
  const seen = (c: Counters) => (c.acked ?? 0) + c.pending + c.lag
  const inPerSec = Math.max(0, (seen(now) - seen(before)) / seconds)
  const outPerSec = Math.max(0, (now.acked - before.acked) / seconds)
  const change = (backlog - (before.lag + before.pending)) / seconds
  const trend: Trend = Math.abs(change) < STEADY_PER_SEC ? 'steady' : change > 0 ? 'growing' : 'shrinking'
  const draining = outPerSec - inPerSec
  const etaMs = backlog === 0 ? 0 : draining > 0 ? Math.round((backlog / draining) * 1000) : null
  return {inPerSec, outPerSec, trend, etaMs}
}

const rowKey = (group: string, topic: string, partition: number | null) => `${group}\u0000${topic}\u0000${partition ?? '*'}`

/**
 * One row per group and topic (and, with `partitions`, one per partition after it), sorted by
 * group then topic. `before` (an earlier reading) gives rates, trend and ETA; without it they are null.
 */
export function lagRows(before: LagSample | null, now: LagSample, options: {partitions?: boolean} = {}): LagRow[] {
  const seconds = before ? (now.at - before.at) / 1000 : 0
  const previous = new Map<string, Counters>()
  for (const stats of before?.groups ?? []) {
    previous.set(rowKey(stats.group, stats.topic, null), stats)
    for (const p of stats.partitions) previous.set(rowKey(stats.group, stats.topic, p.partition), p)
  }
  const rows: LagRow[] = []
  const sorted = [...now.groups].sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic))
  for (const stats of sorted) {
    // The group's consumers now: one gone that still holds pending entries is not running.
    const running = stats.consumers.filter((c) => c.live)
    const idle = running.map((c) => c.idleMs)
    rows.push({
      group: stats.group,
      topic: stats.topic,
      partition: null,
      lag: stats.lag,
      pending: stats.pending,
      oldestPendingAgeMs: stats.oldestPendingAgeMs,
      consumers: running.map((c) => c.name),
      idleMs: idle.length === 0 ? null : Math.min(...idle),
      ...motion(previous.get(rowKey(stats.group, stats.topic, null)), stats, seconds),
    })
    if (!options.partitions) continue
    for (const p of stats.partitions) rows.push(partitionRow(stats, p, previous.get(rowKey(stats.group, stats.topic, p.partition)), seconds))
  }
  return rows
}

function partitionRow(stats: GroupStats, p: PartitionStats, before: Counters | undefined, seconds: number): LagRow {
  return {
    group: stats.group,
    topic: stats.topic,
    partition: p.partition,
    lag: p.lag,
    pending: p.pending,
    oldestPendingAgeMs: p.oldestPendingAgeMs,
    consumers: p.owner === null ? [] : [p.owner],
    idleMs: null,
    ...motion(before, p, seconds),
  }
}

/** The groups whose backlog (lag + pending) is over `max`, for the CI gate. */
export function overLimit(rows: readonly LagRow[], max: number): LagRow[] {
  return rows.filter((row) => row.partition === null && row.lag + row.pending > max)
}

/**
 * One reading per group, its topics added up (topic "*"; no partitions): lagRows() over two of these
 * gives each group's lag, pending, oldest pending age, rates, trend and ETA with the same arithmetic
 * as per topic. The dashboard's overview shows these.
 */
export function byGroup(sample: LagSample): LagSample {
  const merged = new Map<string, GroupStats>()
  for (const s of sample.groups) {
    const m = merged.get(s.group)
    if (!m) {
      merged.set(s.group, {group: s.group, topic: '*', lag: s.lag, pending: s.pending, oldestPendingAgeMs: s.oldestPendingAgeMs, consumers: s.consumers.map((c) => ({...c})), partitions: [], acked: s.acked})
      continue
    }
    m.lag += s.lag
    m.pending += s.pending
    if (s.oldestPendingAgeMs !== null) m.oldestPendingAgeMs = Math.max(m.oldestPendingAgeMs ?? 0, s.oldestPendingAgeMs)
    m.acked = m.acked === null || s.acked === null ? null : m.acked + s.acked
    for (const c of s.consumers) {
      const known = m.consumers.find((k) => k.name === c.name)
      if (known) {
        known.pending += c.pending
        known.idleMs = Math.min(known.idleMs, c.idleMs)
        known.live ||= c.live
      } else m.consumers.push({...c})
    }
  }
  return {at: sample.at, groups: [...merged.values()]}
}
