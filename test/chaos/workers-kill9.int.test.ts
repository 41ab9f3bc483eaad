/**
 * kill -9 of the real `tektree services --workers 2` (dist/: build first; npm test does): the whole
 * process, its worker threads with it, at random moments while the simulator publishes, then
 * started again. The product's own settings: a consumer's partitions move after the 10 s session
 * timeout, the new owner claims the dead one's pending entries at once, the retry schedule is
 * 0 s, 10 s, 60 s (every kill counts as a delivery of what the process held). After a drain:
 * verify 0 differences, the DLQ exactly the poison, nothing stuck.
 *
 * A worker thread dying inside a running process (the pool starts it again) is covered by the
 * workers' own tests (test/services); a signal cannot reach one thread from outside.
 *
 * CI: 2 kills over 2,500 events. `npm run chaos`: TEKTREE_CHAOS_ROUNDS, TEKTREE_CHAOS_EVENTS.
 */
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {type ChaosSystem, describeCheck, eventCount, openChaosSystem, recordResult, rounds, sleep} from '../support/chaos/harness.js'

const available = inject('redisUrl') !== null
const KILLS = rounds(2)
const EVENTS = eventCount(2_500)

describe.skipIf(!available)(`kill -9 of \`tektree services --workers 2\` (${available ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  let system: ChaosSystem
  beforeAll(async () => {
    system = await openChaosSystem('workers-kill9')
  })
  afterAll(async () => {
    await system?.close()
  })

  it(`${KILLS} kills of the whole process leave zero differences`, {timeout: 150_000 + KILLS * 30_000}, async () => {
    const started = Date.now()
    // given traffic, and the real command with two worker threads
    const rate = Math.max(50, Math.min(300, Math.round(EVENTS / (KILLS * 8 + 4))))
    const load = system.startLoad({events: EVENTS, rate})
    let killedBusy = 0
    // when the whole process is killed -9 at random moments and started again
    for (let kill = 0; kill < KILLS; kill++) {
      const services = system.startServicesCommand(['--workers', '2'])
      await services.ready
      await system.poison(1)
      await sleep(2_000 + system.random.int(4_000))
      if ((await system.backlog()) > 0) killedBusy++
      await services.kill9()
    }
    const last = system.startServicesCommand(['--workers', '2'])
    await last.ready
    const report = await load
    expect(report.events.simulated).toBe(EVENTS)
    const drained = await system.drain(150_000)
    await last.stop()
    const check = await system.check({drained})
    recordResult({
      file: 'test/chaos/workers-kill9.int.test.ts',
      scenario: 'kill -9 of `tektree services --workers 2`',
      seed: system.seed,
      injected: {'kill -9 of the services process (2 worker threads)': KILLS, 'poison pills': KILLS},
      events: EVENTS,
      checks: check,
      durationMs: Date.now() - started,
      notes: [`${killedBusy} of ${KILLS} kills hit the services with work pending`],
    })
    expect(check.ok, `${describeCheck(check)}\n${last.output().slice(-3_000)}`).toBe(true)
    expect(killedBusy, 'kills that hit the services with work pending').toBeGreaterThan(0)
  })
})
