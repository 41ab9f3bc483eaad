/**
 * The RuntimeMetrics implementation: plain counters per event type and group, HDR histograms for
 * publish and end-to-end delivery latency. Recording is a few property writes and one histogram
 * increment, so it can sit on the hot path; percentiles are computed only when a snapshot is taken.
 *
 * Listeners (progress line, dashboard, Prometheus) never hook into recording: they read snapshots,
 * on demand or on an interval (onSnapshot / MetricsEmitter).
 */
import {EventEmitter} from 'node:events'
import {build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram} from 'hdr-histogram-js'
import type {IntervalHistograms, LatencySummary, LatencyWindow, MetricsDelta, MetricsSnapshot, RuntimeMetrics} from '../../core/metrics.js'

export type {IntervalHistograms, LatencySummary, LatencyWindow, MetricsDelta, MetricsSnapshot, RuntimeMetrics}

/** Histograms hold microseconds: 1 us .. 1 h at 3 significant digits. */
const LOWEST_US = 1
const HIGHEST_US = 3_600_000_000

type Counts = Record<string, number>
type LatencyPair = {publish: Histogram; delivery: Histogram}
type GroupCounts = Record<string, Counts>
type GroupStat = {lag: number; pending: number; oldestPendingAgeMs: number | null}

export function newHistogram(): Histogram {
  // Plain 32-bit buckets (the default, pure JS): the cheapest to record into; ~100 KB each.
  return build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  })
}

function record(histogram: Histogram, latencyMs: number, count: number): void {
  if (!Number.isFinite(latencyMs) || count <= 0) return
  // Clock skew can make a latency negative; out-of-range values are clamped, never thrown.
  const us = Math.min(HIGHEST_US, Math.max(0, Math.round(latencyMs * 1000)))
  if (count === 1) histogram.recordValue(us)
  else histogram.recordValueWithCount(us, count)
}

const newPair = (): LatencyPair => ({publish: newHistogram(), delivery: newHistogram()})

const round3 = (value: number): number => Math.round(value * 1000) / 1000

export function summarize(histogram: Histogram): LatencySummary {
  const count = histogram.totalCount
  if (count === 0) return {count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0}
  const ms = (us: number) => round3(us / 1000)
  return {
    count,
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  }
}

const emptyCounts = (): Counts => Object.create(null) as Counts

function add(counts: Counts, key: string, n: number): void {
  counts[key] = (counts[key] ?? 0) + n
}

function addIn(groups: GroupCounts, group: string, key: string, n: number): void {
  const counts = groups[group] ?? (groups[group] = emptyCounts())
  counts[key] = (counts[key] ?? 0) + n
}

function mergeGroups(into: GroupCounts, from: Record<string, Record<string, number>>): void {
  for (const group in from) {
    const counts = from[group]
    for (const key in counts) addIn(into, group, key, counts[key])
  }
}

/** A histogram's content as plain text (compressed HDR encoding), or null when it holds nothing. */
function encode(histogram: Histogram): string | null {
  return histogram.totalCount === 0 ? null : encodeIntoCompressedBase64(histogram)
}

/** Adds an encoded histogram (as in a MetricsDelta or a process snapshot) into `into`. */
export function addEncoded(into: Histogram, encoded: string | null): void {
  if (encoded === null) return
  into.add(decodeFromCompressedBase64(encoded, 32))
}

const sum = (counts: Counts): number => {
  let total = 0
  for (const key in counts) total += counts[key]
  return total
}

const sumGroups = (groups: GroupCounts): number => {
  let total = 0
  for (const group in groups) total += sum(groups[group])
  return total
}

const copyCounts = (counts: Counts): Record<string, number> => ({...counts})
const copyGroups = (groups: GroupCounts): Record<string, Record<string, number>> => {
  const out: Record<string, Record<string, number>> = {}
  for (const group in groups) out[group] = {...groups[group]}
  return out
}

export class Metrics implements RuntimeMetrics {
  private publishedCounts = emptyCounts()
  private deliveredCounts: GroupCounts = Object.create(null)
  private ackedCounts: GroupCounts = Object.create(null)
  private retriedCounts: GroupCounts = Object.create(null)
  private deadLetteredCounts: GroupCounts = Object.create(null)
  private staleReadCounts: GroupCounts = Object.create(null)
  private groupStatsByName: Record<string, GroupStat> = Object.create(null)
  private readonly publishLatency = newHistogram()
  private readonly deliveryLatency = newHistogram()
  /** Since the last takeInterval(); null until the first call (then one of `beside`). */
  private interval: LatencyPair | null = null
  /** Recorded beside the cumulative histograms: the interval's, once shared, and open windows. */
  private beside: LatencyPair[] = []

  constructor(private readonly now: () => number = Date.now) {}

  published(eventType: string, count: number, latencyMs?: number): void {
    add(this.publishedCounts, eventType, count)
    if (latencyMs !== undefined) {
      record(this.publishLatency, latencyMs, count)
      for (const pair of this.beside) record(pair.publish, latencyMs, count)
    }
  }

  delivered(group: string, eventType: string, count: number): void {
    addIn(this.deliveredCounts, group, eventType, count)
  }

  acked(group: string, eventType: string, count: number, latencyMs?: number): void {
    addIn(this.ackedCounts, group, eventType, count)
    if (latencyMs !== undefined) {
      record(this.deliveryLatency, latencyMs, count)
      for (const pair of this.beside) record(pair.delivery, latencyMs, count)
    }
  }

  retried(group: string, eventType: string): void {
    addIn(this.retriedCounts, group, eventType, 1)
  }

  deadLettered(group: string, eventType: string): void {
    addIn(this.deadLetteredCounts, group, eventType, 1)
  }

  staleRead(group: string, eventType: string): void {
    addIn(this.staleReadCounts, group, eventType, 1)
  }

  groupStats(group: string, stats: GroupStat): void {
    this.groupStatsByName[group] = {lag: stats.lag, pending: stats.pending, oldestPendingAgeMs: stats.oldestPendingAgeMs}
  }

  snapshot(): MetricsSnapshot {
    const groups: MetricsSnapshot['groups'] = {}
    for (const group in this.groupStatsByName) groups[group] = {...this.groupStatsByName[group]}
    return {
      at: this.now(),
      published: copyCounts(this.publishedCounts),
      delivered: copyGroups(this.deliveredCounts),
      acked: copyGroups(this.ackedCounts),
      retried: copyGroups(this.retriedCounts),
      deadLettered: copyGroups(this.deadLetteredCounts),
      staleReads: copyGroups(this.staleReadCounts),
      totals: {
        published: sum(this.publishedCounts),
        delivered: sumGroups(this.deliveredCounts),
        acked: sumGroups(this.ackedCounts),
        retried: sumGroups(this.retriedCounts),
        deadLettered: sumGroups(this.deadLetteredCounts),
        staleReads: sumGroups(this.staleReadCounts),
      },
      publishLatencyMs: summarize(this.publishLatency),
      deliveryLatencyMs: summarize(this.deliveryLatency),
      groups,
    }
  }

  takeDelta(): MetricsDelta {
    const delta: MetricsDelta = {
      published: this.publishedCounts,
      delivered: this.deliveredCounts,
      acked: this.ackedCounts,
      retried: this.retriedCounts,
      deadLettered: this.deadLetteredCounts,
      staleReads: this.staleReadCounts,
      publishLatency: encode(this.publishLatency),
      deliveryLatency: encode(this.deliveryLatency),
    }
    this.reset()
    return delta
  }

  merge(delta: MetricsDelta): void {
    for (const type in delta.published) add(this.publishedCounts, type, delta.published[type])
    mergeGroups(this.deliveredCounts, delta.delivered)
    mergeGroups(this.ackedCounts, delta.acked)
    mergeGroups(this.retriedCounts, delta.retried)
    mergeGroups(this.deadLetteredCounts, delta.deadLettered)
    mergeGroups(this.staleReadCounts, delta.staleReads)
    // Decoded once, added to the cumulative histogram and to those kept beside it.
    for (const [encoded, into, kind] of [
      [delta.publishLatency, this.publishLatency, 'publish'],
      [delta.deliveryLatency, this.deliveryLatency, 'delivery'],
    ] as const) {
      if (encoded === null) continue
      const decoded = decodeFromCompressedBase64(encoded, 32)
      into.add(decoded)
      for (const pair of this.beside) pair[kind].add(decoded)
    }
  }

  openWindow(): LatencyWindow {
    const window = newPair()
    this.beside.push(window)
    return {
      summary: () => ({publishLatencyMs: summarize(window.publish), deliveryLatencyMs: summarize(window.delivery)}),
      close: () => {
        this.beside = this.beside.filter((pair) => pair !== window)
      },
    }
  }

  takeInterval(): IntervalHistograms {
    if (!this.interval) {
      this.interval = newPair()
      this.beside.push(this.interval)
      return {publishLatency: null, deliveryLatency: null}
    }
    const out = {publishLatency: encode(this.interval.publish), deliveryLatency: encode(this.interval.delivery)}
    this.interval.publish.reset()
    this.interval.delivery.reset()
    return out
  }

  reset(): void {
    this.publishedCounts = emptyCounts()
    this.deliveredCounts = Object.create(null)
    this.ackedCounts = Object.create(null)
    this.retriedCounts = Object.create(null)
    this.deadLetteredCounts = Object.create(null)
    this.staleReadCounts = Object.create(null)
    this.groupStatsByName = Object.create(null)
    this.publishLatency.reset()
    this.deliveryLatency.reset()
  }
}

export function createMetrics(options: {now?: () => number} = {}): Metrics {
  return new Metrics(options.now)
}

/**
 * Calls `listener` with a fresh snapshot every `intervalMs` (the timer never keeps the process
 * alive). A throwing listener is reported through `onError` and does not stop the others. Returns stop().
 */
export function onSnapshot(
  metrics: RuntimeMetrics,
  intervalMs: number,
  listener: (snapshot: MetricsSnapshot) => void,
  onError: (error: unknown) => void = () => undefined,
): () => void {
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`)
  const timer = setInterval(() => {
    try {
      listener(metrics.snapshot())
    } catch (error) {
      onError(error)
    }
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * kafkajs-style instrumentation events: `emitter.on('snapshot', fn)`. One timer takes one snapshot
 * per tick however many listeners there are; stop() (or the last listener leaving) ends it.
 */
export class MetricsEmitter extends EventEmitter<{snapshot: [MetricsSnapshot]; error: [unknown]}> {
  private stopTimer: (() => void) | undefined

  constructor(
    private readonly metrics: RuntimeMetrics,
    private readonly intervalMs = 1_000,
  ) {
    super()
  }

  start(): this {
    if (!this.stopTimer) {
      this.stopTimer = onSnapshot(
        this.metrics,
        this.intervalMs,
        (snapshot) => this.emit('snapshot', snapshot),
        (error) => {
          if (this.listenerCount('error') > 0) this.emit('error', error)
        },
      )
    }
    return this
  }

  /** Emits one snapshot now (a final frame before exit). */
  flush(): MetricsSnapshot {
    const snapshot = this.metrics.snapshot()
    this.emit('snapshot', snapshot)
    return snapshot
  }

  stop(): void {
    this.stopTimer?.()
    this.stopTimer = undefined
  }
}

export {startPrometheusExporter, createPrometheusRegistry, type PrometheusExporter} from './prometheus.js'
