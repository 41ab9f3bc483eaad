/**
 * kill -9, many times, at random points of the consumers' batches: every TekTree service runs in a
 * child process on a real redis-server and the SQLite store (test/support/chaos/harness.ts) while
 * the simulator publishes and poison pills arrive; the child is SIGKILLed after a random delay, a
 * new one takes over (the dead one's partitions and pending entries move after the short lease),
 * again and again; a last child drains everything. Then the checks: not one projection differs
 * from the event log, the DLQ holds exactly the poison, nothing is stuck.
 * A small population makes the profiles hot (hundreds of writes each), past the 256-id
 * per-document guard: only the unit of work (effects, derived events and ledger mark in one
 * commit) keeps a redelivery after a kill from applying twice, and the new owner of a dead
 * consumer's partition takes its pending entries before any newer one (order-dependent
 * projections such as a user's tier depend on it).
 *
 * CI: 10 kills over 6,000 events. `npm run chaos`: TEKTREE_CHAOS_ROUNDS kills, TEKTREE_CHAOS_EVENTS.
 */
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {type ChaosSystem, describeCheck, eventCount, openChaosSystem, recordResult, rounds, sleep} from '../support/chaos/harness.js'

const available = inject('redisUrl') !== null
const KILLS = rounds(10)
const EVENTS = eventCount(6_000)
// Every kill counts as a delivery of what the dead process held, and a new process claims the dead
// one's pending entries at once: an entry held through many kills in a row spends its attempts and
// is dead-lettered (DELIVERY_ATTEMPTS_EXHAUSTED, as designed for an event that kills its consumer).
// The kills are the test's, not the events': a budget past the number of kills.
const budget = {CHILD_RETRY_DELAYS_MS: Array.from({length: KILLS + 5}, () => 0).join(',')}

describe.skipIf(!available)(`kill -9 of the services, then verify (${available ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  let system: ChaosSystem
  beforeAll(async () => {
    system = await openChaosSystem('kill9')
  })
  afterAll(async () => {
    await system?.close()
  })

  it(`${KILLS} kills mid-batch leave zero differences`, {timeout: 120_000 + KILLS * 20_000}, async () => {
    const started = Date.now()
    // given traffic from the simulator (no services in this process) on a small, hot population,
    // at a rate that lasts as long as the kills
    const rate = Math.max(50, Math.min(400, Math.round(EVENTS / (KILLS * 2.4))))
    const load = system.startLoad({events: EVENTS, rate})
    // when the services' process is killed -9 again and again at random points of its work
    let killedBusy = 0
    for (let kill = 0; kill < KILLS; kill++) {
      const services = system.startServicesChild({env: budget})
      await services.ready
      await system.poison(1)
      await sleep(300 + system.random.int(1_200))
      if ((await system.backlog()) > 0) killedBusy++
      await services.kill9()
    }
    // then a last process takes over until the simulation ends and drains everything (the dead
    // ones' pending entries come back to it)
    const last = system.startServicesChild({env: budget})
    await last.ready
    const report = await load
    expect(report.events.simulated).toBe(EVENTS)
    const drained = await system.drain(180_000)
    await last.stop()
    // and the checks hold: verify 0 differences, the DLQ exactly the poison, nothing stuck
    const check = await system.check({drained})
    recordResult({
      file: 'test/chaos/kill9.int.test.ts',scenario: 'kill -9 of the services (consumers)', seed: system.seed, injected: {'kill -9 of the services process': KILLS, 'poison pills': KILLS}, events: EVENTS, checks: check, durationMs: Date.now() - started, notes: [`${killedBusy} of ${KILLS} kills hit the services with work pending`]})
    expect(check.ok, describeCheck(check)).toBe(true)
    expect(check.checked).toBeGreaterThan(1_000)
    expect(killedBusy, 'kills that hit the services with work pending').toBeGreaterThan(KILLS / 2)
  })
})
