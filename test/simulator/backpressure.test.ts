/**
 * Backpressure on the in-process engine: a run asked for more than its services carry holds the
 * generator back at a (small) backlog bound instead of burying the services, ends when planned,
 * and says how much of the plan it did not generate. Counts only, never timings.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, describe, expect, it} from 'vitest'
import {VirtualClock} from '../../src/core/clock.js'
import {openRuntime} from '../../src/adapters/open.js'
import type {Runtime} from '../../src/core/runtime.js'
import {runSimulation, type SimulationProgress} from '../../src/simulator/run.js'
import {JOURNEY_STEPS, parseScenario, type JourneyStep} from '../../src/simulator/scenario.js'
import type {SimService} from '../../src/simulator/services-bridge.js'

const USER_TYPES = ['user.registered', 'user.authenticated', 'user.email.verified', 'user.profile.updated']
const userOnly = {...Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 0])), register: 2, authenticate: 3, verify_email: 1, update_profile: 1} as Record<JourneyStep, number>

const runtimes: Runtime[] = []
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

/** A service that handles one event at a time, with a pause each: far slower than the plan. */
function slowService(runtime: Runtime, pauseMs: number) {
  const name = `slow_${randomUUID().slice(0, 8)}`
  let queue = Promise.resolve()
  const service: SimService = {
    name,
    consumes: USER_TYPES,
    handle(event) {
      const turn = queue.then(async () => {
        await new Promise((resolve) => setTimeout(resolve, pauseMs))
        await runtime.store.projections.applyOnce(name, 'total', event.event_id, {$inc: {n: 1}})
      })
      queue = turn.catch(() => undefined)
      return turn
    },
  }
  const effects = async () => Number((await runtime.store.projections.get(name, 'total'))?.n ?? 0)
  return {service, effects}
}

describe('backpressure', () => {
  it('holds the generator at the backlog bound: the services keep working, the run ends as planned and says what it did not generate', {timeout: 60_000}, async () => {
    const runtime = await openRuntime({inProcess: true, clock: new VirtualClock({speed: 3600})})
    runtimes.push(runtime)
    const {service, effects} = slowService(runtime, 5)
    const scenario = parseScenario(
      {name: 'overload', seed: 3, population: {users: 200, areas: 2}, journeys: userOnly, rate: {shape: 'step', stages: [{duration: '4s', target: 1000}]}, clock: {speed: 3600}},
      'overload.yaml',
    )
    const progress: SimulationProgress[] = []
    const report = await runSimulation({scenario, runtime, services: [service], maxBacklog: 300, sampleEveryMs: 100}, {onProgress: (p) => progress.push(p)})

    expect(report.rate.maxBacklog).toBe(300)
    expect(report.rate.heldBackMs).toBeGreaterThan(0)
    expect(report.rate.fellBehind).toBe(true)
    // Every event of the plan was either generated or reported as not generated.
    expect(report.events.simulated + report.rate.notGenerated).toBe(4000)
    expect(report.rate.notGenerated).toBeGreaterThan(0)
    // Without the bound the backlog would have reached thousands; held back, it stays near it.
    expect(report.maxBacklog).toBeLessThan(300 + 500 + 100)
    // The services made progress while load was generated, and caught up in the drain.
    expect(progress.some((p) => p.phase === 'generating' && p.processed > 0)).toBe(true)
    expect(progress.some((p) => p.heldBack)).toBe(true)
    expect(report.drained).toBe(true)
    expect(await effects()).toBe(report.events.simulated)
  })

  it('a bound of 0 never holds the generator back', {timeout: 60_000}, async () => {
    const runtime = await openRuntime({inProcess: true, clock: new VirtualClock({speed: 3600})})
    runtimes.push(runtime)
    const {service} = slowService(runtime, 2)
    const scenario = parseScenario(
      {name: 'unbounded', seed: 4, population: {users: 100, areas: 2}, journeys: userOnly, rate: {shape: 'step', stages: [{duration: '1s', target: 1000}]}, clock: {speed: 3600}},
      'unbounded.yaml',
    )
    const report = await runSimulation({scenario, runtime, services: [service], maxBacklog: 0, drainTimeoutMs: 200})
    expect(report.rate.heldBackMs).toBe(0)
    expect(report.events.simulated + report.rate.notGenerated).toBe(1000)
    expect(report.maxBacklog).toBeGreaterThan(300)
  })
})
