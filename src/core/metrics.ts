/**
 * Runtime instrumentation, in the kafkajs style: the runtime records; listeners (progress line,
 * dashboard, Prometheus) read snapshots or subscribe. Recording must stay cheap on the hot path.
 *
 * This file holds the interface every part records against; the implementation (HDR histograms,
 * Prometheus exporter) lives in src/engine/metrics/.
 */
export interface LatencySummary {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

export interface MetricsSnapshot {
  /** Wall-clock ms when taken. */
  at: number
  published: Record<string, number>
  delivered: Record<string, Record<string, number>>
  acked: Record<string, Record<string, number>>
  retried: Record<string, Record<string, number>>
  deadLettered: Record<string, Record<string, number>>
  /** Deliveries whose commit was refused as a stale read (STALE_READ): the bus brings them again. */
  staleReads: Record<string, Record<string, number>>
  /** Totals across types and groups. */
  totals: {published: number; delivered: number; acked: number; retried: number; deadLettered: number; staleReads: number}
  publishLatencyMs: LatencySummary
  deliveryLatencyMs: LatencySummary
  /** Per group, the last polled bus stats. */
  groups: Record<string, {lag: number; pending: number; oldestPendingAgeMs: number | null}>
}

/**
 * What one RuntimeMetrics recorded since its last delta: counters and the two latency histograms
 * (HDR, compressed base64; null when nothing was recorded). Plain data, so it crosses postMessage:
 * a worker thread records into its own metrics and sends deltas; the parent merges them, and the
 * report and the Prometheus endpoint read the parent's.
 */
export interface MetricsDelta {
  published: Record<string, number>
  delivered: Record<string, Record<string, number>>
  acked: Record<string, Record<string, number>>
  retried: Record<string, Record<string, number>>
  deadLettered: Record<string, Record<string, number>>
  staleReads: Record<string, Record<string, number>>
  publishLatency: string | null
  deliveryLatency: string | null
}

/** Latency histograms recorded since the last takeInterval() (HDR, compressed base64; null when empty). */
export interface IntervalHistograms {
  publishLatency: string | null
  deliveryLatency: string | null
}

export interface LatencyWindow {
  /** What was recorded since the window opened (or until it was closed). */
  summary(): {publishLatencyMs: LatencySummary; deliveryLatencyMs: LatencySummary}
  /** Stops recording into it; summary() still answers. */
  close(): void
}

export interface RuntimeMetrics {
  /** Events accepted by the bus (per event type). */
  published(eventType: string, count: number, latencyMs?: number): void
  /** Deliveries handed to a group's handler. */
  delivered(group: string, eventType: string, count: number): void
  /** Acked after success; `latencyMs` = now - event timestamp (end-to-end delivery latency). */
  acked(group: string, eventType: string, count: number, latencyMs?: number): void
  retried(group: string, eventType: string): void
  deadLettered(group: string, eventType: string): void
  /**
   * A handled event left out of its commit: a document it read had been written by another
   * process since (optimistic concurrency); it is handled again when the bus redelivers it.
   */
  staleRead(group: string, eventType: string): void
  groupStats(group: string, stats: {lag: number; pending: number; oldestPendingAgeMs: number | null}): void
  snapshot(): MetricsSnapshot
  /**
   * Moves out everything recorded since the last call (or since creation): this instance then
   * starts from zero, as after reset(). For a metrics that relays (a worker thread's), not one
   * that is read.
   */
  takeDelta(): MetricsDelta
  /** Adds another instance's delta (counters and histograms) as if it had been recorded here. */
  merge(delta: MetricsDelta): void
  /**
   * The latency histograms of what was recorded (or merged) since the previous call, leaving the
   * cumulative state alone: what a process shares with the dashboard each second. Recording into
   * the interval histograms starts with the first call, so a process that never shares pays nothing.
   */
  takeInterval(): IntervalHistograms
  /**
   * Latencies recorded (or merged) from now on, kept beside the cumulative ones until closed: the
   * part of a run measured after its warm-up. Any number may be open at once.
   */
  openWindow(): LatencyWindow
  reset(): void
}
