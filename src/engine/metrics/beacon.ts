/**
 * How processes share their metrics with `tektree dashboard`: each process that does the work
 * (simulate, services, demo) publishes a small snapshot of its RuntimeMetrics every second onto one
 * internal topic of the bus it already uses, `tektree.metrics`; the dashboard reads that topic.
 *
 * Why the bus, not the store or Prometheus endpoints in the discovery file: the bus is the one thing
 * every process of a runtime is sure to reach, on the embedded runtime and on URLs alike (a discovery
 * file is local to a machine; metrics ports may be closed or unreachable), and it goes through the
 * Bus port only (publish, read, positionAt), so Redis, the in-process bus and Kafka all carry it.
 * Its retention is a length bound, so the topic holds the last minutes and trims itself; a dashboard
 * that starts late still gets them (its sparkline is filled at once). The store would take a write
 * a second per process on the file every consumer commits to, and would need a new table.
 *
 * A snapshot holds cumulative counters (so a lost message loses no count: a rate is two snapshots
 * apart) and the latency histograms of the last interval only (HDR, compressed: mergeable across
 * processes, so percentiles are of all of them, never an average of percentiles). Worker threads
 * send their metrics to their parent, so one snapshot per process covers its workers.
 */
import {hostname} from 'node:os'
import type {RuntimeMetrics} from '../../core/metrics.js'
import type {Bus, Delivery, TopicSpec} from '../../core/ports.js'

export const METRICS_TOPIC = 'tektree.metrics'
/**
 * Enough for a dozen processes over five minutes at one snapshot a second; older ones are trimmed.
 * The age bound too: Kafka has no length setting (only retention.ms), so without it the topic would
 * keep every snapshot there.
 */
export const METRICS_TOPIC_SPEC: TopicSpec = {name: METRICS_TOPIC, partitions: 1, retention: {maxLen: 4_000, maxAgeMs: 30 * 60_000}}
export const SNAPSHOT_VERSION = 1

export interface ProcessSnapshot {
  v: typeof SNAPSHOT_VERSION
  /** One process run: host, pid and start time. */
  id: string
  /** simulate | services | demo | ... */
  role: string
  host: string
  pid: number
  startedAt: number
  /** When taken (ms, wall clock). */
  at: number
  intervalMs: number
  /** Worker threads running services for this process (0: on its main thread, or none). */
  workers: number
  /** Since the process started. */
  totals: {published: number; delivered: number; acked: number; retried: number; deadLettered: number}
  /** Since the process started, per event type. */
  publishedByType: Record<string, number>
  /** Since the process started, per consumer group. */
  ackedByGroup: Record<string, number>
  deadLetteredByGroup: Record<string, number>
  /** This interval's latencies (HDR histograms, compressed base64), null when none. */
  publishLatency: string | null
  deliveryLatency: string | null
  /** The last one: the process is stopping. */
  final?: boolean
}

export interface BeaconOptions {
  bus: Bus
  metrics: RuntimeMetrics
  role: string
  /** Worker threads now (read at each snapshot). */
  workers?: () => number
  intervalMs?: number
  now?: () => number
}

export interface MetricsBeacon {
  /** Takes and publishes a snapshot now. */
  flush(final?: boolean): Promise<void>
  /** Stops the timer and publishes a final snapshot (bounded: a bus that is gone is not waited for). */
  stop(): Promise<void>
}

const sumByGroup = (groups: Record<string, Record<string, number>>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [group, counts] of Object.entries(groups)) out[group] = Object.values(counts).reduce((a, b) => a + b, 0)
  return out
}

export function takeSnapshot(metrics: RuntimeMetrics, base: Pick<ProcessSnapshot, 'id' | 'role' | 'host' | 'pid' | 'startedAt' | 'intervalMs' | 'workers'>, at: number): ProcessSnapshot {
  const snap = metrics.snapshot()
  const interval = metrics.takeInterval()
  return {
    v: SNAPSHOT_VERSION,
    ...base,
    at,
    totals: {...snap.totals},
    publishedByType: snap.published,
    ackedByGroup: sumByGroup(snap.acked),
    deadLetteredByGroup: sumByGroup(snap.deadLettered),
    publishLatency: interval.publishLatency,
    deliveryLatency: interval.deliveryLatency,
  }
}

/** Publishes a snapshot every `intervalMs` (default 1 s) until stop(). Never throws: the work matters more. */
export function startMetricsBeacon(options: BeaconOptions): MetricsBeacon {
  const now = options.now ?? Date.now
  const intervalMs = options.intervalMs ?? 1_000
  const host = hostname()
  const startedAt = now()
  const id = `${host}-${process.pid}-${startedAt.toString(36)}`
  // The first call starts the interval histograms: from now on they record beside the cumulative ones.
  options.metrics.takeInterval()
  let ensured: Promise<void> | null = null
  let inFlight: Promise<void> | null = null
  let stopped = false
  const send = async (final: boolean) => {
    const snapshot = takeSnapshot(options.metrics, {id, role: options.role, host, pid: process.pid, startedAt, intervalMs, workers: options.workers?.() ?? 0}, now())
    if (final) snapshot.final = true
    try {
      ensured ??= options.bus.ensureTopics([METRICS_TOPIC_SPEC])
      await ensured
      await options.bus.publish([{topic: METRICS_TOPIC, key: id, value: JSON.stringify(snapshot), headers: {kind: 'metrics'}}])
    } catch {
      // A bus that does not answer: the next tick tries again (the counters are cumulative).
      ensured = null
    }
  }
  const flush = (final = false): Promise<void> => {
    // One at a time: a slow bus must not pile snapshots up.
    if (inFlight) return inFlight
    inFlight = send(final).finally(() => (inFlight = null))
    return inFlight
  }
  const timer = setInterval(() => void flush(), intervalMs)
  timer.unref()
  return {
    flush,
    async stop() {
      if (stopped) return
      stopped = true
      clearInterval(timer)
      await inFlight
      let timeout: NodeJS.Timeout | undefined
      await Promise.race([flush(true), new Promise<void>((resolve) => (timeout = setTimeout(resolve, 1_000)))])
      clearTimeout(timeout)
    },
  }
}

/** A snapshot from the bytes on the topic, or null when they are not one (another version, junk). */
export function parseSnapshot(delivery: Pick<Delivery, 'value'>): ProcessSnapshot | null {
  try {
    const value = JSON.parse(delivery.value) as ProcessSnapshot
    if (value?.v !== SNAPSHOT_VERSION || typeof value.id !== 'string' || typeof value.at !== 'number' || typeof value.totals !== 'object') return null
    return value
  } catch {
    return null
  }
}

/**
 * Reads the snapshots on the topic after `after` (the cursor the previous call returned; undefined
 * on the first call: from `sinceMs`), a page at a time, and returns them with the cursor to go on from.
 */
export async function readSnapshots(bus: Bus, after: string | null | undefined, sinceMs: number): Promise<{snapshots: ProcessSnapshot[]; cursor: string | null}> {
  let cursor = after === undefined ? await bus.positionAt(METRICS_TOPIC, 0, sinceMs) : after
  const snapshots: ProcessSnapshot[] = []
  for (let pages = 0; pages < 20; pages++) {
    const page = await bus.read(METRICS_TOPIC, 0, cursor, 500)
    for (const delivery of page) {
      const snapshot = parseSnapshot(delivery)
      if (snapshot) snapshots.push(snapshot)
    }
    if (page.length > 0) cursor = page[page.length - 1].id
    if (page.length < 500) break
  }
  return {snapshots, cursor}
}
