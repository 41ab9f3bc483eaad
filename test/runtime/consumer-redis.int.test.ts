/**
 * The consumer runner on the real Redis bus (RedisBus on the integration tier's redis-server): the
 * same runner code as the in-process tests, so only what the transport changes is re-checked here.
 * Each test has its own key prefix (deleted afterwards); the store stays in-process and the clock
 * virtual, so retry delays cost nothing.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {deleteTestKeys} from '../support/redis-server.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {createRedisBus, type RedisBus} from '../../src/adapters/redis/bus.js'
import {advanceWhenParked, createHarness, serviceName, until, type Harness} from './consumer-harness.js'

const redisUrl = inject('redisUrl')

describe.skipIf(!redisUrl)(`consumer runner on Redis (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  let h: Harness | undefined
  let prefix = ''

  async function setup(): Promise<Harness> {
    prefix = `t-${randomUUID().slice(0, 8)}`
    const bus: RedisBus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
    h = await createHarness({wrapBus: () => bus})
    return h
  }

  afterEach(async () => {
    await h?.close()
    h = undefined
    await deleteTestKeys(redisUrl!, prefix)
  })

  /** `n` events of one user (one aggregate: one lane, one partition), on the bus. */
  const sentForOneUser = async (h: Harness, n: number) => {
    const user = randomUUID()
    const events = Array.from({length: n}, () => h.event('user.registered', {key: user}))
    await h.send(events)
    return events
  }

  const pendingOf = async (group: string) => (await h!.bus.stats({group})).reduce((n, s) => n + s.pending + s.lag, 0)

  it('two unparseable messages with the same entry id in two partitions are two DLQ entries, not one', async () => {
    const h = await setup()
    const group = serviceName()
    h.start({name: group, consumes: ['user.registered'], async handle() {}})
    await until(async () => expect((await h.bus.stats({group})).length).toBeGreaterThan(0))
    // Entry ids are per stream: two partitions can each hold 1700000000000-0 (same millisecond).
    const bus = h.bus as RedisBus
    const topic = h.catalog.get('user.registered')!.topic
    for (const partition of [0, 1]) {
      await bus.client.call('XADD', bus.streamKey(topic, partition), '1700000000000-0', 'k', `poison-${partition}`, 'v', `not json ${partition}`, 'h', JSON.stringify({event_type: 'user.registered'}))
    }
    await until(async () => expect((await h.store.dlq.list({group})).map((r) => r.raw).sort()).toEqual(['not json 0', 'not json 1']), 10_000)
  })

  it('handles and acks an event (happy path)', async () => {
    const h = await setup()
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const seen: EventEnvelope[] = []
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(e, ctx) {
        seen.push(e)
        await ctx.store.projections.applyOnce('users', e.payload.user_id as string, e.event_id, {$set: {username: e.payload.username}})
      },
    })
    await until(() => expect(handle.stats().acked).toBe(1), 15_000)
    expect(seen).toEqual([event])
    await until(async () => expect(await pendingOf(group)).toBe(0), 15_000)
    expect(h.metrics.snapshot().acked[group]).toEqual({'user.registered': 1})
  })

  it('retries a failing handler then dead-letters it after 4 attempts; poison goes straight to the DLQ', async () => {
    const h = await setup()
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    await h.sendRaw('tektree.user', '{"truncated": ', {event_type: 'user.registered'})
    const attempts: number[] = []
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(_e, ctx) {
        attempts.push(ctx.attempt)
        throw new Error('always down')
      },
    })
    await advanceWhenParked(h.clock, 10_000)
    await advanceWhenParked(h.clock, 60_000)
    await until(() => expect(handle.stats().deadLettered).toBe(2), 15_000)
    expect(attempts).toEqual([1, 2, 3, 4])
    const record = (await h.store.dlq.get(`${group}:${event.event_id}`))!
    expect(record).toMatchObject({attempts: 4, envelope: event, raw: JSON.stringify(event)})
    expect(record.error.error.code).toBe('HANDLER_FAILED')
    const codes = (await h.store.dlq.list({group})).map((r) => r.error.error.code).sort()
    expect(codes).toEqual(['HANDLER_FAILED', 'INVALID_JSON'])
    await until(async () => expect(await pendingOf(group)).toBe(0), 15_000)
  })

  it('two consumers share a group: the work is split and each event handled exactly once', async () => {
    const h = await setup()
    const group = serviceName()
    const handledBy = new Map<string, string[]>()
    const service = (who: string) => ({
      name: group,
      consumes: ['knowledge.question.posted'],
      async handle(e: EventEnvelope) {
        handledBy.set(e.event_id, [...(handledBy.get(e.event_id) ?? []), who])
      },
    })
    const c1 = h.start(service('c1'))
    const c2 = h.start(service('c2'))
    await until(() => expect(h.events.filter((e) => e.type === 'subscribed')).toHaveLength(2), 15_000)
    // Ownership settles on heartbeats: publish in rounds until both consumers have had work.
    const sent: EventEnvelope[] = []
    const who = () => new Set([...handledBy.values()].flat())
    for (let round = 0; round < 40 && who().size < 2; round++) {
      const batch = Array.from({length: 25}, () => h.event('knowledge.question.posted'))
      sent.push(...batch)
      await h.send(batch)
      await until(() => expect(c1.stats().handled + c2.stats().handled).toBe(sent.length), 15_000)
    }
    expect(who()).toEqual(new Set(['c1', 'c2']))
    expect([...handledBy.keys()].sort()).toEqual(sent.map((e) => e.event_id).sort())
    for (const consumers of handledBy.values()) expect(consumers).toHaveLength(1)
    await until(async () => expect(await pendingOf(group)).toBe(0), 15_000)
  })

  it('after a crash, another consumer takes the unacked deliveries over and the effects happen once', async () => {
    const h = await setup()
    const group = serviceName()
    const events = Array.from({length: 8}, () => h.event('user.registered'))
    await h.send(events)
    const crash = new AbortController()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    // given handlers that write their effect, then hang (the process is about to die)
    let started = 0
    const c1 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e, ctx) {
          await ctx.store.projections.applyOnce('registrations', 'all', e.event_id, {$inc: {n: 1}})
          started++
          await gate
        },
      },
      {signal: crash.signal, visibilityTimeoutMs: 300},
    )
    await until(() => expect(started).toBe(8), 15_000)
    // nothing is committed before the handlers complete
    expect(await h.store.projections.get('registrations', 'all')).toBeNull()
    crash.abort()
    await c1.done
    release()
    expect(c1.stats().acked).toBe(0)
    const calls: string[] = []
    const c2 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e, ctx) {
          calls.push(e.event_id)
          await ctx.store.projections.applyOnce('registrations', 'all', e.event_id, {$inc: {n: 1}})
        },
      },
      {visibilityTimeoutMs: 300},
    )
    await until(() => expect(c2.stats().acked).toBe(8), 20_000)
    expect(calls.sort()).toEqual(events.map((e) => e.event_id).sort())
    expect((await h.store.projections.get('registrations', 'all'))?.n).toBe(8)
    await until(async () => expect(await pendingOf(group)).toBe(0), 15_000)
  })

  it('a crash that leaves more than a batch pending spends no attempts of the default budget at the next consumer', async () => {
    // Finding 11 of RELIABILITY.md: the new owner claimed the same taken-over entries again on each
    // fetch while its handlers worked, Redis counted every claim as a delivery, and ordinary events
    // reached the DLQ as DELIVERY_ATTEMPTS_EXHAUSTED after a crash or two.
    const h = await setup()
    const group = serviceName()
    await sentForOneUser(h, 40)
    const crash = new AbortController()
    const c1 = h.start({name: group, consumes: ['user.registered'], handle: () => new Promise(() => {})}, {signal: crash.signal, batchSize: 40})
    await until(() => expect(c1.stats().received).toBe(40), 15_000)
    crash.abort()
    await c1.done
    // one lane (one aggregate), slow handlers, small batches: the runner fetches many times meanwhile
    const c2 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e, ctx) {
          await new Promise((resolve) => setTimeout(resolve, 10))
          await ctx.store.projections.applyOnce('registrations', 'all', e.event_id, {$inc: {n: 1}})
        },
      },
      {batchSize: 4},
    )
    await until(() => expect(c2.stats().acked + c2.stats().deadLettered).toBe(40), 30_000)
    expect(await h.store.dlq.list({group})).toEqual([])
    expect((await h.store.projections.get('registrations', 'all'))?.n).toBe(40)
  })

  it('deliveries parked for a retry longer than the visibility timeout are not counted again, so a crash then spends no attempts', async () => {
    // A retry waits 10 s, then 60 s (seed 000), past the 30 s visibility timeout; later events of
    // the aggregate wait behind it. Claimed again by their own consumer on every claim while they
    // waited, they came back after a crash with counts past the budget, and went to the DLQ.
    const h = await setup()
    const group = serviceName()
    const events = await sentForOneUser(h, 3)
    const crash = new AbortController()
    let failures = 0
    const c1 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e) {
          if (e.event_id === events[0]!.event_id) {
            failures++
            throw new Error('transient')
          }
        },
      },
      {signal: crash.signal, visibilityTimeoutMs: 200, retryDelaysMs: [60_000, 60_000, 60_000]},
    )
    // given the first event parked for its retry (the virtual clock never gets there), the others behind it
    await until(() => expect(failures).toBe(1), 15_000)
    await until(() => expect(c1.stats().received).toBe(3), 15_000)
    // when it stays parked for ten visibility timeouts, and then the process dies
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    crash.abort()
    await c1.done
    // then the next consumer (the default budget of 4 attempts) completes all three
    const c2 = h.start({name: group, consumes: ['user.registered'], async handle() {}}, {visibilityTimeoutMs: 200})
    await until(() => expect(c2.stats().acked + c2.stats().deadLettered).toBe(3), 20_000)
    expect(await h.store.dlq.list({group})).toEqual([])
  })
})
