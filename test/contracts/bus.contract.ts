/**
 * The Bus contract: every adapter (in-process, Redis, Kafka-like) runs this suite unchanged.
 *
 * Wiring an adapter:
 *   busContract('RedisBus', async () => {
 *     const bus = await createRedisBus({url, prefix: uniqueName('t'), sessionTimeoutMs: 1000})
 *     return {bus, cleanup: () => deleteKeys(prefix)}
 *   }, {visibilityTimeoutMs: 400})
 *
 * The factory is called once per test and must return a bus whose data no other test sees (own key
 * prefix / namespace); each test also uses its own topic and group names. `cleanup` runs after the
 * test, possibly after the test already closed the bus.
 *
 * Semantics pinned down here (beyond the doc comments of src/core/ports.ts):
 * - routing: partition = partitionFor(key, partitions) from src/core/partition.ts, for every adapter;
 * - publish() returns one id per message, aligned with the input; ids are the Delivery.id values and
 *   increase within a partition in publish order (read() pages by them);
 * - a consumer is a live member of its group while it keeps calling next(); a consumer that stops
 *   calling next() (a crash) loses its partitions after the adapter's session timeout, which the
 *   factory should configure short (about 1 s) for this suite; close() hands them over at once;
 * - unacked deliveries stay pending and go again, with deliveryCount + 1, to the partition's current
 *   owner once older than visibilityTimeoutMs;
 * - trim({maxLen}) keeps the newest maxLen entries of EACH partition, exactly;
 * - after close(), publish/subscribe reject; an in-flight next() settles.
 */
import {isNonRetryable} from '../../src/core/errors.js'
import {describe, it, expect, beforeEach, afterEach} from 'vitest'
import type {Bus, Delivery, OutgoingMessage, Subscription} from '../../src/core/ports.js'
import {partitionFor} from '../../src/core/partition.js'
import {consumeUntil, settlesWithin, uniqueName, until} from './helpers.js'

export interface BusContractOptions {
  /** Visibility timeout the redelivery tests subscribe with (short; default 400 ms). */
  visibilityTimeoutMs?: number
  /** Deadline for anything that waits on a timeout (takeover, redelivery); default 20 s. */
  waitTimeoutMs?: number
  /** blockMs the tests subscribe with (default 100 ms). */
  blockMs?: number
  /** Set false for a backend that cannot trim by age. Default true. */
  trimByAge?: boolean
  /** The session timeout the factory's bus was made with (default 1 s). */
  sessionTimeoutMs?: number
}

export type BusFactory = () => Promise<{bus: Bus; cleanup?: () => Promise<void>}>

function messages(topic: string, key: string, count: number, start = 0): OutgoingMessage[] {
  return Array.from({length: count}, (_, i) => ({
    topic,
    key,
    value: JSON.stringify({key, n: start + i}),
    headers: {event_type: 'test.message.sent', event_id: `${key}-${start + i}`, published_at: String(Date.now())},
  }))
}

const valueN = (d: Delivery) => (JSON.parse(d.value) as {n: number}).n
const keyOf = (d: Delivery) => `${d.topic}/${d.key}/${valueN(d)}`

export function busContract(name: string, factory: BusFactory, options: BusContractOptions = {}): void {
  const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 400
  const waitTimeoutMs = options.waitTimeoutMs ?? 20_000
  const blockMs = options.blockMs ?? 100
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 1_000

  describe(name, () => {
    let bus: Bus
    let cleanup: (() => Promise<void>) | undefined
    const subs: Subscription[] = []

    const subscribe = async (o: Partial<Parameters<Bus['subscribe']>[0]> & {group: string; topics: string[]}) => {
      const sub = await bus.subscribe({consumer: uniqueName('c'), blockMs, ...o})
      subs.push(sub)
      return sub
    }

    /** A topic whose partitions two consumers of one group (consumer-a, consumer-b) share. */
    const twoOwners = async (partitions: number) => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions}])
      const group = uniqueName('g')
      const a = await subscribe({group, topics: [topic], consumer: 'consumer-a', visibilityTimeoutMs})
      const b = await subscribe({group, topics: [topic], consumer: 'consumer-b', visibilityTimeoutMs})
      await until(async () => {
        await Promise.all([a.next(), b.next()])
        return a.assignment().length > 0 && b.assignment().length > 0
      }, {timeoutMs: waitTimeoutMs, message: 'both consumers own partitions'})
      return {topic, group, a, b}
    }

    /** A one-partition topic whose first `n` entries (key 'agg') `owner` took and holds unacked. */
    const heldByOneOwner = async (n: number, owner: string) => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      const group = uniqueName('g')
      await bus.publish(messages(topic, 'agg', n))
      const sub = await subscribe({group, topics: [topic], consumer: owner, batchSize: n, visibilityTimeoutMs: 60_000})
      const held = await consumeUntil(sub, (all) => all.length === n, {ack: false})
      return {topic, group, sub, held}
    }

    beforeEach(async () => {
      const made = await factory()
      bus = made.bus
      cleanup = made.cleanup
    })

    afterEach(async () => {
      await Promise.allSettled(subs.splice(0).map((s) => s.close()))
      await bus.close().catch(() => undefined)
      await cleanup?.()
    })

    it('has a kind', () => {
      expect(typeof bus.kind).toBe('string')
      expect(bus.kind.length).toBeGreaterThan(0)
    })

    it('ensureTopics is idempotent and topics() lists each topic once', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 3}])
      await bus.ensureTopics([{name: topic, partitions: 3}])
      const listed = (await bus.topics()).filter((t) => t.name === topic)
      expect(listed).toHaveLength(1)
      expect(listed[0]).toMatchObject({name: topic, partitions: 3, length: 0})
    })

    it('publish returns the ids in input order; read() returns the same ids in order', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 4}])
      const batch = messages(topic, 'k-1', 30)
      const ids = await bus.publish(batch)
      expect(ids).toHaveLength(30)
      expect(new Set(ids).size).toBe(30)
      const partition = partitionFor('k-1', 4)
      const read = await bus.read(topic, partition, null, 100)
      expect(read.map((d) => d.id)).toEqual(ids)
      expect(read.map(valueN)).toEqual(batch.map((_, i) => i))
      expect(read[0]).toMatchObject({topic, partition, key: 'k-1', value: batch[0].value, headers: batch[0].headers})
      expect(typeof read[0].enqueuedAt).toBe('number')
    })

    it('refuses a batch naming a topic never ensured, whole and as not retriable', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      const batch = [...messages(topic, 'k', 2), ...messages(uniqueName('nowhere'), 'k', 1)]
      const error = await bus.publish(batch).then(() => null, (e: unknown) => e)
      expect(error).toBeInstanceOf(Error)
      expect(isNonRetryable(error)).toBe(true)
      expect((error as {code?: string}).code).toBe('UNKNOWN_TOPIC')
      expect(await bus.read(topic, 0, null, 10)).toEqual([])
    })

    it('eventIds() pages a partition\'s event ids oldest first, from an id or from a time', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const first = await bus.publish(messages(topic, 'k', 3))
      await bus.publish([{topic, key: 'k', value: 'poison', headers: {}}])
      // A time bound is inclusive and on the bus's own clock: wait until that clock has moved on.
      const [newest] = (await bus.eventIds(topic, partitionFor('k', 2), {count: 10})).slice(-1)
      await until(() => Date.now() > newest.enqueuedAt + 2)
      const later = await bus.publish(messages(topic, 'k', 2, 3))
      const p = partitionFor('k', 2)
      const all = await bus.eventIds(topic, p, {count: 100})
      expect(all.map((e) => e.eventId)).toEqual(['k-0', 'k-1', 'k-2', null, 'k-3', 'k-4'])
      expect(all.map((e) => e.id)).toEqual([...first, all[3].id, ...later])
      for (const e of all) expect(typeof e.enqueuedAt).toBe('number')
      // Paging by id.
      const page = await bus.eventIds(topic, p, {count: 2})
      expect(page.map((e) => e.eventId)).toEqual(['k-0', 'k-1'])
      expect((await bus.eventIds(topic, p, {afterId: page[1].id, count: 2})).map((e) => e.eventId)).toEqual(['k-2', null])
      // From a time: every entry enqueued at or after it.
      const since = all[4].enqueuedAt
      const fromTime = await bus.eventIds(topic, p, {sinceMs: since, count: 100})
      expect(fromTime.map((e) => e.eventId)).toEqual(['k-3', 'k-4'])
      expect(await bus.eventIds(topic, 1 - p, {count: 10})).toEqual([])
    })

    it('keeps value bytes and headers intact (poison pills reach the consumer as sent)', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const value = 'not json {{{ ünïcödé 🚀 \n\t"quoted"'
      await bus.publish([{topic, key: 'poison', value, headers: {event_type: 'x.y.z', odd: 'a b=c'}}])
      const group = uniqueName('g')
      const sub = await subscribe({group, topics: [topic]})
      const [got] = await consumeUntil(sub, (all) => all.length >= 1)
      expect(got.value).toBe(value)
      expect(got.headers).toEqual({event_type: 'x.y.z', odd: 'a b=c'})
      expect(got.key).toBe('poison')
      expect(got.deliveryCount).toBe(1)
    })

    it('routes by partitionFor(key) and keeps order per key within a group', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 4}])
      const keys = Array.from({length: 12}, (_, i) => `agg-${i}`)
      for (let round = 0; round < 5; round++) {
        await bus.publish(keys.flatMap((key) => messages(topic, key, 10, round * 10)))
      }
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], batchSize: 37})
      const all = await consumeUntil(sub, (got) => got.length >= 600)
      expect(all).toHaveLength(600)
      expect(new Set(all.map(keyOf)).size).toBe(600)
      const lastByKey = new Map<string, number>()
      for (const d of all) {
        expect(d.partition).toBe(partitionFor(d.key, 4))
        expect(d.deliveryCount).toBe(1)
        const n = valueN(d)
        expect(n).toBe((lastByKey.get(d.key) ?? -1) + 1)
        lastByKey.set(d.key, n)
      }
    })

    it('delivers every message of every subscribed topic once to a group', async () => {
      const t1 = uniqueName('topic')
      const t2 = uniqueName('topic')
      await bus.ensureTopics([{name: t1, partitions: 2}, {name: t2, partitions: 3}])
      await bus.publish([...messages(t1, 'a', 20), ...messages(t2, 'b', 20), ...messages(t2, 'c', 5)])
      const sub = await subscribe({group: uniqueName('g'), topics: [t1, t2], batchSize: 7})
      const all = await consumeUntil(sub, (got) => got.length >= 45)
      expect(all).toHaveLength(45)
      expect(new Set(all.map(keyOf)).size).toBe(45)
      expect(sub.assignment().length).toBe(5)
    })

    it('fans out: two groups each receive everything', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 3}])
      await bus.publish([...messages(topic, 'x', 15), ...messages(topic, 'y', 15)])
      const a = await subscribe({group: uniqueName('ga'), topics: [topic]})
      const b = await subscribe({group: uniqueName('gb'), topics: [topic]})
      const gotA = await consumeUntil(a, (got) => got.length >= 30)
      const gotB = await consumeUntil(b, (got) => got.length >= 30)
      expect(new Set(gotA.map(keyOf)).size).toBe(30)
      expect(new Set(gotB.map(keyOf)).size).toBe(30)
    })

    it('a blocked next() wakes up for a message published while it waits', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], blockMs: 15_000})
      const waiting = sub.next()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await bus.publish(messages(topic, 'late', 1))
      const result = await settlesWithin(waiting, 14_000, 'blocked next()')
      expect(result.status).toBe('fulfilled')
      const got = (result as PromiseFulfilledResult<Delivery[]>).value
      expect(got.map((d) => d.key)).toEqual(['late'])
    }, 30_000)

    it('next(signal) settles when the signal aborts', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], blockMs: 15_000})
      const controller = new AbortController()
      const waiting = sub.next(controller.signal)
      setTimeout(() => controller.abort(), 50)
      const result = await settlesWithin(waiting, 10_000, 'aborted next()')
      if (result.status === 'fulfilled') expect(result.value).toEqual([])
    }, 30_000)

    it('ack removes deliveries from pending and they are not delivered again', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      await bus.publish(messages(topic, 'k', 5))
      const group = uniqueName('g')
      const sub = await subscribe({group, topics: [topic], visibilityTimeoutMs})
      const got = await consumeUntil(sub, (all) => all.length >= 5, {ack: false})
      let [stats] = await bus.stats({group, topic})
      expect(stats.pending).toBe(5)
      await sub.ack(got)
      ;[stats] = await bus.stats({group, topic})
      expect(stats.pending).toBe(0)
      expect(stats.oldestPendingAgeMs).toBeNull()
      // Keep polling for several visibility timeouts: nothing may come back.
      const deadline = Date.now() + visibilityTimeoutMs * 3
      while (Date.now() < deadline) expect(await sub.next()).toEqual([])
    })

    it('redelivers unacked deliveries after the visibility timeout with deliveryCount + 1', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish(messages(topic, 'k', 3))
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], visibilityTimeoutMs})
      const first = await consumeUntil(sub, (all) => all.length >= 3, {ack: false})
      expect(first.map((d) => d.deliveryCount)).toEqual([1, 1, 1])
      const again = await consumeUntil(sub, (all) => all.length >= 3, {ack: false, timeoutMs: waitTimeoutMs})
      expect(again.map((d) => d.id)).toEqual(first.map((d) => d.id))
      expect(again.map((d) => d.deliveryCount)).toEqual([2, 2, 2])
      expect(again.map((d) => d.value)).toEqual(first.map((d) => d.value))
      await sub.ack(again)
      const deadline = Date.now() + visibilityTimeoutMs * 3
      while (Date.now() < deadline) expect(await sub.next()).toEqual([])
    }, 60_000)

    it('extend() keeps held deliveries from their visibility timeout without counting a delivery', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish(messages(topic, 'k', 3))
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], visibilityTimeoutMs})
      const first = await consumeUntil(sub, (all) => all.length >= 3, {ack: false})
      // given deliveries extended well within their visibility timeout, for three timeouts
      const deadline = Date.now() + visibilityTimeoutMs * 3
      while (Date.now() < deadline) {
        await sub.extend(first)
        // then nothing comes back while they are kept
        expect(await sub.next()).toEqual([])
      }
      // and once no longer extended they come back, counted as their second delivery
      const again = await consumeUntil(sub, (all) => all.length >= 3, {ack: false, timeoutMs: waitTimeoutMs})
      expect(again.map((d) => [d.id, d.deliveryCount])).toEqual(first.map((d) => [d.id, 2]))
      await sub.ack(again)
    }, 60_000)

    it('release() hands held deliveries out again at once, in order and counted, long before their visibility timeout', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish(messages(topic, 'k', 3))
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], visibilityTimeoutMs: 60_000})
      const first = await consumeUntil(sub, (all) => all.length >= 3, {ack: false})
      // given two of three held deliveries released (their consumer is done with them for now)
      await sub.release(first.slice(0, 2))
      // then they come again at once, as their second delivery, in log order
      const again = await consumeUntil(sub, (all) => all.length >= 2, {ack: false, timeoutMs: 10_000})
      expect(again.map((d) => [d.id, d.deliveryCount])).toEqual(first.slice(0, 2).map((d) => [d.id, 2]))
      // and the third stays held
      expect(await sub.next()).toEqual([])
      // and releasing the first deliveries again leaves their later ones, held now, alone
      await sub.release(first.slice(0, 2))
      expect(await sub.next()).toEqual([])
      await sub.ack([...again, first[2]!])
    }, 60_000)

    it("extend() by a consumer that lost its partition leaves the new owner's deliveries alone", async () => {
      // given an owner that took three entries and stopped polling (paused past its lease)
      const {topic, group, sub: paused, held} = await heldByOneOwner(3, 'paused')
      // and the partition's new owner, which took them over
      const next = await subscribe({group, topics: [topic], consumer: 'next', visibilityTimeoutMs: 60_000})
      const got = await consumeUntil(next, (all) => all.length === 3, {ack: false, timeoutMs: waitTimeoutMs, message: 'the new owner takes them over'})
      // when the paused one wakes up and extends what it still thinks it holds
      await paused.extend(held)
      // then they stay the new owner's: its acks settle them
      const [before] = await bus.stats({group, topic})
      expect(before.consumers.find((c) => c.name === 'paused')?.pending ?? 0).toBe(0)
      await next.ack(got)
      await until(async () => (await bus.stats({group, topic}))[0]?.pending === 0, {message: 'nothing pending after the new owner acks'})
    }, 60_000)

    it('two consumers of one group own disjoint partitions and together get every message once', async () => {
      const topic = uniqueName('topic')
      const partitions = 6
      await bus.ensureTopics([{name: topic, partitions}])
      const group = uniqueName('g')
      // A long visibility timeout: this test is about ownership, not redelivery.
      const a = await subscribe({group, topics: [topic], consumer: 'consumer-a', visibilityTimeoutMs: 60_000, batchSize: 7})
      const b = await subscribe({group, topics: [topic], consumer: 'consumer-b', visibilityTimeoutMs: 60_000, batchSize: 7})
      const owned = (s: Subscription) => s.assignment().map((p) => `${p.topic}:${p.partition}`)
      await until(
        async () => {
          await Promise.all([a.next(), b.next()])
          const oa = owned(a)
          const ob = owned(b)
          const union = new Set([...oa, ...ob])
          return oa.length > 0 && ob.length > 0 && oa.every((p) => !ob.includes(p)) && union.size === partitions
        },
        {timeoutMs: waitTimeoutMs, message: 'assignments disjoint and covering every partition'},
      )
      const keys = Array.from({length: 24}, (_, i) => `key-${i}`)
      // Interleaved by key, so any batch boundary splits keys if ownership were shared.
      for (let round = 0; round < 10; round++) await bus.publish(keys.flatMap((key) => messages(topic, key, 1, round)))
      const got: Record<string, Delivery[]> = {a: [], b: []}
      await until(
        async () => {
          const [ba, bb] = await Promise.all([a.next(), b.next()])
          got.a.push(...ba)
          got.b.push(...bb)
          await Promise.all([a.ack(ba), b.ack(bb)])
          return got.a.length + got.b.length >= 240
        },
        {timeoutMs: waitTimeoutMs, intervalMs: 0, message: 'all 240 messages consumed'},
      )
      const all = [...got.a, ...got.b]
      expect(all).toHaveLength(240)
      expect(new Set(all.map(keyOf)).size).toBe(240)
      // Each key's messages went to one consumer (its partition's owner), in order.
      for (const mine of [got.a, got.b]) {
        const last = new Map<string, number>()
        for (const d of mine) {
          expect(valueN(d)).toBe((last.get(d.key) ?? -1) + 1)
          last.set(d.key, valueN(d))
        }
      }
      const keysA = new Set(got.a.map((d) => d.key))
      expect(got.b.some((d) => keysA.has(d.key))).toBe(false)
      const [stats] = await bus.stats({group, topic})
      expect(stats.pending).toBe(0)
      expect(stats.lag).toBe(0)
      expect(stats.consumers.map((c) => c.name).sort()).toEqual(['consumer-a', 'consumer-b'])
      expect(stats.consumers.every((c) => c.live)).toBe(true)
    }, 60_000)

    it('when a consumer closes, the other takes its partitions and gets its unacked messages again', async () => {
      const partitions = 4
      const {topic, group, a, b} = await twoOwners(partitions)
      const keys = Array.from({length: 16}, (_, i) => `key-${i}`)
      await bus.publish(keys.flatMap((key) => messages(topic, key, 3)))
      // A takes a batch and never acks it; B keeps consuming and acking.
      const unackedByA = await consumeUntil(a, (all) => all.length > 0, {ack: false})
      await a.close()
      const gotB = await consumeUntil(
        b,
        (all) => new Set(all.map(keyOf)).size >= 48 && unackedByA.every((d) => all.some((x) => keyOf(x) === keyOf(d))),
        {timeoutMs: waitTimeoutMs, message: 'B receives everything, including what A left unacked'},
      )
      expect(b.assignment()).toHaveLength(partitions)
      for (const d of unackedByA) {
        const redelivered = gotB.find((x) => keyOf(x) === keyOf(d))!
        expect(redelivered.deliveryCount).toBeGreaterThan(1)
        expect(redelivered.id).toBe(d.id)
      }
      await until(async () => (await bus.stats({group, topic}))[0]?.pending === 0, {message: 'nothing pending'})
    }, 60_000)

    it('when a consumer stops polling without closing (a crash), the other takes over after its lease', async () => {
      const partitions = 4
      const {topic, group, a, b} = await twoOwners(partitions)
      const keys = Array.from({length: 16}, (_, i) => `key-${i}`)
      await bus.publish(keys.flatMap((key) => messages(topic, key, 3)))
      const unackedByA = await consumeUntil(a, (all) => all.length > 0, {ack: false})
      // A is now "dead": it never calls next() or close() again.
      const gotB = await consumeUntil(
        b,
        (all) => new Set(all.map(keyOf)).size >= 48 && unackedByA.every((d) => all.some((x) => keyOf(x) === keyOf(d))),
        {timeoutMs: waitTimeoutMs, message: 'B takes over the dead consumer and receives its unacked messages'},
      )
      for (const d of unackedByA) {
        const redelivered = gotB.find((x) => keyOf(x) === keyOf(d))!
        expect(redelivered.deliveryCount).toBeGreaterThan(1)
      }
      expect(b.assignment()).toHaveLength(partitions)
      // Stats tell the dead consumer from the live one (listed or not, A is not running).
      const [stats] = await bus.stats({group, topic})
      expect(stats.consumers.find((c) => c.name === 'consumer-a')?.live ?? false).toBe(false)
      expect(stats.consumers.find((c) => c.name === 'consumer-b')?.live).toBe(true)
    }, 60_000)

    it("a partition's new owner gets what the previous one left unacked first, before newer entries, without waiting the visibility timeout", async () => {
      // given an owner that took the first entries and died holding them (no ack, no next(), no close)
      const {topic, group, held} = await heldByOneOwner(2, 'dead')
      expect(held.map(valueN)).toEqual([0, 1])
      await bus.publish(messages(topic, 'agg', 2, 2))
      // when another consumer of the group takes the partition over
      const next = await subscribe({group, topics: [topic], consumer: 'next', visibilityTimeoutMs: 60_000})
      const got = await consumeUntil(next, (all) => all.length >= 4, {timeoutMs: waitTimeoutMs, message: 'the new owner gets all four'})
      // then the aggregate's order holds: 0 and 1 (redelivered) before 2 and 3
      expect(got.map((d) => [valueN(d), d.deliveryCount])).toEqual([
        [0, 2],
        [1, 2],
        [2, 1],
        [3, 1],
      ])
    }, 60_000)

    it('a new owner hands out each entry it took over once, however often it fetches before acking', async () => {
      // A runner keeps fetching while it works on what it holds: a takeover larger than one batch
      // must not hand (and count) the same entries again on every call, or a few crashes in a row
      // would spend an ordinary event's whole attempt budget.
      // given an owner that took 12 entries and died holding them
      const {topic, group, held} = await heldByOneOwner(12, 'dead')
      expect(held.map(valueN)).toEqual(Array.from({length: 12}, (_, i) => i))
      await bus.publish(messages(topic, 'agg', 3, 12))
      // when the next owner fetches in batches of 4 and acks nothing until it has all 15
      const next = await subscribe({group, topics: [topic], consumer: 'next', batchSize: 4, visibilityTimeoutMs: 60_000})
      const got = await consumeUntil(next, (all) => new Set(all.map(valueN)).size >= 15, {ack: false, timeoutMs: waitTimeoutMs, message: 'the new owner gets all 15'})
      // a few more fetches bring nothing it already holds
      for (let i = 0; i < 3; i++) got.push(...(await next.next()))
      // then each entry went out once, in order, the taken-over ones counted as their second delivery
      expect(got.map((d) => [valueN(d), d.deliveryCount])).toEqual(Array.from({length: 15}, (_, i) => [i, i < 12 ? 2 : 1]))
      await next.ack(got)
    }, 60_000)

    it('a consumer that stops fetching but beats keeps its partitions past the session timeout', async () => {
      const partitions = 4
      const {a, b} = await twoOwners(partitions)
      const ownedByA = a.assignment().length
      // A holds a full buffer: it only beats, for three session timeouts, while B keeps fetching.
      const until3 = Date.now() + 3 * sessionTimeoutMs
      while (Date.now() < until3) {
        await Promise.all([a.heartbeat(), b.next()])
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, sessionTimeoutMs / 5)))
      }
      expect(a.assignment()).toHaveLength(ownedByA)
      expect(b.assignment()).toHaveLength(partitions - ownedByA)
    }, 60_000)

    it('stats() reports lag, pending, oldest pending age and consumers', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      await bus.publish(messages(topic, 'k', 10))
      const group = uniqueName('g')
      const other = uniqueName('g-other')
      const sub = await subscribe({group, topics: [topic], consumer: 'stats-consumer', batchSize: 4, visibilityTimeoutMs: 60_000})
      await subscribe({group: other, topics: [topic]})
      let [stats] = await bus.stats({group, topic})
      expect(stats).toMatchObject({group, topic, lag: 10, pending: 0, oldestPendingAgeMs: null})
      const got = await consumeUntil(sub, (all) => all.length > 0, {ack: false})
      expect(got.length).toBeLessThanOrEqual(4)
      ;[stats] = await bus.stats({group, topic})
      expect(stats.lag).toBe(10 - got.length)
      expect(stats.pending).toBe(got.length)
      expect(stats.oldestPendingAgeMs).toBeGreaterThanOrEqual(0)
      const consumer = stats.consumers.find((c) => c.name === 'stats-consumer')
      expect(consumer).toBeDefined()
      expect(consumer!.pending).toBe(got.length)
      expect(consumer!.idleMs).toBeGreaterThanOrEqual(0)
      await sub.ack(got.slice(0, 1))
      ;[stats] = await bus.stats({group, topic})
      expect(stats.pending).toBe(got.length - 1)
      // Filters: by group only, by topic only.
      const byGroup = await bus.stats({group})
      expect(byGroup.map((s) => s.group)).toEqual([group])
      const byTopic = await bus.stats({topic})
      expect(byTopic.map((s) => s.group).sort()).toEqual([group, other].sort())
      expect((await bus.stats()).some((s) => s.group === group && s.topic === topic)).toBe(true)
    })

    it("startFrom 'latest' skips messages published before the group existed", async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish(messages(topic, 'old', 5))
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], startFrom: 'latest'})
      await bus.publish(messages(topic, 'new', 3))
      const got = await consumeUntil(sub, (all) => all.length >= 3)
      expect(got.map((d) => d.key)).toEqual(['new', 'new', 'new'])
      // Nothing old follows.
      expect(await consumeUntil(sub, () => true)).toEqual([])
      expect(await sub.next()).toEqual([])
    })

    it("startFrom 'earliest' (the default) delivers what was published before", async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish(messages(topic, 'old', 5))
      const sub = await subscribe({group: uniqueName('g'), topics: [topic]})
      const got = await consumeUntil(sub, (all) => all.length >= 5)
      expect(got.map(valueN)).toEqual([0, 1, 2, 3, 4])
    })

    it('read() pages through a partition outside any group', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 3}])
      await bus.publish(messages(topic, 'pager', 25))
      const partition = partitionFor('pager', 3)
      const pages: Delivery[][] = []
      let after: string | null = null
      for (let i = 0; i < 10; i++) {
        const page: Delivery[] = await bus.read(topic, partition, after, 10)
        pages.push(page)
        if (page.length === 0) break
        after = page[page.length - 1].id
      }
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5, 0])
      expect(pages.flat().map(valueN)).toEqual(Array.from({length: 25}, (_, i) => i))
      const empty = (partition + 1) % 3
      expect(await bus.read(topic, empty, null, 10)).toEqual([])
      // read() is not a group: no group appears.
      expect((await bus.topics()).find((t) => t.name === topic)!.groups).toEqual([])
    })

    it('trim({maxLen}) keeps the newest entries of each partition exactly', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      await bus.publish(messages(topic, 'k', 20))
      expect(await bus.trim(topic, {maxLen: 5})).toBe(15)
      expect((await bus.topics()).find((t) => t.name === topic)!.length).toBe(5)
      expect((await bus.read(topic, 0, null, 100)).map(valueN)).toEqual([15, 16, 17, 18, 19])
      expect(await bus.trim(topic, {maxLen: 5})).toBe(0)
    })

    it.runIf(options.trimByAge !== false)('trim({maxAgeMs}) removes entries older than the age', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      await bus.publish(messages(topic, 'k', 3))
      expect(await bus.trim(topic, {maxAgeMs: 3_600_000})).toBe(0)
      const [oldest] = await bus.read(topic, 0, null, 1)
      await until(() => Date.now() - oldest.enqueuedAt > 2_500, {message: 'old entries age'})
      await bus.publish(messages(topic, 'k', 2, 3))
      expect(await bus.trim(topic, {maxAgeMs: 1_500})).toBe(3)
      expect((await bus.read(topic, 0, null, 100)).map(valueN)).toEqual([3, 4])
    })

    it('positionAt() gives a read() cursor by enqueue time, or at the end', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      expect(await bus.positionAt(topic, 0, 'end')).toBeNull()
      await bus.publish(messages(topic, 'k', 3))
      await new Promise((resolve) => setTimeout(resolve, 60))
      const between = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 60))
      await bus.publish(messages(topic, 'k', 2, 3))
      const values = (list: Delivery[]) => list.map(valueN)
      expect(values(await bus.read(topic, 0, await bus.positionAt(topic, 0, between), 10))).toEqual([3, 4])
      expect(values(await bus.read(topic, 0, await bus.positionAt(topic, 0, 0), 10))).toEqual([0, 1, 2, 3, 4])
      const end = await bus.positionAt(topic, 0, 'end')
      expect(await bus.read(topic, 0, end, 10)).toEqual([])
      await bus.publish(messages(topic, 'k', 1, 5))
      expect(values(await bus.read(topic, 0, end, 10))).toEqual([5])
    })

    it('topics() reports length and groups', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      await bus.publish([...messages(topic, 'a', 4), ...messages(topic, 'b', 3)])
      const group = uniqueName('g')
      await subscribe({group, topics: [topic]})
      const before = Date.now()
      const info = (await bus.topics()).find((t) => t.name === topic)
      expect(info).toMatchObject({name: topic, partitions: 2, length: 7, groups: [group], appended: 7})
      expect(info!.firstAt).not.toBeNull()
      expect(info!.firstAt!).toBeLessThanOrEqual(info!.lastAt!)
      expect(info!.lastAt!).toBeLessThanOrEqual(before)
      // appended is a counter: trimming lowers the length, never it
      await bus.trim(topic, {maxLen: 1})
      expect((await bus.topics()).find((t) => t.name === topic)).toMatchObject({length: 2, appended: 7})
      const empty = uniqueName('topic')
      await bus.ensureTopics([{name: empty, partitions: 2, retention: {maxAgeMs: 60_000}}])
      expect((await bus.topics()).find((t) => t.name === empty)).toMatchObject({length: 0, appended: 0, firstAt: null, lastAt: null, retention: {maxAgeMs: 60_000}})
    })

    it('stats() reports each partition: lag, pending, its owner and an acked counter', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const keyOn = (partition: number) => Array.from({length: 100}, (_, i) => `k${i}`).find((k) => partitionFor(k, 2) === partition)!
      await bus.publish([...messages(topic, keyOn(0), 6), ...messages(topic, keyOn(1), 3)])
      const group = uniqueName('g')
      const sub = await subscribe({group, topics: [topic], consumer: 'only', batchSize: 20, visibilityTimeoutMs: 60_000})
      const got = await consumeUntil(sub, (all) => all.length === 9, {ack: false})
      await sub.ack(got.filter((d) => d.partition === 0).slice(0, 4))
      await bus.publish(messages(topic, keyOn(1), 2, 3))
      const [stats] = await bus.stats({group, topic})
      expect(stats.partitions.map(({partition, lag, pending, owner, acked}) => ({partition, lag, pending, owner, acked}))).toEqual([
        {partition: 0, lag: 0, pending: 2, owner: 'only', acked: 4},
        {partition: 1, lag: 2, pending: 3, owner: 'only', acked: 0},
      ])
      expect(stats.partitions[0].oldestPendingAgeMs).toBeGreaterThanOrEqual(0)
      expect(stats.partitions[1].oldestPendingAgeMs).toBeGreaterThanOrEqual(0)
      expect(stats).toMatchObject({lag: 2, pending: 5, acked: 4})
      await sub.close()
      const [after] = await bus.stats({group, topic})
      expect(after.partitions.map((p) => p.owner)).toEqual([null, null])
    })

    it('close() settles an in-flight next(); afterwards operations reject', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 1}])
      const sub = await subscribe({group: uniqueName('g'), topics: [topic], blockMs: 15_000})
      const waiting = sub.next()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await bus.close()
      await settlesWithin(waiting, 10_000, 'next() in flight during close()')
      await expect(bus.publish(messages(topic, 'k', 1))).rejects.toThrow()
      await expect(bus.subscribe({group: uniqueName('g'), consumer: 'c', topics: [topic]})).rejects.toThrow()
    }, 30_000)

    it('a closed subscription leaves the group: its in-flight next() settles and next() rejects', async () => {
      const topic = uniqueName('topic')
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const group = uniqueName('g')
      const sub = await subscribe({group, topics: [topic], consumer: 'leaving', blockMs: 15_000})
      const waiting = sub.next()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await sub.close()
      await settlesWithin(waiting, 10_000, 'next() in flight during close()')
      await expect(sub.next()).rejects.toThrow()
      expect(sub.assignment()).toEqual([])
    }, 30_000)
  })
}
