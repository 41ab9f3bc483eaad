/**
 * The shipped chaos scenario (poison pills, duplicate deliveries, reordering, transient and
 * permanent handler failures, consumer crashes, two consumers per group) over 20 seeds, each then
 * checked by the oracle: not one projection may differ from the event log. One seed in eight used
 * to apply an effect twice (a crashed consumer's redelivery reaching a profile past its per-document
 * guard); the runner's unit of work (effects, derived events and ledger marks in one commit) is
 * what this keeps honest.
 *
 * In-process, shortened (1,500 events at 500/s, a crash every second) so 20 seeds fit in CI.
 */
import {describe, expect, it} from 'vitest'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

const SEEDS = Array.from({length: 20}, (_, i) => 31 + i)

describe('chaos over 20 seeds, then verify', () => {
  it.each(SEEDS)('seed %i: zero differences', {timeout: 120_000}, async (seed) => {
    const shipped = applyOverrides(loadScenario('chaos'), {events: 1500, rate: 500})
    const scenario = {...shipped, seed, faults: {...shipped.faults, consumerCrashEveryMs: 1_000}}
    const report = await runSimulation({scenario, inProcess: true, verify: true, drainTimeoutMs: 60_000})
    expect(report.events.simulated).toBe(1500)
    expect(report.faults.consumerCrashes).toBeGreaterThan(0)
    expect(report.drained).toBe(true)
    expect(report.verify?.sample ?? []).toEqual([])
    expect(report.verify).toMatchObject({differences: 0})
  })
})
