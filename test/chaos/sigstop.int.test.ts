/**
 * SIGSTOP of a consumer process past its lease and visibility timeout, while a second process of
 * the same groups runs: the second takes the stopped one's partitions and claims its pending
 * entries; then SIGCONT, and the stopped one wakes up in the middle of whatever it was doing (a
 * handler, a commit, a read it thinks it still owns). It must not apply an effect a second time
 * nor apply one aggregate's events out of order (the window issue 12 item 3 suspects: "a
 * subscription's cancellation was applied before its earlier upgrade across processes").
 *
 * Both processes run every service (test/support/services-child.ts: lease and visibility timeout
 * 1 s). The stop lasts 2.5-4 s; the victim alternates. Then the checks: verify 0 differences, the
 * DLQ exactly the poison, nothing stuck.
 *
 * CI: 5 stops over 4,000 events. `npm run chaos`: TEKTREE_CHAOS_ROUNDS stops, TEKTREE_CHAOS_EVENTS.
 */
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {type ChaosSystem, describeCheck, eventCount, openChaosSystem, recordResult, rounds, sleep, staleReads} from '../support/chaos/harness.js'

const available = inject('redisUrl') !== null
const STOPS = rounds(5)
const EVENTS = eventCount(4_000)

describe.skipIf(!available)(`SIGSTOP of a consumer past its visibility timeout (${available ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  let system: ChaosSystem
  beforeAll(async () => {
    system = await openChaosSystem('sigstop')
  })
  afterAll(async () => {
    await system?.close()
  })

  it(`${STOPS} stops and resumes leave zero differences`, {timeout: 120_000 + STOPS * 15_000}, async () => {
    const started = Date.now()
    // given two processes running every service, and traffic on a small, hot population
    const processes = [system.startServicesChild({name: 'a'}), system.startServicesChild({name: 'b'})]
    await Promise.all(processes.map((p) => p.ready))
    const rate = Math.max(50, Math.min(400, Math.round(EVENTS / (STOPS * 6))))
    const load = system.startLoad({events: EVENTS, rate})
    const timeline: string[] = []
    let stoppedBusy = 0
    // when one of them is frozen (SIGSTOP) past its lease and visibility timeout, the other takes
    // over its partitions and pending entries, and the frozen one is then woken (SIGCONT)
    for (let round = 0; round < STOPS; round++) {
      await sleep(800 + system.random.int(1_200))
      await system.poison(1)
      const victim = processes[round % 2]
      if ((await system.backlog()) > 0) stoppedBusy++
      victim.signal('SIGSTOP')
      const frozenMs = 2_500 + system.random.int(1_500)
      timeline.push(`${Date.now() - started} ms: SIGSTOP ${round % 2 ? 'b' : 'a'} (pid ${victim.pid}) for ${frozenMs} ms`)
      await sleep(frozenMs)
      victim.signal('SIGCONT')
    }
    const report = await load
    expect(report.events.simulated).toBe(EVENTS)
    const drained = await system.drain(120_000)
    await Promise.all(processes.map((p) => p.stop()))
    // then nothing was applied twice or out of order, the DLQ holds the poison, nothing is stuck
    const check = await system.check({drained})
    recordResult({
      file: 'test/chaos/sigstop.int.test.ts',
      scenario: 'SIGSTOP of a consumer past its visibility timeout',
      seed: system.seed,
      injected: {'SIGSTOP 2.5-4 s, then SIGCONT': STOPS, 'poison pills': STOPS},
      events: EVENTS,
      checks: check,
      durationMs: Date.now() - started,
      notes: [`${stoppedBusy} of ${STOPS} stops hit a process with work pending`, `${staleReads(processes)} commits refused as stale reads, handled again`],
    })
    expect(check.ok, `${describeCheck(check)}\n${timeline.join('\n')}`).toBe(true)
    expect(stoppedBusy, 'stops that hit the services with work pending').toBeGreaterThan(STOPS / 2)
  })
})
