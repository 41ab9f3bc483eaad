/**
 * The simulator end to end on the in-process engine: determinism, rate, and every fault kind
 * reaching its effect. A small test service (not the TekTree ones) makes effects countable.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, describe, expect, it} from 'vitest'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {openRuntime} from '../../src/adapters/open.js'
import {VirtualClock} from '../../src/core/clock.js'
import type {Runtime} from '../../src/core/runtime.js'
import {runSimulation} from '../../src/simulator/run.js'
import {assertionValues} from '../../src/simulator/report.js'
import {JOURNEY_STEPS, parseScenario, type JourneyStep, type Scenario} from '../../src/simulator/scenario.js'
import type {SimService} from '../../src/simulator/services-bridge.js'

const USER_TYPES = ['user.registered', 'user.authenticated', 'user.email.verified', 'user.profile.updated']
const userOnly = {...Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 0])), register: 2, authenticate: 3, verify_email: 1, update_profile: 1} as Record<JourneyStep, number>

function scenario(extra: Record<string, unknown> = {}): Scenario {
  return parseScenario(
    {
      name: 'test',
      seed: 5,
      population: {users: 100, areas: 2},
      journeys: userOnly,
      rate: {shape: 'step', stages: [{duration: '5s', target: 2000}]},
      events: 400,
      clock: {speed: 3600},
      ...extra,
    },
    'test.yaml',
  )
}

const runtimes: Runtime[] = []
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

async function inProcess(): Promise<Runtime> {
  // Retries wait 0 s / 10 s / 60 s: an hour per second makes them pass at once. The virtual day
  // starts at midnight so that runs compared by content (user.authenticated carries the day) fall on
  // one day: started from the wall clock at 23:16 UTC, two runs straddled midnight in CI.
  const runtime = await openRuntime({inProcess: true, clock: new VirtualClock({speed: 3600, start: Date.UTC(2026, 0, 5)})})
  runtimes.push(runtime)
  return runtime
}

/** Counts each event's effect once (applyOnce) and every call, so duplicates and redelivery show. */
function countingService(runtime: Runtime, name = `svc_${randomUUID().slice(0, 8)}`, delayMs = 0) {
  const calls = new Map<string, number>()
  const service: SimService = {
    name,
    consumes: USER_TYPES,
    async handle(event: EventEnvelope) {
      calls.set(event.event_id, (calls.get(event.event_id) ?? 0) + 1)
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
      await runtime.store.projections.applyOnce(name, 'total', event.event_id, {$inc: {n: 1}})
    },
  }
  const effects = async () => Number((await runtime.store.projections.get(name, 'total'))?.n ?? 0)
  return {service, calls, effects}
}

async function storedEvents(runtime: Runtime): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = []
  for await (const e of runtime.store.events.query({})) out.push(e)
  return out
}

describe('runSimulation on the in-process engine', () => {
  it('same seed and run id -> same events (apart from timestamps)', async () => {
    const strip = (events: EventEnvelope[]) => events.map(({timestamp: _t, producer_id: _p, ...rest}) => rest)
    const a = await inProcess()
    const b = await inProcess()
    const seeded = scenario({journeys: undefined, population: {users: 50, areas: 3}})
    await runSimulation({scenario: seeded, runtime: a, services: [], runId: 'run-a'})
    await runSimulation({scenario: seeded, runtime: b, services: [], runId: 'run-a'})
    const ea = await storedEvents(a)
    expect(ea).toHaveLength(400)
    expect(strip(await storedEvents(b))).toEqual(strip(ea))
  })

  it('a second run of the same seed into the same store adds its events: same content, new ids', async () => {
    const content = (events: EventEnvelope[]) => events.map((e) => ({type: e.event_type, payload: e.payload, correlation: e.correlation_id}))
    const runtime = await inProcess()
    const seeded = scenario({journeys: undefined, population: {users: 50, areas: 3}})
    const first = await runSimulation({scenario: seeded, runtime, services: []})
    const second = await runSimulation({scenario: seeded, runtime, services: []})
    expect(second.runId).not.toBe(first.runId)
    expect(second.events.simulated).toBe(400)
    expect(second.events.duplicatesRefused).toBe(0)
    const stored = await storedEvents(runtime)
    expect(stored).toHaveLength(800)
    expect(new Set(stored.map((e) => e.event_id)).size).toBe(800)
    expect(content(stored.slice(400))).toEqual(content(stored.slice(0, 400)))
  })

  it('publishes through store -> outbox -> bus and drains', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const report = await runSimulation({scenario: scenario(), runtime, services: [service]})
    expect(report.events.simulated).toBe(400)
    expect(report.drained).toBe(true)
    expect(await runtime.store.outbox.pending()).toBe(0)
    expect(await effects()).toBe(400)
    expect(report.latency.publish.count).toBeGreaterThan(0)
    expect(report.servicesFellBehind).toBe(false)
  })

  it('a warm-up keeps its latencies out of those reported and asserted, and the whole run\'s stay beside them', async () => {
    const runtime = await inProcess()
    const {service} = countingService(runtime)
    const warm = scenario({events: undefined, rate: {shape: 'step', stages: [{duration: '1500ms', target: 200}]}, warmup: '700ms'})
    const report = await runSimulation({scenario: warm, runtime, services: [service]})
    expect(report.latency.warmupMs).toBe(700)
    const whole = report.latency.wholeRun!
    // the run went on past the warm-up: the publishes after it alone are measured
    expect(report.latency.publish.count).toBeGreaterThan(0)
    expect(report.latency.publish.count).toBeLessThan(whole.publish.count)
    expect(report.latency.delivery.count).toBeLessThan(whole.delivery.count)
    expect(assertionValues(report).publish_p95).toBe(report.latency.publish.p95)
    // a run that ends inside its warm-up says so, and gives the whole run's figures
    const cut = await runSimulation({scenario: scenario({events: 50, warmup: '1h'}), runtime, services: [service]})
    expect(cut.latency).toMatchObject({warmupMs: 0, warmupNotOver: 3_600_000})
    expect(cut.latency.wholeRun).toBeUndefined()
    expect(cut.latency.publish.count).toBeGreaterThan(0)
  })

  it('services that cannot keep up are reported as falling behind, though the generator kept its rate', {timeout: 60_000}, async () => {
    const runtime = await inProcess()
    // A service stalled until just after generation ends: its backlog grows with every event sent.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const timer = setTimeout(() => release(), 6_500)
    const stalled: SimService = {name: `stalled_${randomUUID().slice(0, 8)}`, consumes: USER_TYPES, handle: () => gate}
    try {
      const report = await runSimulation({
        scenario: scenario({rate: {shape: 'step', stages: [{duration: '6s', target: 500}]}, events: 3000}),
        runtime,
        services: [stalled],
        drainTimeoutMs: 500,
      })
      expect(report.rate.fellBehind).toBe(false)
      expect(report.servicesFellBehind).toBe(true)
      expect(report.maxBacklog).toBeGreaterThan(1000)
    } finally {
      clearTimeout(timer)
      release()
    }
  })

  it('poison -> DLQ without retries', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const report = await runSimulation({scenario: scenario({faults: {poison_pct: 5}}), runtime, services: [service]})
    expect(report.faults.poison).toBeGreaterThan(5) // ~5% of 400
    const records = await runtime.store.dlq.list({group: service.name, limit: 1000})
    expect(records).toHaveLength(report.faults.poison)
    expect(records.every((r) => r.attempts === 1)).toBe(true)
    expect(await effects()).toBe(400)
  })

  it('transient handler failure -> retries, then success (no DLQ)', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const report = await runSimulation({scenario: scenario({faults: {handler_failure: {[service.name]: 0.2}}}), runtime, services: [service]})
    expect(report.faults.transientFailures).toBeGreaterThan(40)
    expect(report.retries).toBeGreaterThanOrEqual(report.faults.transientFailures)
    expect(report.dlq).toBe(0)
    expect(await effects()).toBe(400)
  })

  it('permanent handler failure -> DLQ', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const report = await runSimulation({scenario: scenario({faults: {permanent_failure: {[service.name]: 0.05}}}), runtime, services: [service]})
    expect(report.dlq).toBeGreaterThan(5)
    expect(report.drained).toBe(true)
    expect((await effects()) + report.dlq).toBe(400)
  })

  it('duplicate deliveries -> no double effect', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const report = await runSimulation({scenario: scenario({faults: {duplicate_pct: 10}}), runtime, services: [service]})
    expect(report.faults.duplicates).toBeGreaterThan(20)
    expect(await effects()).toBe(400)
  })

  it('consumer crash -> redelivery, every event still takes effect once', async () => {
    const runtime = await inProcess()
    const {service, calls, effects} = countingService(runtime, undefined, 2)
    const report = await runSimulation(
      {
        scenario: scenario({rate: {shape: 'step', stages: [{duration: '3s', target: 300}]}, events: 600, faults: {consumer_crash_every: '400ms'}}),
        runtime,
        services: [service],
        visibilityTimeoutMs: 300,
      },
    )
    expect(report.faults.consumerCrashes).toBeGreaterThan(1)
    expect(report.drained).toBe(true)
    expect(await effects()).toBe(600)
    expect(calls.size).toBe(600)
  })

  it('reordering never reorders one aggregate', async () => {
    const runtime = await inProcess()
    const report = await runSimulation({scenario: scenario({faults: {reorder_pct: 30}}), runtime, services: []})
    expect(report.faults.reordered).toBeGreaterThan(10)
    const events = await storedEvents(runtime)
    const registeredAt = new Map<string, number>()
    events.forEach((e, i) => {
      const user = e.payload.user_id as string
      if (e.event_type === 'user.registered') registeredAt.set(user, i)
      else expect(registeredAt.get(user), `${e.event_type} before user.registered`).toBeLessThan(i)
    })
  })

  it('an aborted signal (Ctrl+C) stops generation, drains briefly and still reports', async () => {
    const runtime = await inProcess()
    const {service, effects} = countingService(runtime)
    const controller = new AbortController()
    const progress: string[] = []
    setTimeout(() => controller.abort(), 400)
    const report = await runSimulation(
      {scenario: scenario({rate: {shape: 'step', stages: [{duration: '60s', target: 200}]}, events: undefined}), runtime, services: [service], sampleEveryMs: 100},
      {signal: controller.signal, onProgress: (p) => progress.push(p.phase)},
    )
    expect(report.interrupted).toBe(true)
    expect(report.events.simulated).toBeGreaterThan(0)
    expect(report.events.simulated).toBeLessThan(12_000)
    expect(report.drained).toBe(true)
    expect(await effects()).toBe(report.events.simulated)
    expect(progress).toContain('generating')
  })
})

describe('simulate: metrics endpoint', () => {
  it('serves the run\'s metrics to Prometheus while it lasts, and closes the endpoint after', async () => {
    const runtime = await inProcess()
    const {service} = countingService(runtime)
    let endpoint = ''
    const report = await runSimulation(
      {scenario: scenario({events: 200}), runtime, services: [service], metricsPort: 0},
      {onMetricsEndpoint: (url) => (endpoint = url)},
    )
    expect(report.events.simulated).toBe(200)
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    // the endpoint belonged to the run: it is gone once runSimulation returns
    await expect(fetch(endpoint)).rejects.toThrow()
  })

  it('the endpoint answers during the run with the published counter', async () => {
    const runtime = await inProcess()
    const {service} = countingService(runtime)
    let body: Promise<string> | undefined
    await runSimulation(
      {scenario: scenario({events: 300}), runtime, services: [service], metricsPort: 0},
      {onMetricsEndpoint: (url) => (body = new Promise((r) => setTimeout(r, 0)).then(() => fetch(url)).then((r) => r.text()))},
    )
    const text = await body!
    expect(text).toContain('# TYPE tektree_event_published_total counter')
  })
})
