/**
 * The Kafka broker (a single-node KRaft broker of its own: its directory, free ports; not the
 * tier's shared one) killed -9 mid-run and started again on its ports and directory, again and
 * again, while the real `tektree services --bus-url kafka://... --workers 2` consumes and the
 * simulator publishes through the outbox relay. Kafka appends to its log files before it answers
 * (acks=all on one node; the page cache outlives the process), so a process crash loses nothing a
 * client was told: the restart must lose nothing. Meanwhile the relay's publishes fail and are
 * retried, the consumers lose their group coordinator (uncommitted deliveries come again from the
 * last commit, deduplicated by the groups' ledgers) and rejoin after kafkajs's retries, and the
 * leaderboards live in the store (the product's assembly for a kafka:// bus). After a drain:
 * verify 0 differences, the DLQ exactly the poison, nothing stuck (lag and pending 0 per group
 * from the committed offsets, the outbox empty).
 *
 * CI: 2 crashes over 2,500 events. `npm run chaos`: TEKTREE_CHAOS_ROUNDS, TEKTREE_CHAOS_EVENTS.
 */
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {describeCheck, eventCount, type KafkaChaosSystem, openChaosSystem, recordResult, rounds, sleep} from '../support/chaos/harness.js'

const unavailable = inject('kafkaUnavailable')
const CRASHES = rounds(2)
const EVENTS = eventCount(2_500)

describe.skipIf(Boolean(unavailable))(`Kafka broker killed -9 and restarted (${unavailable ? `skipped: ${unavailable}` : 'Kafka (KRaft) + SQLite'})`, () => {
  let system: KafkaChaosSystem
  beforeAll(async () => {
    system = await openChaosSystem('kafka-restart', {bus: 'kafka'})
  }, 90_000)
  afterAll(async () => {
    await system?.close()
  }, 60_000)

  it(`${CRASHES} crashes of the broker lose nothing`, {timeout: 150_000 + CRASHES * 30_000}, async () => {
    const started = Date.now()
    // given the real services command on the broker, and traffic
    const services = system.startServicesCommand(['--workers', '2'])
    await services.ready
    // The load spans the crashes: a restart takes the broker ~4-12 s on 2 busy cores.
    const rate = Math.max(50, Math.min(300, Math.round(EVENTS / (CRASHES * 12))))
    const load = system.startLoad({events: EVENTS, rate})
    const timeline: string[] = []
    let hitBusy = 0
    // when the broker is killed -9 at random moments and started again on its ports and directory
    for (let crash = 0; crash < CRASHES; crash++) {
      // Up to ~10 s after the broker is back the consumers are still rejoining their groups (the
      // session timeout): a crash may come before or after they consume again.
      await sleep(1_500 + system.random.int(8_000))
      await system.poison(1)
      const down = 300 + system.random.int(1_200)
      const backlog = await system.backlog()
      if (backlog > 0) hitBusy++
      timeline.push(`${Date.now() - started} ms: kill -9 of the broker (pid ${system.kafka.pid}), backlog ${backlog}, down ${down} ms`)
      await system.kafka.kill9()
      await sleep(down)
      await system.kafka.restart()
      timeline.push(`${Date.now() - started} ms: broker up again (pid ${system.kafka.pid})`)
    }
    const report = await load
    expect(report.events.simulated).toBe(EVENTS)
    timeline.push(`${Date.now() - started} ms: load done`)
    const drained = await system.drain(150_000)
    timeline.push(`${Date.now() - started} ms: ${drained ? 'drained' : 'not drained'}`)
    await services.stop()
    // then every event was delivered and applied once, the DLQ holds the poison, nothing is stuck
    const check = await system.check({drained})
    const busErrors = services.output().split('\n').filter((line) => line.includes('bus error')).length
    process.stderr.write(`[chaos kafka-restart] ${timeline.join('; ')}\n`)
    recordResult({
      file: 'test/chaos/kafka-restart.int.test.ts',
      scenario: 'Kafka broker kill -9 and restart',
      seed: system.seed,
      injected: {'kill -9 of the Kafka broker, restart on its directory': CRASHES, 'poison pills': CRASHES},
      events: EVENTS,
      checks: check,
      durationMs: Date.now() - started,
      notes: [`the real \`tektree services --workers 2\`; ${hitBusy} of ${CRASHES} crashes hit work pending; ${busErrors} bus errors reported and retried`],
    })
    expect(check.ok, `${describeCheck(check)}\n${timeline.join('\n')}\n${services.output().slice(-3_000)}`).toBe(true)
    expect(hitBusy, 'crashes that hit the pipeline with work pending (outbox, lag or pending)').toBeGreaterThan(0)
  })
})
