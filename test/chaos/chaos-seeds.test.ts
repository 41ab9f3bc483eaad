/**
 * The shipped chaos scenario (poison pills, duplicate deliveries, reordering, transient and
 * permanent handler failures, consumer crashes, two consumers per group) over 20 seeds, each then
 * checked by the oracle: not one projection may differ from the event log. One seed in eight used
 * to apply an effect twice (a crashed consumer's redelivery reaching a profile past its per-document
 * guard); the runner's unit of work (effects, derived events and ledger marks in one commit) is
 * what this keeps honest. And the DLQ must hold exactly what the faults put there
 * (test/support/chaos/dead-letters.ts): verify leaves dead-lettered events out of what it expects,
 * so only this catches an event dead-lettered by mistake.
 *
 * In-process, shortened (1,500 events at 500/s, a crash every second) so 20 seeds fit in CI.
 * `npm run chaos`: TEKTREE_CHAOS_SEEDS seeds (from 31), TEKTREE_CHAOS_SEEDS_EVENTS events each.
 */
import {afterAll, describe, expect, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import {openRuntime} from '../../src/adapters/open.js'
import {VirtualClock} from '../../src/core/clock.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'
import {checkDeadLetters} from '../support/chaos/dead-letters.js'
import {envCount, recordResult, type ScenarioResult} from '../support/chaos/harness.js'

const SEEDS = Array.from({length: envCount('TEKTREE_CHAOS_SEEDS', 20)}, (_, i) => 31 + i)
const EVENTS = envCount('TEKTREE_CHAOS_SEEDS_EVENTS', 1_500)

const totals = {runs: 0, failed: [] as number[], poison: 0, duplicates: 0, reordered: 0, transient: 0, permanent: 0, crashes: 0, events: 0, checked: 0, differences: 0, dlqUnexpected: 0, dlqMissing: 0, started: Date.now()}

describe(`chaos over ${SEEDS.length} seeds, then verify and the DLQ`, () => {
  afterAll(() => {
    if (totals.runs === 0) return
    const checks: ScenarioResult['checks'] = {
      checked: totals.checked,
      differences: totals.differences,
      differing: {},
      sample: [],
      unexpectedDeadLetters: [],
      missingDeadLetters: totals.dlqMissing,
      missingDeadLetterGroups: [],
      expectedDeadLetters: totals.permanent + totals.poison,
      stuck: [],
      outbox: 0,
      drained: true,
      ok: totals.failed.length === 0,
    }
    recordResult({
      file: 'test/chaos/chaos-seeds.test.ts',
      scenario: `in-process chaos scenario over ${totals.runs} seeds`,
      seed: SEEDS[0],
      injected: {
        'consumer crashes (abort, no ack)': totals.crashes,
        'poison pills': totals.poison,
        'duplicate deliveries': totals.duplicates,
        'reordered pairs': totals.reordered,
        'transient handler failures': totals.transient,
        'permanent handler failures': totals.permanent,
      },
      events: totals.events,
      checks,
      durationMs: Date.now() - totals.started,
      notes: totals.failed.length > 0 ? [`failed seeds: ${totals.failed.join(', ')}`, `${totals.dlqUnexpected} unexpected dead letters`] : [`seeds ${SEEDS[0]}-${SEEDS.at(-1)}`],
    })
  })

  it.each(SEEDS)('seed %i: zero differences, the DLQ exactly the faults', {timeout: 120_000}, async (seed) => {
    const shipped = applyOverrides(loadScenario('chaos'), {events: EVENTS, rate: 500})
    const scenario = {...shipped, seed, faults: {...shipped.faults, consumerCrashEveryMs: 1_000}}
    const runtime = await openRuntime({inProcess: true, clock: new VirtualClock({speed: scenario.clock.speed}), log: () => undefined})
    let ok = false
    try {
      const report = await runSimulation({scenario, runtime, verify: true, drainTimeoutMs: 60_000})
      const deadLetters = await checkDeadLetters(runtime.store, await loadCatalog(), scenario.faults.permanentFailure, report.faults.poison)
      totals.runs++
      totals.events += report.events.simulated
      totals.poison += report.faults.poison
      totals.duplicates += report.faults.duplicates
      totals.reordered += report.faults.reordered
      totals.transient += report.faults.transientFailures
      totals.permanent += deadLetters.permanent
      totals.crashes += report.faults.consumerCrashes
      totals.checked += report.verify?.checked ?? 0
      totals.differences += report.verify?.differences ?? 0
      totals.dlqUnexpected += deadLetters.unexpected.length
      totals.dlqMissing += deadLetters.missing.length
      expect(report.events.simulated).toBe(EVENTS)
      expect(report.faults.consumerCrashes).toBeGreaterThan(0)
      expect(report.drained).toBe(true)
      expect(report.verify?.sample ?? []).toEqual([])
      expect(report.verify).toMatchObject({differences: 0})
      expect(deadLetters.unexpected).toEqual([])
      expect(deadLetters.missing).toEqual([])
      expect(deadLetters.pills).toBe(report.faults.poison)
      ok = true
    } finally {
      if (!ok) totals.failed.push(seed)
      await runtime.close()
    }
  })
})
