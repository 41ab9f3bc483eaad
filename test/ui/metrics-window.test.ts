/**
 * The window over processes' metric snapshots: rates from cumulative counters (two snapshots
 * apart, per process, summed), percentiles of the merged histograms of every process, types by
 * rate, processes alive or gone.
 */
import {describe, expect, it} from 'vitest'
import {takeSnapshot, type ProcessSnapshot} from '../../src/engine/metrics/beacon.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {MetricsWindow, PROCESS_GONE_MS} from '../../src/ui/metrics-window.js'

const T0 = Date.parse('2026-11-30T12:00:00Z')

function processRecorder(id: string, role = 'simulate') {
  const metrics = createMetrics()
  metrics.takeInterval()
  return {
    metrics,
    snap: (at: number, workers = 0): ProcessSnapshot => takeSnapshot(metrics, {id, role, host: 'h', pid: 1, startedAt: T0 - 60_000, intervalMs: 1000, workers}, at),
  }
}

describe('MetricsWindow', () => {
  it('adds up rates of several processes from their cumulative counters', () => {
    const a = processRecorder('a')
    const b = processRecorder('b', 'services')
    const w = new MetricsWindow()
    w.add(a.snap(T0))
    w.add(b.snap(T0))
    for (let s = 1; s <= 5; s++) {
      a.metrics.published('user.registered', 100)
      b.metrics.acked('gamification', 'user.registered', 80)
      w.add(a.snap(T0 + s * 1000))
      w.add(b.snap(T0 + s * 1000, 2))
    }
    // The window's 5 full seconds before T0+6s: seconds 1..5.
    expect(w.rates(T0 + 6_000)).toEqual({inPerSec: 100, outPerSec: 80})
    expect(w.processes(T0 + 6_000).map((p) => [p.role, p.workers])).toEqual([
      ['simulate', 0],
      ['services', 2],
    ])
    const series = w.series(T0 + 6_000, 1, 6)
    expect(series.in).toEqual([0, 100, 100, 100, 100, 100])
    expect(w.types(T0 + 6_000, 5)).toEqual([{type: 'user.registered', perSec: 100, total: 500}])
  })

  it('merges the latency histograms of every process: percentiles of all events', () => {
    const a = processRecorder('a')
    const b = processRecorder('b')
    for (let i = 0; i < 90; i++) a.metrics.acked('g', 't', 1, 5)
    for (let i = 0; i < 10; i++) b.metrics.acked('g', 't', 1, 500)
    const w = new MetricsWindow()
    w.add(a.snap(T0))
    w.add(b.snap(T0))
    const {delivery, publish} = w.latency(T0 + 500)
    expect(delivery.count).toBe(100)
    expect(delivery.p50).toBeCloseTo(5, 1)
    expect(delivery.p95).toBeCloseTo(500, -1)
    expect(publish.count).toBe(0)
    // Outside the 10 s window they no longer count.
    expect(w.latency(T0 + 11_000).delivery.count).toBe(0)
  })

  it('a counter that went down (a reset) counts from zero, an older snapshot is ignored, a silent process is gone', () => {
    const a = processRecorder('a')
    const w = new MetricsWindow()
    a.metrics.published('x', 50)
    w.add(a.snap(T0))
    a.metrics.reset()
    a.metrics.published('x', 7)
    w.add(a.snap(T0 + 1000))
    w.add({...a.snap(T0 + 500), totals: {published: 1e9, delivered: 0, acked: 0, retried: 0, deadLettered: 0}})
    expect(w.rates(T0 + 2000, 1)).toEqual({inPerSec: 7, outPerSec: 0})
    expect(w.processes(T0 + 1000 + PROCESS_GONE_MS + 1)).toEqual([])
    expect(w.processes(T0 + 2000)).toHaveLength(1)
    w.add({...a.snap(T0 + 2000), final: true})
    expect(w.processes(T0 + 2500)).toEqual([])
  })

})

