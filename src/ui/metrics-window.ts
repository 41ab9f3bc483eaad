/**
 * The processes' metric snapshots (engine/metrics/beacon.ts) over a sliding window, per second:
 * what came in (published) and went out (acked) across every process, per event type, and the
 * latency histograms merged across processes (so a p95 is of all their events, not an average of
 * theirs). Plain data structure, no I/O: the dashboard's feed adds what it reads, the view-model
 * asks for rates, series, percentiles and processes at a time `now`.
 */
import type {Histogram} from 'hdr-histogram-js'
import type {LatencySummary} from '../core/metrics.js'
import type {ProcessSnapshot} from '../engine/metrics/beacon.js'
import {addEncoded, newHistogram, summarize} from '../engine/metrics/index.js'

interface Bucket {
  in: number
  out: number
  byType: Map<string, number>
  publish: Histogram | null
  delivery: Histogram | null
}

export interface ProcessInfo {
  id: string
  role: string
  host: string
  pid: number
  workers: number
  startedAt: number
  /** When its last snapshot was taken. */
  at: number
}

export interface TypeRate {
  type: string
  /** Published a second over the window. */
  perSec: number
  /** Published since each live process started, summed. */
  total: number
}

/** A process whose last snapshot is older than this is gone (it shares one a second). */
export const PROCESS_GONE_MS = 5_000
/** How long buckets are kept: the longest sparkline. */
const KEEP_SECONDS = 600

const second = (ms: number) => Math.floor(ms / 1000)

export class MetricsWindow {
  private readonly latest = new Map<string, ProcessSnapshot>()
  private readonly buckets = new Map<number, Bucket>()
  private readonly scratch = newHistogram()

  /** Adds one snapshot (in any order per process: an older one than the latest is ignored). */
  add(snapshot: ProcessSnapshot): void {
    const previous = this.latest.get(snapshot.id)
    if (previous && snapshot.at <= previous.at) return
    this.latest.set(snapshot.id, snapshot)
    const bucket = this.bucket(second(snapshot.at))
    // Counters are cumulative: the first snapshot of a process is its baseline; a drop is a reset.
    if (previous) {
      const delta = (now: number, before: number) => (now >= before ? now - before : now)
      bucket.in += delta(snapshot.totals.published, previous.totals.published)
      bucket.out += delta(snapshot.totals.acked, previous.totals.acked)
      for (const [type, count] of Object.entries(snapshot.publishedByType)) {
        const d = delta(count, previous.publishedByType[type] ?? 0)
        if (d > 0) bucket.byType.set(type, (bucket.byType.get(type) ?? 0) + d)
      }
    }
    if (snapshot.publishLatency) addEncoded((bucket.publish ??= newHistogram()), snapshot.publishLatency)
    if (snapshot.deliveryLatency) addEncoded((bucket.delivery ??= newHistogram()), snapshot.deliveryLatency)
  }

  /** Forgets buckets older than the longest window and processes gone long ago. */
  prune(now: number): void {
    const oldest = second(now) - KEEP_SECONDS
    for (const key of this.buckets.keys()) if (key < oldest) this.buckets.delete(key)
    for (const [id, s] of this.latest) if (now - s.at > KEEP_SECONDS * 1000) this.latest.delete(id)
  }

  /** Processes sharing metrics now (a last snapshot within PROCESS_GONE_MS, and not their final one). */
  processes(now: number): ProcessInfo[] {
    return [...this.latest.values()]
      .filter((s) => !s.final && now - s.at <= PROCESS_GONE_MS)
      .map((s) => ({id: s.id, role: s.role, host: s.host, pid: s.pid, workers: s.workers, startedAt: s.startedAt, at: s.at}))
      .sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id))
  }

  /** Whether any snapshot was ever added (a runtime no process shares metrics on yet, otherwise). */
  get empty(): boolean {
    return this.latest.size === 0
  }

  /**
   * In and out a second over the `seconds` full seconds before `now` (the current second is still
   * arriving). Null before any snapshot.
   */
  rates(now: number, seconds = 5): {inPerSec: number; outPerSec: number} | null {
    if (this.empty) return null
    let inSum = 0
    let outSum = 0
    for (const b of this.range(now, seconds)) {
      inSum += b.in
      outSum += b.out
    }
    return {inPerSec: inSum / seconds, outPerSec: outSum / seconds}
  }

  /** `count` values of in and out a second, each the mean over `bucketSeconds`, oldest first, ending before `now`'s second. */
  series(now: number, bucketSeconds: number, count: number): {in: number[]; out: number[]} {
    const end = second(now) // exclusive
    const ins: number[] = []
    const outs: number[] = []
    for (let i = count - 1; i >= 0; i--) {
      let inSum = 0
      let outSum = 0
      const from = end - (i + 1) * bucketSeconds
      for (let s = from; s < from + bucketSeconds; s++) {
        const b = this.buckets.get(s)
        if (b) {
          inSum += b.in
          outSum += b.out
        }
      }
      ins.push(inSum / bucketSeconds)
      outs.push(outSum / bucketSeconds)
    }
    return {in: ins, out: outs}
  }

  /** Publish and delivery latency percentiles of every process over the last `seconds` seconds (the current one included). */
  latency(now: number, seconds = 10): {publish: LatencySummary; delivery: LatencySummary} {
    const merged = (pick: (b: Bucket) => Histogram | null) => {
      this.scratch.reset()
      for (const b of this.range(now, seconds, true)) {
        const h = pick(b)
        if (h) this.scratch.add(h)
      }
      return summarize(this.scratch)
    }
    return {publish: merged((b) => b.publish), delivery: merged((b) => b.delivery)}
  }

  /** Event types published, the busiest over the last `seconds` first, then by total. */
  types(now: number, seconds = 10): TypeRate[] {
    const rate = new Map<string, number>()
    for (const b of this.range(now, seconds)) for (const [type, n] of b.byType) rate.set(type, (rate.get(type) ?? 0) + n)
    const total = new Map<string, number>()
    for (const p of this.processes(now)) {
      for (const [type, n] of Object.entries(this.latest.get(p.id)!.publishedByType)) total.set(type, (total.get(type) ?? 0) + n)
    }
    const types = new Set([...rate.keys(), ...total.keys()])
    return [...types]
      .map((type) => ({type, perSec: (rate.get(type) ?? 0) / seconds, total: total.get(type) ?? 0}))
      .sort((a, b) => b.perSec - a.perSec || b.total - a.total || a.type.localeCompare(b.type))
  }

  private bucket(key: number): Bucket {
    let b = this.buckets.get(key)
    if (!b) {
      b = {in: 0, out: 0, byType: new Map(), publish: null, delivery: null}
      this.buckets.set(key, b)
    }
    return b
  }

  private *range(now: number, seconds: number, includeCurrent = false): Iterable<Bucket> {
    const end = second(now) + (includeCurrent ? 1 : 0)
    for (let s = end - seconds; s < end; s++) {
      const b = this.buckets.get(s)
      if (b) yield b
    }
  }
}
