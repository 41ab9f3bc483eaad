/**
 * 100,000 mixed simulated events through every TekTree service on the in-process engine, with 10%
 * of the bus messages delivered a second time, then the oracle: not one projection may differ.
 */
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {runSimulation} from '../../src/simulator/run.js'
import {parseScenario} from '../../src/simulator/scenario.js'

describe('redelivered duplicates under load', () => {
  it('100k mixed events with 10% duplicate deliveries: verify finds zero differences', {timeout: 900_000}, async () => {
    const runtime = await openRuntime({inProcess: true, log: () => undefined})
    try {
      const scenario = parseScenario(
        {
          name: 'redelivery-100k',
          seed: 11,
          population: {users: 2000, areas: 20},
          rate: {shape: 'step', stages: [{duration: '60s', target: 20_000}]},
          events: 100_000,
          faults: {duplicate_pct: 10},
          clock: {speed: 1},
          services: 'all',
        },
        'redelivery-100k',
      )
      const report = await runSimulation({scenario, runtime, verify: true, drainTimeoutMs: 300_000})
      expect(report.events.simulated).toBe(100_000)
      expect(report.faults.duplicates).toBeGreaterThanOrEqual(9_000)
      expect(report.drained).toBe(true)
      expect(report.deliveries.deadLettered).toBe(0)
      expect(report.verify, `differences: ${JSON.stringify(report.verify?.sample)}`).toMatchObject({differences: 0})
      expect(report.verify!.checked).toBeGreaterThan(10_000)
    } finally {
      await runtime.close()
    }
  })
})
