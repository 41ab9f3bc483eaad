/**
 * The consumer runner on the in-process engine (memory bus/store/leaderboards) with a frozen
 * VirtualClock: retry delays are observed on virtual time, never waited for.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {startConsumer, type HandlerContext} from '../../src/engine/consumer.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import type {Delivery} from '../../src/core/ports.js'
import {NonRetryableError} from '../../src/core/errors.js'
import {partitionFor} from '../../src/core/partition.js'
import {advanceWhenParked, createHarness, serviceName, until, type Harness} from './consumer-harness.js'

let h: Harness
beforeEach(async () => {
  h = await createHarness()
})
afterEach(async () => {
  await h.close()
})

const pendingOf = async (group: string) => (await h.bus.stats({group})).reduce((n, s) => n + s.pending + s.lag, 0)

describe('consumer runner: the happy path', () => {
  it('hands a consumed event to the handler once and acks it', async () => {
    // given a service consuming user.registered, and one such event on the bus
    const group = serviceName()
    const seen: Array<{event: EventEnvelope; attempt: number}> = []
    const event = h.event('user.registered')
    await h.send([event])
    // when the runner runs
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(e, ctx) {
        seen.push({event: e, attempt: ctx.attempt})
        await ctx.store.projections.applyOnce('users', e.payload.user_id as string, e.event_id, {$set: {username: e.payload.username}})
      },
    })
    await until(() => expect(handle.stats().acked).toBe(1))
    // then the handler saw it once, on attempt 1, and the effect and metrics are there
    expect(seen.map((s) => [s.event.event_id, s.attempt])).toEqual([[event.event_id, 1]])
    expect(await h.store.projections.get('users', event.payload.user_id as string)).toMatchObject({username: event.payload.username})
    expect(await pendingOf(group)).toBe(0)
    const snapshot = h.metrics.snapshot()
    expect(snapshot.delivered[group]).toEqual({'user.registered': 1})
    expect(snapshot.acked[group]).toEqual({'user.registered': 1})
    expect(snapshot.deliveryLatencyMs.count).toBe(1)
    expect(await h.store.dlq.count()).toBe(0)
  })

  it('matches globs and aliases, and acks other types on the same topic without handling them', async () => {
    const group = serviceName()
    const handled: string[] = []
    const liked = h.event('social.content.liked')
    const followed = h.event('social.user.followed')
    const comment = h.event('social.comment.added')
    await h.send([liked, followed, comment])
    const handle = h.start({
      name: group,
      // an alias (knowledge.content.liked) and a glob
      consumes: ['knowledge.content.liked', 'social.comment.*'],
      async handle(e) {
        handled.push(e.event_type)
      },
    })
    await until(() => expect(handle.stats().acked).toBe(3))
    expect(handled.sort()).toEqual(['social.comment.added', 'social.content.liked'])
    expect(handle.stats()).toMatchObject({handled: 2, skipped: 1})
    expect(await pendingOf(group)).toBe(0)
  })

  it('acks a type it does not handle at once, not behind a retry of an event of the same key', async () => {
    const group = serviceName()
    const key = randomUUID()
    // given an event it handles that fails once and waits a minute for its retry, and after it,
    // of the same key, a type the group does not handle
    const liked = h.event('social.content.liked', {key})
    const followed = h.event('social.user.followed', {key})
    await h.send([liked, followed])
    let attempts = 0
    const handle = h.start(
      {
        name: group,
        consumes: ['social.content.liked'],
        async handle() {
          if (++attempts === 1) throw new Error('transient')
        },
      },
      {retryDelaysMs: [60_000]},
    )
    // then the other type is acked while the first waits (it was queued behind the retry, a minute)
    await until(() => expect(handle.stats()).toMatchObject({acked: 1, skipped: 1, parked: 1}))
    expect(attempts).toBe(1)
    expect(await pendingOf(group)).toBe(1)
  })

  it("asks the group's ledger only about the types it handles", async () => {
    const group = serviceName()
    const asked: string[] = []
    const completed = h.store.handled.completed.bind(h.store.handled)
    h.store.handled.completed = async (g, ids) => {
      if (g === group) asked.push(...ids)
      return completed(g, ids)
    }
    const liked = h.event('social.content.liked')
    const followed = h.event('social.user.followed')
    await h.send([liked, followed])
    const handle = h.start({name: group, consumes: ['social.content.liked'], async handle() {}})
    await until(() => expect(handle.stats().acked).toBe(2))
    expect(asked).toEqual([liked.event_id])
    expect(handle.stats()).toMatchObject({handled: 1, skipped: 1})
  })

  it('refuses a service that consumes nothing in the catalog', () => {
    expect(() => h.start({name: serviceName(), consumes: ['no.such.thing'], async handle() {}})).toThrow(/matches no event type/)
  })

  it('accepts the runtime parts flat, as the simulator passes them', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const calls: string[] = []
    const handle = startConsumer(
      {bus: h.bus, store: h.store, leaderboards: h.leaderboards, clock: h.clock, metrics: h.metrics, catalog: h.catalog, validator: h.validator, publisher: h.publisher},
      {name: group, consumes: ['user.registered'], handle: async (e) => void calls.push(e.event_id)},
      {blockMs: 20},
    )
    try {
      await until(() => expect(handle.stats().acked).toBe(1))
      expect(calls).toEqual([event.event_id])
    } finally {
      await handle.stop()
    }
  })
})

describe('consumer runner: duplicates', () => {
  it('handles a duplicate delivery (same event twice on the bus) once', async () => {
    // given the same envelope published twice (at-least-once transport)
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event, event])
    let calls = 0
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(e, ctx) {
        calls++
        await ctx.store.projections.applyOnce('counts', 'all', e.event_id, {$inc: {n: 1}})
      },
    })
    // when both are delivered
    await until(() => expect(handle.stats().acked).toBe(2))
    // then the handler ran once, the second was a counted duplicate, the effect happened once
    expect(calls).toBe(1)
    expect(handle.stats()).toMatchObject({handled: 1, duplicates: 1})
    expect((await h.store.projections.get('counts', 'all'))?.n).toBe(1)
  })

  it('skips an event whose (aggregate, sequence) is at or below what the group applied', async () => {
    const group = serviceName()
    const key = '9b2f4a10-5c1e-4d7a-9f00-000000000001'
    const first = h.event('user.profile.updated', {key, metadata: {sequence: 1}})
    const second = h.event('user.profile.updated', {key, metadata: {sequence: 2}})
    // a re-sent old event under a new id (a producer retry that minted a fresh id)
    const stale = h.event('user.profile.updated', {key, metadata: {sequence: 1}})
    const handled: number[] = []
    const handle = h.start({
      name: group,
      consumes: ['user.profile.updated'],
      async handle(e) {
        handled.push(e.metadata.sequence as number)
      },
    })
    await h.send([first, second])
    await until(() => expect(handle.stats().acked).toBe(2))
    await h.send([stale])
    await until(() => expect(handle.stats().acked).toBe(3))
    expect(handled).toEqual([1, 2])
    expect(handle.stats().duplicates).toBe(1)
    expect((await h.store.projections.get(`seq_${group}`, `user:${key}`))?.sequence).toBe(2)
  })
})

describe('consumer runner: poison pills', () => {
  it('sends unparseable JSON straight to the DLQ, raw bytes kept, no retry', async () => {
    const group = serviceName()
    const raw = '\u0000\u00ff{not json'
    await h.sendRaw('tektree.user', raw, {event_type: 'user.registered'})
    let calls = 0
    const handle = h.start({name: group, consumes: ['user.*'], handle: async () => void calls++})
    await until(() => expect(handle.stats().acked).toBe(1))
    const [record] = await h.store.dlq.list({group})
    expect(record).toMatchObject({group, attempts: 1, raw, envelope: null, event_id: null, topic: 'tektree.user'})
    expect(record.id).toBe(`${group}:${record.topic}/${record.partition}/${record.delivery_id}`)
    expect(record.error.error.code).toBe('INVALID_JSON')
    expect(record.error.error.details).toMatchObject({service: group})
    expect(calls).toBe(0)
    expect(h.metrics.snapshot().totals).toMatchObject({retried: 0, deadLettered: 1})
    expect(h.clock.pendingSleepers).toBe(0)
  })

  it('dead-letters a schema-invalid event with VALIDATION_FAILED and its id', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    const invalid = {...event, payload: {...event.payload, username: 'NOT VALID!'}}
    await h.sendRaw('tektree.user', JSON.stringify(invalid), {event_type: 'user.registered', event_id: event.event_id})
    let calls = 0
    const handle = h.start({name: group, consumes: ['user.registered'], handle: async () => void calls++})
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    const record = await h.store.dlq.get(`${group}:${event.event_id}`)
    expect(record).toMatchObject({event_id: event.event_id, event_type: 'user.registered', attempts: 1, envelope: null})
    expect(record!.error.error.code).toBe('VALIDATION_FAILED')
    expect(record!.error.error.details.path).toBe('$.payload.username')
    expect(calls).toBe(0)
  })

  it('dead-letters an unknown event type with UNKNOWN_EVENT_TYPE (no header to filter on)', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.sendRaw('tektree.user', JSON.stringify({...event, event_type: 'user.registred'}))
    const handle = h.start({name: group, consumes: ['user.registered'], async handle() {}})
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    const [record] = await h.store.dlq.list({group})
    expect(record.error.error.code).toBe('UNKNOWN_EVENT_TYPE')
    expect(record.event_type).toBe('user.registred')
    await until(async () => expect(await pendingOf(group)).toBe(0))
  })
})

describe('consumer runner: retries and the DLQ (seed 000: immediately, 10 s, 60 s, then DLQ)', () => {
  it('retries a handler failing twice: 3 attempts, no DLQ, retried metric 2', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const attempts: Array<{attempt: number; at: number}> = []
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(_e, ctx) {
        attempts.push({attempt: ctx.attempt, at: ctx.clock.now()})
        if (ctx.attempt <= 2) throw new Error(`transient ${ctx.attempt}`)
      },
    })
    // the first retry is immediate; the second waits 10 s of virtual time
    await advanceWhenParked(h.clock, 10_000)
    await until(() => expect(handle.stats().acked).toBe(1))
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3])
    expect(attempts.map((a) => a.at - attempts[0].at)).toEqual([0, 0, 10_000])
    expect(await h.store.dlq.count()).toBe(0)
    expect(h.metrics.snapshot().retried[group]).toEqual({'user.registered': 2})
    expect(handle.stats()).toMatchObject({retried: 2, failures: 2, handled: 1, deadLettered: 0})
    expect(h.events.filter((e) => e.type === 'retry').map((e) => (e as {delayMs: number}).delayMs)).toEqual([0, 10_000])
  })

  it('dead-letters an always-failing event after 4 attempts, with the delays [0, 10 s, 60 s] on the clock', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const at: number[] = []
    const handle = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle(_e, ctx) {
        at.push(ctx.clock.now())
        throw new TypeError('cannot read the user')
      },
    })
    await advanceWhenParked(h.clock, 10_000)
    await advanceWhenParked(h.clock, 60_000)
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    const gaps = at.slice(1).map((t, i) => t - at[i])
    expect(gaps).toEqual([0, 10_000, 60_000])
    const record = (await h.store.dlq.get(`${group}:${event.event_id}`))!
    expect(record).toMatchObject({attempts: 4, group, event_id: event.event_id, event_type: 'user.registered', raw: JSON.stringify(event)})
    expect(record.envelope).toEqual(event)
    expect(record.error.error).toMatchObject({code: 'HANDLER_FAILED', message: 'cannot read the user'})
    expect(record.error.error.details).toMatchObject({service: group, attempt: 4, error_name: 'TypeError'})
    expect(Date.parse(record.last_failure_at) - Date.parse(record.first_failure_at)).toBe(70_000)
    await until(async () => expect(await pendingOf(group)).toBe(0))
    expect(h.metrics.snapshot().deadLettered[group]).toEqual({'user.registered': 1})
    expect(h.metrics.snapshot().retried[group]).toEqual({'user.registered': 3})
  })

  it('dead-letters at once on NonRetryableError, keeping its code', async () => {
    const group = serviceName()
    const event = h.event('payment.subscription.created')
    await h.send([event])
    let calls = 0
    const handle = h.start({
      name: group,
      consumes: ['payment.subscription.created'],
      async handle() {
        calls++
        throw new NonRetryableError('tier no longer sold', {code: 'TIER_RETIRED', details: {tier: 'legacy'}})
      },
    })
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    expect(calls).toBe(1)
    const record = (await h.store.dlq.get(`${group}:${event.event_id}`))!
    expect(record.attempts).toBe(1)
    expect(record.error.error).toMatchObject({code: 'TIER_RETIRED', message: 'tier no longer sold'})
    expect(record.error.error.details).toMatchObject({tier: 'legacy', service: group, attempt: 1, retriable: false})
    expect(h.clock.pendingSleepers).toBe(0)
  })

  it('keeps one key in order while another key is parked for a retry', async () => {
    const group = serviceName()
    const A = 'aaaaaaaa-0000-4000-8000-000000000001'
    const B = 'bbbbbbbb-0000-4000-8000-000000000002'
    const a1 = h.event('user.authenticated', {key: A})
    const a2 = h.event('user.authenticated', {key: A})
    const b1 = h.event('user.authenticated', {key: B})
    const a3 = h.event('user.authenticated', {key: A})
    const b2 = h.event('user.authenticated', {key: B})
    const name = new Map([a1, a2, a3, b1, b2].map((e, i) => [e.event_id, ['a1', 'a2', 'a3', 'b1', 'b2'][i]]))
    const log: string[] = []
    await h.send([a1, a2, b1, a3, b2])
    const handle = h.start({
      name: group,
      consumes: ['user.authenticated'],
      async handle(e, ctx) {
        const n = name.get(e.event_id) ?? 'a4'
        log.push(`${n}#${ctx.attempt}`)
        if (n === 'a1' && ctx.attempt <= 2) throw new Error('not yet')
      },
    })
    // a1 fails twice and parks (10 s); B's events go on meanwhile
    await until(() => expect(log).toEqual(expect.arrayContaining(['b1#1', 'b2#1'])))
    await until(() => expect(h.clock.pendingSleepers).toBe(1))
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1#1', 'a1#2'])
    // a later batch for A waits behind the parked event too
    const a4 = h.event('user.authenticated', {key: A})
    await h.send([a4])
    await until(() => expect(handle.stats().ignoredRedeliveries + handle.stats().received).toBe(6))
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1#1', 'a1#2'])
    expect(handle.stats().parked).toBe(1)
    // when the retry is due
    await h.clock.advance(10_000)
    await until(() => expect(handle.stats().acked).toBe(6))
    // then A ran strictly in order, after its failed event
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1#1', 'a1#2', 'a1#3', 'a2#1', 'a3#1', 'a4#1'])
    expect(log.filter((l) => l.startsWith('b'))).toEqual(['b1#1', 'b2#1'])
    expect(log.indexOf('b2#1')).toBeLessThan(log.indexOf('a1#3'))
  })

  it('keeps a parked delivery from its visibility timeout, but leaves one received moments ago alone', async () => {
    // given a short visibility timeout (the keeper runs every 100 ms) and a record of what the
    // bus hands out and what the runner extends, with when
    const received = new Map<string, number>()
    const extended: Array<{id: string; at: number}> = []
    const subscribe = h.bus.subscribe.bind(h.bus)
    h.bus.subscribe = async (o) => {
      const sub = await subscribe(o)
      const next = sub.next.bind(sub)
      const extend = sub.extend.bind(sub)
      return Object.assign(sub, {
        next: async (signal?: AbortSignal) => {
          const got = await next(signal)
          for (const d of got) if (!received.has(d.headers.event_id!)) received.set(d.headers.event_id!, Date.now())
          return got
        },
        extend: async (deliveries: readonly Delivery[]) => {
          for (const d of deliveries) extended.push({id: d.headers.event_id!, at: Date.now()})
          return extend(deliveries)
        },
      })
    }
    const group = serviceName()
    const key = 'aaaaaaaa-0000-4000-8000-000000000009'
    const parked = h.event('user.authenticated', {key})
    await h.send([parked])
    const handle = h.start(
      {
        name: group,
        consumes: ['user.authenticated'],
        async handle(e) {
          if (e.event_id === parked.event_id) throw new Error('not yet')
        },
      },
      {visibilityTimeoutMs: 300, retryDelaysMs: [60_000]},
    )
    // when the first event is parked for its retry (virtual time: it stays parked) and, just
    // before a run of the keeper, a later event of its key arrives and waits behind it
    await until(() => expect(handle.stats().parked).toBe(1))
    await until(() => expect(extended.some((x) => x.id === parked.event_id)).toBe(true))
    const tick = extended.at(-1)!.at
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, tick + 85 - Date.now())))
    const queued = h.event('user.authenticated', {key})
    await h.send([queued])
    await until(() => expect(received.has(queued.event_id)).toBe(true))
    await new Promise((resolve) => setTimeout(resolve, 400))
    // then both are extended while held, the parked one again and again, and neither within half
    // a period of being received or extended before
    const times = (id: string) => extended.filter((x) => x.id === id).map((x) => x.at)
    expect(times(parked.event_id).length).toBeGreaterThanOrEqual(3)
    expect(times(queued.event_id).length).toBeGreaterThanOrEqual(1)
    for (const id of [parked.event_id, queued.event_id]) {
      let last = received.get(id)!
      for (const at of times(id)) {
        expect(at - last).toBeGreaterThanOrEqual(50)
        last = at
      }
    }
  })
})

describe('consumer runner: derived events', () => {
  const awardXp = (group: string, calls: string[]) => ({
    name: group,
    consumes: ['user.registered'],
    async handle(e: EventEnvelope, ctx: HandlerContext) {
      calls.push(e.event_id)
      const user = e.payload.user_id as string
      ctx.emit('gamification.xp.earned', {user_id: user, amount: 10, reason: e.event_type, source_event_id: e.event_id, total_xp: 10, area_id: null})
      ctx.emit('gamification.achievement.unlocked', {user_id: user, achievement_id: 'welcome', name: 'Welcome', category: 'community'})
    },
  })

  /** A new user.registered, handled and acked by a first instance of the group. */
  const handledByFirstInstance = async (group: string, calls: string[]) => {
    const event = h.event('user.registered')
    await h.send([event])
    const first = h.start(awardXp(group, calls), {validateEmitted: true})
    await until(() => expect(first.stats().acked).toBe(1))
    return {event, first}
  }
  /** The same event on the bus again, for a fresh instance of the group (an empty cache). */
  const againToFreshInstance = async (group: string, event: EventEnvelope, calls: string[]) => {
    await h.send([event])
    const second = h.start(awardXp(group, calls), {validateEmitted: true})
    await until(() => expect(second.stats().acked).toBe(1))
    return second
  }

  it('appends derived events with causation/correlation/trace ids, and re-handling emits the same ids', async () => {
    const group = serviceName('gamification')
    const calls: string[] = []
    // given a first instance whose handled record does not reach the store, as after a crash
    // between the effects and the record on a store without transactions
    const commit = h.store.commit.bind(h.store)
    h.store.commit = (writes) => commit({...writes, handled: []})
    const {event, first} = await handledByFirstInstance(group, calls)
    h.store.commit = commit
    const derived: EventEnvelope[] = []
    for await (const e of h.store.events.query({correlationId: event.correlation_id})) derived.push(e)
    expect(derived.map((e) => e.event_type).sort()).toEqual(['gamification.achievement.unlocked', 'gamification.xp.earned'])
    for (const e of derived) {
      expect(e).toMatchObject({causation_id: event.event_id, correlation_id: event.correlation_id, trace_id: event.trace_id, source_service: group})
      expect(e.metadata.aggregate_id).toBe(event.payload.user_id)
      expect(h.validator.validate(e).ok).toBe(true)
    }
    // when another instance (fresh memory) gets the same event again
    await first.stop()
    expect(await h.store.handled.completed(group, [event.event_id])).toEqual(new Set())
    await againToFreshInstance(group, event, calls)
    // then the handler ran again but the store holds each derived event once
    expect(calls).toEqual([event.event_id, event.event_id])
    const again: EventEnvelope[] = []
    for await (const e of h.store.events.query({correlationId: event.correlation_id})) again.push(e)
    expect(again.map((e) => e.event_id).sort()).toEqual(derived.map((e) => e.event_id).sort())
  })

  it("the group's ledger: another instance skips an event the group completed, however long ago its cache forgot", async () => {
    const group = serviceName('gamification')
    const calls: string[] = []
    const {event, first} = await handledByFirstInstance(group, calls)
    await first.stop()
    // recorded before the ack, for the group only
    expect(await h.store.handled.completed(group, [event.event_id])).toEqual(new Set([event.event_id]))
    expect(await h.store.handled.completed(serviceName('other'), [event.event_id])).toEqual(new Set())
    // the same event again (a duplicate on the bus), to an instance with an empty cache
    const second = await againToFreshInstance(group, event, calls)
    expect(calls).toEqual([event.event_id])
    expect(second.stats()).toMatchObject({duplicates: 1, handled: 0})
    await second.stop()
    // a consumer of another group handles it: the ledger is per group
    const otherCalls: string[] = []
    const other = h.start(awardXp(serviceName('gamification'), otherCalls), {validateEmitted: true, startFrom: 'earliest'})
    await until(() => expect(otherCalls.length).toBeGreaterThanOrEqual(1))
    await other.stop()
  })

  it('an emit with an identity gets the same id from every causing event, so the store keeps one', async () => {
    const group = serviceName('gamification')
    const user = randomUUID()
    const events = [h.event('user.registered'), h.event('user.registered'), h.event('user.registered')]
    await h.send(events)
    const handle = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(_e, ctx) {
          ctx.emit('gamification.level.up', {user_id: user, previous_level: 1, new_level: 2, total_xp: 100}, {identity: `${user}:level:2`})
        },
      },
      {validateEmitted: true},
    )
    await until(() => expect(handle.stats().acked).toBe(3))
    const levelUps: EventEnvelope[] = []
    for await (const e of h.store.events.query({types: ['gamification.level.up']})) if (e.payload.user_id === user) levelUps.push(e)
    expect(levelUps).toHaveLength(1)
    expect(events.map((e) => e.event_id)).toContain(levelUps[0].causation_id)
  })

  it('dead-letters a handler that emits an invalid event (retrying builds it again)', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const handle = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(_e, ctx) {
          ctx.emit('gamification.xp.earned', {user_id: 'not-a-uuid'})
        },
      },
      {validateEmitted: true},
    )
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    const [record] = await h.store.dlq.list({group})
    expect(record.error.error.code).toBe('DERIVED_EVENT_INVALID')
    expect(await h.store.events.count({types: ['gamification.*']})).toBe(0)
  })
})

describe('consumer runner: scaling out, crashes and stops', () => {
  it('splits a group between two consumers; every event is handled exactly once', async () => {
    const group = serviceName()
    const byConsumer = new Map<string, string[]>()
    const service = (who: string) => ({
      name: group,
      consumes: ['knowledge.question.posted'],
      async handle(e: EventEnvelope) {
        byConsumer.set(who, [...(byConsumer.get(who) ?? []), e.event_id])
      },
    })
    const c1 = h.start(service('c1'))
    const c2 = h.start(service('c2'))
    await until(() => expect(h.events.filter((e) => e.type === 'subscribed')).toHaveLength(2))
    const events = Array.from({length: 200}, () => h.event('knowledge.question.posted'))
    await h.send(events)
    await until(() => expect(c1.stats().acked + c2.stats().acked).toBe(200))
    const all = [...(byConsumer.get('c1') ?? []), ...(byConsumer.get('c2') ?? [])]
    expect(all.sort()).toEqual(events.map((e) => e.event_id).sort())
    expect(byConsumer.get('c1')?.length).toBeGreaterThan(0)
    expect(byConsumer.get('c2')?.length).toBeGreaterThan(0)
    expect(await pendingOf(group)).toBe(0)
  })

  it('after a crash mid-batch, nothing of it was committed; another consumer gets the events and the effects happen once', async () => {
    const group = serviceName()
    const events = Array.from({length: 10}, () => h.event('user.registered'))
    await h.send(events)
    const crash = new AbortController()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const effect = async (e: EventEnvelope, ctx: HandlerContext) => {
      await ctx.store.projections.applyOnce('registrations', 'all', e.event_id, {$inc: {n: 1}})
    }
    // given a consumer whose handlers write their effect, read it back, then hang (the process is about to die)
    let seenInHandler = 0
    const c1 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e, ctx) {
          await effect(e, ctx)
          seenInHandler = Math.max(seenInHandler, Number((await ctx.store.projections.get('registrations', 'all'))?.n))
          await gate
        },
      },
      {signal: crash.signal, visibilityTimeoutMs: 100},
    )
    await until(() => expect(seenInHandler).toBe(10))
    // the handlers see their writes (and each other's); the store has none of them yet
    expect(await h.store.projections.get('registrations', 'all')).toBeNull()
    // when it crashes (nothing acked) and its handlers then finish
    crash.abort()
    await c1.done
    release()
    expect(c1.stats().acked).toBe(0)
    expect(await pendingOf(group)).toBe(10)
    // then a second consumer gets them after the visibility timeout, and applyOnce keeps the effect single
    const calls: string[] = []
    const c2 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(e, ctx) {
          calls.push(e.event_id)
          await effect(e, ctx)
        },
      },
      {visibilityTimeoutMs: 100},
    )
    await until(() => expect(c2.stats().acked).toBe(10))
    expect(calls.sort()).toEqual(events.map((e) => e.event_id).sort())
    expect((await h.store.projections.get('registrations', 'all'))?.n).toBe(10)
    expect(await pendingOf(group)).toBe(0)
  })

  it('stop() leaves a parked retry unacked; the next consumer finishes it', async () => {
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const c1 = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle() {
        throw new Error('down')
      },
    })
    await until(() => expect(c1.stats().parked).toBe(1))
    await c1.stop()
    expect(c1.stats()).toMatchObject({acked: 0, parked: 0, buffered: 0, deadLettered: 0})
    expect(h.clock.pendingSleepers).toBe(0)
    expect(await pendingOf(group)).toBe(1)
    const c2 = h.start({name: group, consumes: ['user.registered'], async handle() {}}, {visibilityTimeoutMs: 50})
    await until(() => expect(c2.stats().acked).toBe(1))
    expect(await h.store.dlq.count()).toBe(0)
  })

  it('a parked retry whose partition moved to another consumer is left to it: never retried here, never dead-lettered', async () => {
    await h.close()
    h = await createHarness({bus: {sessionTimeoutMs: 500}})
    const group = serviceName()
    const topic = h.catalog.get('user.registered')!
    const partitions = h.catalog.topics().find((t) => t.name === topic.topic)!.partitions
    // A key whose partition the consumer sorted first takes when two share the group.
    let key = randomUUID()
    while (partitionFor(key, partitions) % 2 !== 0) key = randomUUID()
    await h.send([h.event('user.registered', {key})])
    const failing = h.start({name: group, consumes: ['user.registered'], async handle() {
      throw new Error('down')
    }}, {consumer: 'z-first', visibilityTimeoutMs: 300})
    await until(() => expect(failing.stats().parked).toBe(1))
    // another consumer joins and takes the partition (with the delivery the first one holds)
    const next = h.start({name: group, consumes: ['user.registered'], async handle() {}}, {consumer: 'a-next', visibilityTimeoutMs: 300})
    await until(() => expect(next.stats().acked).toBe(1), 10_000)
    // the first one's retry comes due
    await advanceWhenParked(h.clock, 10_000)
    await until(() => expect(failing.stats().buffered === 0 || failing.stats().parked === 1).toBe(true))
    if (failing.stats().parked === 1) await advanceWhenParked(h.clock, 60_000)
    await until(() => expect(failing.stats().buffered).toBe(0))
    expect(failing.stats().deadLettered).toBe(0)
    expect(await h.store.dlq.count()).toBe(0)
  })

  it('stop() lets a running handler finish and acks it', async () => {
    const group = serviceName()
    await h.send([h.event('user.registered')])
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let started = false
    const c1 = h.start({
      name: group,
      consumes: ['user.registered'],
      async handle() {
        started = true
        await gate
      },
    })
    await until(() => expect(started).toBe(true))
    const stopped = c1.stop()
    release()
    await stopped
    expect(c1.stats().acked).toBe(1)
    expect(await pendingOf(group)).toBe(0)
  })

  it('stops fetching while too many deliveries are buffered (backpressure)', async () => {
    const group = serviceName()
    const events = Array.from({length: 60}, () => h.event('user.registered'))
    await h.send(events)
    let release!: () => void
    let gate = new Promise<void>((resolve) => (release = resolve))
    let maxBuffered = 0
    const c1 = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle() {
          await gate
        },
      },
      {batchSize: 4, maxBuffered: 8, concurrency: 2},
    )
    const sample = () => {
      maxBuffered = Math.max(maxBuffered, c1.stats().buffered)
      return c1.stats()
    }
    await until(() => expect(sample().buffered).toBeGreaterThanOrEqual(8))
    // a few more fetch rounds would have happened by now without backpressure
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 30))
      sample()
    }
    expect(maxBuffered).toBeLessThanOrEqual(8 - 1 + 4)
    expect(c1.stats().inFlight).toBeLessThanOrEqual(2)
    release()
    gate = Promise.resolve()
    await until(() => expect(c1.stats().acked).toBe(60))
  })
})

describe('consumer runner: bus errors', () => {
  it('backs off and goes on when next() and subscribe() fail, reporting them', async () => {
    let subscribeFailures = 2
    let nextFailures = 3
    await h.close()
    h = await createHarness({
      wrapBus: (bus) => ({
        ...bus,
        kind: bus.kind,
        ensureTopics: (specs) => bus.ensureTopics(specs),
        publish: (m) => bus.publish(m),
        stats: (f) => bus.stats(f),
        topics: () => bus.topics(),
        read: (...a) => bus.read(...a),
        trim: (...a) => bus.trim(...a),
        close: () => bus.close(),
        async subscribe(options) {
          if (subscribeFailures-- > 0) throw new Error('ECONNREFUSED (subscribe)')
          const sub = await bus.subscribe(options)
          return {
            ...sub,
            ack: (d) => sub.ack(d),
            assignment: () => sub.assignment(),
            close: () => sub.close(),
            async next(signal) {
              if (nextFailures-- > 0) throw new Error('connection lost')
              return sub.next(signal)
            },
          }
        },
      }),
    })
    const group = serviceName()
    await h.send([h.event('user.registered')])
    const handle = h.start({name: group, consumes: ['user.registered'], async handle() {}})
    await until(() => expect(handle.stats().acked).toBe(1))
    const errors = h.events.filter((e) => e.type === 'bus_error')
    expect(errors.map((e) => (e as {phase: string}).phase)).toEqual(['subscribe', 'subscribe', 'fetch', 'fetch', 'fetch'])
    expect(handle.stats().busErrors).toBe(5)
  })
})
