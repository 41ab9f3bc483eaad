/**
 * A Prometheus endpoint over RuntimeMetrics. It has its own prom-client Registry (never the global
 * one, so two runtimes in one process or a host application's metrics never collide) and computes
 * every value from one RuntimeMetrics snapshot per scrape: nothing is recorded twice.
 *
 * Names follow seed 002's observability section: event.published / event.processed / event.failed,
 * plus dead-lettered, consumer lag / pending, and latency quantiles as gauges (from the HDR histograms;
 * quantile="1" is the max).
 */
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Counter, Gauge, Registry} from 'prom-client'
import type {LatencySummary, MetricsSnapshot, RuntimeMetrics} from '../../core/metrics.js'

export interface PrometheusExporter {
  /** http://host:port/metrics */
  url: string
  port: number
  registry: Registry
  close(): Promise<void>
}

const QUANTILES: Array<[string, keyof LatencySummary]> = [
  ['0.5', 'p50'],
  ['0.95', 'p95'],
  ['0.99', 'p99'],
  ['1', 'max'],
]

/** A Registry whose metrics read `metrics` on collect(). `current` lets a scrape share one snapshot. */
export function createPrometheusRegistry(metrics: RuntimeMetrics, current: () => MetricsSnapshot = () => metrics.snapshot()): Registry {
  const registry = new Registry()

  // Counters are set from the snapshot on each scrape (reset + inc): a RuntimeMetrics.reset() shows up
  // as a counter reset, which Prometheus' rate() already handles.
  const perGroupCounter = (name: string, help: string, pick: (s: MetricsSnapshot) => Array<Record<string, Record<string, number>>>) =>
    new Counter({
      name,
      help,
      labelNames: ['group', 'event_type'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const source of pick(current())) {
          for (const group of Object.keys(source)) {
            for (const [eventType, value] of Object.entries(source[group])) {
              if (value > 0) this.inc({group, event_type: eventType}, value)
            }
          }
        }
      },
    })

  new Counter({
    name: 'tektree_event_published_total',
    help: 'Events accepted by the bus (event.published in the platform eventing standard).',
    labelNames: ['event_type'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [eventType, value] of Object.entries(current().published)) {
        if (value > 0) this.inc({event_type: eventType}, value)
      }
    },
  })
  perGroupCounter('tektree_event_processed_total', 'Deliveries handled and acked by a consumer group (event.processed in the platform eventing standard).', (s) => [s.acked])
  perGroupCounter(
    'tektree_event_failed_total',
    'Failed handling attempts, retried or dead-lettered (event.failed in the platform eventing standard).',
    (s) => [s.retried, s.deadLettered],
  )
  perGroupCounter('tektree_event_dead_lettered_total', 'Events moved to the dead-letter queue.', (s) => [s.deadLettered])
  perGroupCounter(
    'tektree_event_stale_reads_total',
    'Handled events left out of their commit because a document they read was written by another process since (STALE_READ); the bus brings them again.',
    (s) => [s.staleReads],
  )

  const groupGauge = (name: string, help: string, pick: (g: MetricsSnapshot['groups'][string]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['group'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const [group, stats] of Object.entries(current().groups)) this.set({group}, pick(stats))
      },
    })
  groupGauge('tektree_consumer_lag', 'Messages not yet delivered to the group (last polled).', (g) => g.lag)
  groupGauge('tektree_consumer_pending', 'Messages delivered to the group and not yet acked (last polled).', (g) => g.pending)

  const latencyGauge = (name: string, help: string, pick: (s: MetricsSnapshot) => LatencySummary) =>
    new Gauge({
      name,
      help,
      labelNames: ['quantile'] as const,
      registers: [registry],
      collect() {
        this.reset()
        const summary = pick(current())
        if (summary.count === 0) return
        for (const [quantile, key] of QUANTILES) this.set({quantile}, summary[key])
      },
    })
  latencyGauge('tektree_publish_latency_ms', 'Bus publish latency in ms by quantile (HDR histogram; quantile="1" is the max).', (s) => s.publishLatencyMs)
  latencyGauge(
    'tektree_delivery_latency_ms',
    'End-to-end delivery latency (event timestamp to ack) in ms by quantile (HDR histogram; quantile="1" is the max).',
    (s) => s.deliveryLatencyMs,
  )

  return registry
}

/** Serves GET /metrics on host:port (port 0 = a free one). Only loopback by default. */
export async function startPrometheusExporter(
  metrics: RuntimeMetrics,
  options: {port?: number; host?: string} = {},
): Promise<PrometheusExporter> {
  const host = options.host ?? '127.0.0.1'
  let scrape: MetricsSnapshot | null = null
  const registry = createPrometheusRegistry(metrics, () => scrape ?? metrics.snapshot())

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, {allow: 'GET, HEAD'}).end()
      return
    }
    if (path !== '/metrics') {
      response.writeHead(404, {'content-type': 'text/plain'}).end('Not found: try /metrics\n')
      return
    }
    scrape = metrics.snapshot()
    registry
      .metrics()
      .then(
        (text) => response.writeHead(200, {'content-type': registry.contentType}).end(request.method === 'HEAD' ? undefined : text),
        (error: unknown) => response.writeHead(500, {'content-type': 'text/plain'}).end(`${String((error as Error)?.message ?? error)}\n`),
      )
      .finally(() => {
        scrape = null
      })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 9464, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const {port} = server.address() as AddressInfo
  const urlHost = host.includes(':') ? `[${host}]` : host
  let closed: Promise<void> | undefined
  return {
    url: `http://${urlHost}:${port}/metrics`,
    port,
    registry,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closed
    },
  }
}
