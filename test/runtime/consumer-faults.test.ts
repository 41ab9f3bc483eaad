/**
 * The consumer runner under faults, on the in-process engine: redeliveries while a retry is parked,
 * a failing DLQ write, and a seeded mix of transient failures over many keys (order and
 * exactly-once effects must hold whatever the interleaving).
 */
import {createHash} from 'node:crypto'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {advanceWhenParked, createHarness, serviceName, until, type Harness} from './consumer-harness.js'

let h: Harness
beforeEach(async () => {
  h = await createHarness()
})
afterEach(async () => {
  await h.close()
})

const pendingOf = async (group: string) => (await h.bus.stats({group})).reduce((n, s) => n + s.pending + s.lag, 0)

/** The store's first commit waits `ms` and then fails (its file locked by another process); the rest go in. */
const failFirstCommitAfter = (ms: number) => {
  const commit = h.store.commit.bind(h.store)
  let calls = 0
  h.store.commit = async (writes) => {
    if (calls++ === 0) {
      await new Promise((resolve) => setTimeout(resolve, ms))
      throw new Error('The store file stayed locked by another process')
    }
    return commit(writes)
  }
}

/** A registrations counter fed `events`, its first commit hanging 400 ms and then failing. */
const registrationsWithFailingCommit = async (events: EventEnvelope[]) => {
  const group = serviceName()
  await h.send(events)
  failFirstCommitAfter(400)
  const handle = h.start(
    {
      name: group,
      consumes: ['user.registered'],
      async handle(e, ctx) {
        await ctx.store.projections.applyOnce('registrations', 'all', e.event_id, {$inc: {n: 1}})
      },
    },
    {visibilityTimeoutMs: 60},
  )
  return Object.assign(handle, {group})
}
/** The event was counted once, and the group has nothing pending. */
const registered = async (group: string) => {
  await until(async () => expect((await h.store.projections.get('registrations', 'all'))?.n).toBe(1), 10_000)
  await until(async () => expect(await pendingOf(group)).toBe(0))
}

/** Deterministic "random" in [0, 1) from a string. */
const unit = (text: string) => createHash('sha1').update(text).digest().readUInt32BE(0) / 2 ** 32

describe('consumer runner under faults', () => {
  it('ignores the bus redelivering a delivery that is parked for a retry', async () => {
    // given a short visibility timeout, far shorter than the 10 s retry wait, and a bus whose
    // extend() does not keep it (the runner's keep-alive lost: a slow link, a bus restarted)
    const subscribe = h.bus.subscribe.bind(h.bus)
    h.bus.subscribe = async (o) => Object.assign(await subscribe(o), {extend: async () => {}})
    const group = serviceName()
    const event = h.event('user.registered')
    await h.send([event])
    const attempts: number[] = []
    const handle = h.start(
      {
        name: group,
        consumes: ['user.registered'],
        async handle(_e, ctx) {
          attempts.push(ctx.attempt)
          if (ctx.attempt <= 2) throw new Error('transient')
        },
      },
      {visibilityTimeoutMs: 30},
    )
    // when the bus re-sends it while it waits
    await until(() => expect(handle.stats().ignoredRedeliveries).toBeGreaterThanOrEqual(2))
    await advanceWhenParked(h.clock, 10_000)
    await until(() => expect(handle.stats().acked).toBe(1))
    // then the re-sends did not start extra attempts
    expect(attempts).toEqual([1, 2, 3])
    expect(handle.stats().handled).toBe(1)
    await until(async () => expect(await pendingOf(group)).toBe(0))
  })

  it('a redelivery that arrives while its unit is being committed is not acked for it: the commit failing loses nothing', async () => {
    // given a commit that hangs past the visibility timeout and then fails (the store's file locked
    // by another process for longer than the busy timeout), so that the bus hands the event back
    // while its first completion is still being committed (found by the long store-lock chaos run)
    const event = h.event('user.registered')
    const handle = await registrationsWithFailingCommit([event])
    // then the event is applied once after all, and acked
    await registered(handle.group)
    expect(handle.stats().handled).toBeGreaterThanOrEqual(1)
  })

  it('a copy that waited on a commit that failed is not counted as a duplicate (it was not acked)', async () => {
    // given the same event twice on the bus, and the first completion's commit hanging and then
    // failing, so that the second copy waits on that commit
    const event = h.event('user.registered')
    const handle = await registrationsWithFailingCommit([event, event])
    await registered(handle.group)
    // then of the two copies acked, one completed the event and one was a duplicate; the copy left
    // unacked when the commit failed was not counted
    expect(handle.stats()).toMatchObject({acked: 2, duplicates: 1})
  })

  it('after a failed commit, a later event of the same aggregate waits for the failed one: the sequence guard does not take that for stale', async () => {
    // given two events of one aggregate, the first one's commit failing after a while (the store
    // locked), the second completed meanwhile into the next unit (found by the long store-lock chaos run)
    const group = serviceName()
    const key = '9b2f4a10-5c1e-4d7a-9f00-00000000000a'
    const first = h.event('user.profile.updated', {key, metadata: {sequence: 1}})
    const second = h.event('user.profile.updated', {key, metadata: {sequence: 2}})
    await h.send([first, second])
    failFirstCommitAfter(300)
    h.start(
      {
        name: group,
        consumes: ['user.profile.updated'],
        async handle(e, ctx) {
          if (e.event_id === second.event_id) await new Promise((resolve) => setTimeout(resolve, 50))
          await ctx.store.projections.applyOnce('profile_updates', key, e.event_id, {$inc: {n: 1}})
        },
      },
      {visibilityTimeoutMs: 200},
    )
    // then both are applied in the end, the first one again after its commit failed
    await until(async () => expect((await h.store.projections.get('profile_updates', key))?.n).toBe(2), 10_000)
    await until(async () => expect(await pendingOf(group)).toBe(0))
    expect(await h.store.dlq.count({group})).toBe(0)
  })

  it('a later event of the aggregate waits for as long as the failed one keeps failing here, not a fixed time from its first failure', async () => {
    // given two events of one aggregate and the first one's commit refused for far longer than the
    // hold's bound (4 visibility timeouts), each redelivery failing again
    const group = serviceName()
    const key = '9b2f4a10-5c1e-4d7a-9f00-00000000000b'
    const first = h.event('user.profile.updated', {key})
    const second = h.event('user.profile.updated', {key})
    await h.send([first, second])
    const commit = h.store.commit.bind(h.store)
    const committed: string[] = []
    const refuseUntil = Date.now() + 1_500
    h.store.commit = async (writes) => {
      const ids = (writes.handled ?? []).map((r) => r.event_id)
      if (ids.includes(first.event_id) && Date.now() < refuseUntil) throw new Error('The store file stayed locked by another process')
      const result = await commit(writes)
      committed.push(...ids)
      return result
    }
    h.start(
      {name: group, consumes: ['user.profile.updated'], async handle() {}},
      {visibilityTimeoutMs: 50, retryDelaysMs: Array.from({length: 200}, () => 1)},
    )
    // then the second goes in only after the first
    await until(() => expect(committed).toContain(second.event_id), 10_000)
    expect(committed.indexOf(first.event_id)).toBeGreaterThanOrEqual(0)
    expect(committed.indexOf(first.event_id)).toBeLessThan(committed.indexOf(second.event_id))
  })

  it('does not ack when the DLQ write fails; the redelivery dead-letters it once', async () => {
    const group = serviceName()
    const add = h.store.dlq.add.bind(h.store.dlq)
    let failures = 1
    h.store.dlq.add = async (record) => {
      if (failures-- > 0) throw new Error('store unavailable')
      return add(record)
    }
    await h.sendRaw('tektree.user', 'garbage', {event_type: 'user.registered', event_id: 'raw-1'})
    const handle = h.start({name: group, consumes: ['user.registered'], async handle() {}}, {visibilityTimeoutMs: 30})
    await until(() => expect(handle.stats().deadLettered).toBe(1))
    await until(async () => expect(await pendingOf(group)).toBe(0))
    expect(h.events.filter((e) => e.type === 'store_error')).toHaveLength(1)
    expect(await h.store.dlq.count({group})).toBe(1)
    expect(handle.stats().received).toBe(2)
  })

  it('keeps per-key order and exactly-once effects over many keys with seeded transient failures', async () => {
    const group = serviceName()
    const keys = Array.from({length: 12}, (_, i) => `0000000${i.toString(16)}-0000-4000-8000-${String(i).padStart(12, '0')}`)
    const events: EventEnvelope[] = []
    for (let i = 0; i < 240; i++) events.push(h.event('user.authenticated', {key: keys[Math.floor(unit(`k${i}`) * keys.length)]}))
    const order = new Map(events.map((e, i) => [e.event_id, i]))
    const succeeded: Array<{key: string; index: number}> = []
    const handle = h.start(
      {
        name: group,
        consumes: ['user.authenticated'],
        async handle(e, ctx) {
          // ~20% fail once, ~5% fail three times (succeeding on the 4th and last attempt)
          const roll = unit(e.event_id)
          if (roll < 0.2 && ctx.attempt === 1) throw new Error('flaky once')
          if (roll > 0.95 && ctx.attempt <= 3) throw new Error('flaky thrice')
          await ctx.store.projections.applyOnce('logins', e.payload.user_id as string, e.event_id, {$inc: {n: 1}})
          succeeded.push({key: e.payload.user_id as string, index: order.get(e.event_id)!})
        },
      },
      {batchSize: 16, concurrency: 4, maxBuffered: 48},
    )
    await h.send(events)
    // drive virtual time until everything is acked (bounded)
    for (let round = 0; round < 2_000 && handle.stats().acked < events.length; round++) {
      if (h.clock.pendingSleepers > 0) await h.clock.advance(60_000)
      else await new Promise((resolve) => setTimeout(resolve, 2))
    }
    expect(handle.stats().acked).toBe(events.length)
    expect(handle.stats().deadLettered).toBe(0)
    expect(handle.stats().retried).toBeGreaterThan(0)
    // each key's events succeeded in publish order
    for (const key of keys) {
      const indexes = succeeded.filter((s) => s.key === key).map((s) => s.index)
      expect(indexes).toEqual([...indexes].sort((a, b) => a - b))
    }
    // and every effect happened exactly once
    expect(succeeded).toHaveLength(events.length)
    let total = 0
    for (const key of keys) total += ((await h.store.projections.get('logins', key))?.n as number | undefined) ?? 0
    expect(total).toBe(events.length)
    expect(await pendingOf(group)).toBe(0)
  })
})
