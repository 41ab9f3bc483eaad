/**
 * The shipped chaos scenario (poison pills, duplicate deliveries, reordering, transient and
 * permanent handler failures, consumer crashes) through every TekTree service, then the oracle:
 * each fault reaches its effect and not one projection differs from the event log.
 */
import {describe, expect, it} from 'vitest'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

describe('chaos, then verify', () => {
  it('every fault kind at once leaves zero differences', {timeout: 300_000}, async () => {
    // The shipped scenario, shorter; its virtual clock runs an hour a second, so retries pass at once.
    const scenario = applyOverrides(loadScenario('chaos'), {events: 3000, rate: 200})
    const report = await runSimulation({scenario, inProcess: true, verify: true, drainTimeoutMs: 120_000})
    expect(report.events.simulated).toBe(3000)
    expect(report.faults.poison).toBeGreaterThan(0)
    expect(report.faults.duplicates).toBeGreaterThan(0)
    expect(report.faults.consumerCrashes).toBeGreaterThan(0)
    expect(report.deliveries.retried).toBeGreaterThan(0)
    expect(report.deliveries.deadLettered).toBeGreaterThan(0) // poison pills and permanent failures
    expect(report.drained).toBe(true)
    expect(report.verify?.sample ?? []).toEqual([])
    expect(report.verify).toMatchObject({differences: 0})
    expect(report.assertions.every((a) => a.ok)).toBe(true)
  })
})
