import {afterEach, describe, expect, it} from 'vitest'
import {createMetrics, MetricsEmitter, onSnapshot, startPrometheusExporter, type PrometheusExporter} from '../../src/engine/metrics/index.js'

/** HDR keeps 3 significant digits: a percentile may read up to 0.1% above the recorded value. */
const near = (actual: number, expected: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * 0.001 + 0.001)

describe('createMetrics', () => {
  it('counts per type and per group, with totals', () => {
    const metrics = createMetrics({now: () => 42})
    metrics.published('user.registered', 3)
    metrics.published('user.registered', 2)
    metrics.published('social.content.liked', 1)
    metrics.delivered('gamification', 'user.registered', 5)
    metrics.acked('gamification', 'user.registered', 4)
    metrics.acked('notification', 'social.content.liked', 1)
    metrics.retried('gamification', 'user.registered')
    metrics.retried('gamification', 'user.registered')
    metrics.deadLettered('gamification', 'user.registered')
    metrics.staleRead('gamification', 'social.content.liked')
    metrics.groupStats('gamification', {lag: 7, pending: 2, oldestPendingAgeMs: 1500})

    const s = metrics.snapshot()
    expect(s.at).toBe(42)
    expect(s.published).toEqual({'user.registered': 5, 'social.content.liked': 1})
    expect(s.delivered).toEqual({gamification: {'user.registered': 5}})
    expect(s.acked).toEqual({gamification: {'user.registered': 4}, notification: {'social.content.liked': 1}})
    expect(s.retried).toEqual({gamification: {'user.registered': 2}})
    expect(s.deadLettered).toEqual({gamification: {'user.registered': 1}})
    expect(s.staleReads).toEqual({gamification: {'social.content.liked': 1}})
    expect(s.totals).toEqual({published: 6, delivered: 5, acked: 5, retried: 2, deadLettered: 1, staleReads: 1})
    expect(s.groups).toEqual({gamification: {lag: 7, pending: 2, oldestPendingAgeMs: 1500}})
  })

  it("a worker's delta carries every counter to the parent's metrics, stale reads too", () => {
    const worker = createMetrics()
    worker.retried('gamification', 'user.registered')
    worker.staleRead('gamification', 'social.content.liked')
    worker.staleRead('payment', 'social.content.liked')
    const parent = createMetrics()
    parent.staleRead('gamification', 'social.content.liked')
    parent.merge(worker.takeDelta())
    expect(parent.snapshot().staleReads).toEqual({gamification: {'social.content.liked': 2}, payment: {'social.content.liked': 1}})
    expect(parent.snapshot().totals).toMatchObject({retried: 1, staleReads: 3})
    expect(worker.snapshot().totals.staleReads).toBe(0)
  })

  it('a window holds the latencies recorded or merged while it is open, beside the cumulative ones', () => {
    const metrics = createMetrics()
    metrics.acked('g', 't', 1, 500) // before: the warm-up
    const window = metrics.openWindow()
    metrics.acked('g', 't', 1, 10)
    metrics.published('t', 4, 2)
    const worker = createMetrics()
    worker.acked('g', 't', 1, 20)
    metrics.merge(worker.takeDelta())
    window.close()
    metrics.acked('g', 't', 1, 900) // after it closed
    const inWindow = window.summary()
    expect(inWindow.deliveryLatencyMs.count).toBe(2)
    near(inWindow.deliveryLatencyMs.max, 20)
    expect(inWindow.publishLatencyMs.count).toBe(4)
    const whole = metrics.snapshot()
    expect(whole.deliveryLatencyMs.count).toBe(4)
    near(whole.deliveryLatencyMs.max, 900)
  })

  it('computes latency percentiles, max and mean from the histograms', () => {
    const metrics = createMetrics()
    for (let ms = 1; ms <= 100; ms++) metrics.acked('g', 't', 1, ms)
    metrics.published('t', 10, 2.5) // a batch: 10 events at 2.5 ms each
    const s = metrics.snapshot()
    expect(s.deliveryLatencyMs.count).toBe(100)
    near(s.deliveryLatencyMs.p50, 50)
    near(s.deliveryLatencyMs.p95, 95)
    near(s.deliveryLatencyMs.p99, 99)
    near(s.deliveryLatencyMs.max, 100)
    near(s.deliveryLatencyMs.mean, 50.5)
    expect(s.publishLatencyMs.count).toBe(10)
    near(s.publishLatencyMs.p99, 2.5)
  })

  it('keeps sub-millisecond resolution and clamps out-of-range latencies instead of throwing', () => {
    const metrics = createMetrics()
    metrics.acked('g', 't', 1, 0.25)
    metrics.acked('g', 't', 1, -5) // clock skew
    metrics.acked('g', 't', 1, 10 * 3_600_000) // 10 h, beyond the 1 h range
    metrics.acked('g', 't', 1, Number.NaN) // ignored for latency, still counted
    const s = metrics.snapshot()
    expect(s.deliveryLatencyMs.count).toBe(3)
    near(s.deliveryLatencyMs.p50, 0.25)
    near(s.deliveryLatencyMs.max, 3_600_000)
    expect(s.totals.acked).toBe(4)
  })

  it('returns zeros for empty histograms and forgets everything on reset()', () => {
    const metrics = createMetrics()
    expect(metrics.snapshot().deliveryLatencyMs).toEqual({count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0})
    metrics.published('t', 1, 3)
    metrics.groupStats('g', {lag: 1, pending: 0, oldestPendingAgeMs: null})
    metrics.reset()
    const s = metrics.snapshot()
    expect(s.published).toEqual({})
    expect(s.groups).toEqual({})
    expect(s.totals.published).toBe(0)
    expect(s.publishLatencyMs.count).toBe(0)
  })

  it('snapshots are copies: recording afterwards does not change them', () => {
    const metrics = createMetrics()
    metrics.acked('g', 't', 1)
    const s = metrics.snapshot()
    metrics.acked('g', 't', 1)
    expect(s.acked.g.t).toBe(1)
  })
})

describe('snapshot listeners', () => {
  it('onSnapshot delivers snapshots until stopped; a throwing listener is reported, not fatal', async () => {
    const metrics = createMetrics()
    metrics.published('t', 2)
    const seen: number[] = []
    const errors: unknown[] = []
    let calls = 0
    const stop = onSnapshot(
      metrics,
      5,
      (s) => {
        calls++
        if (calls === 1) throw new Error('boom')
        seen.push(s.totals.published)
      },
      (e) => errors.push(e),
    )
    for (let i = 0; i < 400 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 5))
    stop()
    expect(errors).toHaveLength(1)
    expect(seen.slice(0, 2)).toEqual([2, 2])
    const after = calls
    await new Promise((r) => setTimeout(r, 30))
    expect(calls).toBe(after)
  })

  it('MetricsEmitter emits snapshot events and flush() emits one at once', () => {
    const metrics = createMetrics()
    metrics.published('t', 3)
    const emitter = new MetricsEmitter(metrics, 1000)
    const got: number[] = []
    emitter.on('snapshot', (s) => got.push(s.totals.published))
    emitter.flush()
    expect(got).toEqual([3])
    emitter.stop()
  })
})

describe('startPrometheusExporter', () => {
  let exporter: PrometheusExporter | undefined
  afterEach(async () => {
    await exporter?.close()
    exporter = undefined
  })

  it('serves the counters, gauges and latency quantiles in the Prometheus text format', async () => {
    const metrics = createMetrics()
    metrics.published('user.registered', 4, 2)
    metrics.acked('gamification', 'user.registered', 3, 10)
    metrics.retried('gamification', 'user.registered')
    metrics.deadLettered('gamification', 'user.registered')
    metrics.staleRead('gamification', 'social.content.liked')
    metrics.staleRead('gamification', 'social.content.liked')
    metrics.groupStats('gamification', {lag: 12, pending: 5, oldestPendingAgeMs: 100})
    exporter = await startPrometheusExporter(metrics, {port: 0})
    expect(exporter.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)

    const response = await fetch(exporter.url)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/plain')
    const text = await response.text()
    expect(text).toContain('# TYPE tektree_event_published_total counter')
    expect(text).toContain('tektree_event_published_total{event_type="user.registered"} 4')
    expect(text).toContain('tektree_event_processed_total{group="gamification",event_type="user.registered"} 3')
    expect(text).toContain('tektree_event_failed_total{group="gamification",event_type="user.registered"} 2')
    expect(text).toContain('tektree_event_dead_lettered_total{group="gamification",event_type="user.registered"} 1')
    expect(text).toContain('tektree_event_stale_reads_total{group="gamification",event_type="social.content.liked"} 2')
    expect(text).toContain('tektree_consumer_lag{group="gamification"} 12')
    expect(text).toContain('tektree_consumer_pending{group="gamification"} 5')
    expect(text).toMatch(/tektree_delivery_latency_ms\{quantile="0\.5"\} 10(\.\d+)?\n/)
    expect(text).toMatch(/tektree_publish_latency_ms\{quantile="0\.99"\} 2(\.\d+)?\n/)
  })

  it('reflects new recordings and resets on every scrape, and answers 404 elsewhere', async () => {
    const metrics = createMetrics()
    exporter = await startPrometheusExporter(metrics, {port: 0})
    metrics.published('t', 1)
    const first = await (await fetch(exporter.url)).text()
    expect(first).toContain('tektree_event_published_total{event_type="t"} 1')
    metrics.published('t', 2)
    const second = await (await fetch(exporter.url)).text()
    expect(second).toContain('tektree_event_published_total{event_type="t"} 3')
    metrics.reset()
    const third = await (await fetch(exporter.url)).text()
    expect(third).not.toContain('event_type="t"')
    expect((await fetch(exporter.url.replace('/metrics', '/other'))).status).toBe(404)
  })

  it('uses its own registry: two exporters do not clash', async () => {
    const a = createMetrics()
    const b = createMetrics()
    a.published('only.a', 1)
    exporter = await startPrometheusExporter(a, {port: 0})
    const other = await startPrometheusExporter(b, {port: 0})
    try {
      expect(await (await fetch(other.url)).text()).not.toContain('only.a')
      expect(await (await fetch(exporter.url)).text()).toContain('only.a')
    } finally {
      await other.close()
    }
  })
})
