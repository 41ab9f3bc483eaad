/**
 * Runtime instrumentation, in the kafkajs style: the runtime records; listeners (progress line,
 * dashboard, Prometheus) read snapshots or subscribe. Recording must stay cheap on the hot path.
 *
 * This file holds the interface every part records against; the implementation (HDR histograms,
 * Prometheus exporter) lives in src/runtime/metrics/.
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
  /** Totals across types and groups. */
  totals: {published: number; delivered: number; acked: number; retried: number; deadLettered: number}
  publishLatencyMs: LatencySummary
  deliveryLatencyMs: LatencySummary
  /** Per group, the last polled bus stats. */
  groups: Record<string, {lag: number; pending: number; oldestPendingAgeMs: number | null}>
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
  groupStats(group: string, stats: {lag: number; pending: number; oldestPendingAgeMs: number | null}): void
  snapshot(): MetricsSnapshot
  reset(): void
}
