/**
 * How a process shares its metrics with the dashboard: interval histograms beside the cumulative
 * ones (workers' merged deltas included), and the beacon that publishes a snapshot a second onto
 * the internal topic tektree.metrics, through the Bus port only.
 */
import {describe, expect, it} from 'vitest'
import {createMemoryBus} from '../../src/adapters/memory/index.js'
import {METRICS_TOPIC, readSnapshots, startMetricsBeacon} from '../../src/engine/metrics/beacon.js'
import {createMetrics} from '../../src/engine/metrics/index.js'

describe('interval histograms', () => {
  it('the interval histograms leave the cumulative ones alone, and hold workers\' merged deltas', () => {
    const parent = createMetrics()
    parent.takeInterval()
    parent.acked('g', 't', 1, 10)
    const worker = createMetrics()
    worker.acked('g', 't', 3, 20)
    parent.merge(worker.takeDelta())
    const first = parent.takeInterval()
    expect(first.deliveryLatency).not.toBeNull()
    expect(parent.takeInterval()).toEqual({publishLatency: null, deliveryLatency: null})
    expect(parent.snapshot().deliveryLatencyMs.count).toBe(4)
  })
})

describe('the metrics beacon on a bus', () => {
  it('publishes a snapshot a tick onto tektree.metrics, and a final one on stop; readSnapshots reads them', async () => {
    const bus = createMemoryBus()
    const metrics = createMetrics()
    const beacon = startMetricsBeacon({bus, metrics, role: 'services', workers: () => 3, intervalMs: 20})
    metrics.published('user.registered', 4, 2)
    await new Promise((r) => setTimeout(r, 120))
    await beacon.stop()
    const {snapshots, cursor} = await readSnapshots(bus, undefined, 0)
    expect(snapshots.length).toBeGreaterThanOrEqual(2)
    expect(snapshots.every((s) => s.role === 'services' && s.workers === 3 && s.pid === process.pid)).toBe(true)
    expect(snapshots.at(-1)!.final).toBe(true)
    expect(snapshots.at(-1)!.totals.published).toBe(4)
    expect(snapshots.some((s) => s.publishLatency !== null)).toBe(true)
    // The topic is the internal one, with a length bound; nothing new after the cursor.
    const topic = (await bus.topics()).find((t) => t.name === METRICS_TOPIC)!
    expect(topic.retention?.maxLen).toBeGreaterThan(0)
    expect((await readSnapshots(bus, cursor, 0)).snapshots).toEqual([])
    await bus.close()
  })
})
