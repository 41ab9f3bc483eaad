/**
 * The Bus contract against RedisBus on the integration tier's redis-server. Each test gets its own
 * key prefix (deleted afterwards) and a 1 s session timeout so takeover tests stay short. Then what
 * only this backend has: the key layout of docs/stream-layout.md and borrowing a caller's client.
 */
import {afterEach, describe, expect, inject, it} from 'vitest'
import {deleteTestKeys} from '../support/redis-server.js'
import {Redis} from 'ioredis'
import {busContract} from '../contracts/bus.contract.js'
import {consumeUntil, uniqueName} from '../contracts/helpers.js'
import {partitionFor} from '../../src/core/partition.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'

const redisUrl = inject('redisUrl')

describe.skipIf(!redisUrl)(`RedisBus (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  busContract(
    'RedisBus',
    async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
      return {
        bus,
        cleanup: async () => {
          await deleteTestKeys(redisUrl!, prefix)
        },
      }
    },
    {visibilityTimeoutMs: 400},
  )

  describe('lag', () => {
    it("is not what XINFO GROUPS says when Redis's entries-read is short (as after an AOF replay), but what waits", async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
      const redis = new Redis(redisUrl!)
      try {
        const topic = 'tektree.test'
        await bus.ensureTopics([{name: topic, partitions: 1}])
        const message = (n: number) => ({topic, key: 'agg-1', value: `e${n}`, headers: {event_id: `e${n}`}})
        await bus.publish(Array.from({length: 20}, (_, n) => message(n)))
        const sub = await bus.subscribe({group: 'g', consumer: 'c', topics: [topic], blockMs: 50})
        await consumeUntil(sub, (all) => all.length === 20)
        // given a group that has read everything while Redis counts only 5 of its reads (a restart
        // of redis-server 7.0 replaying its AOF was seen to leave entries-read short like this)
        const stream = bus.streamKey(topic, 0)
        await redis.call('XGROUP', 'SETID', stream, 'g', '$', 'ENTRIESREAD', '5')
        const lagOfRedis = async () => {
          const groups = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][]
          const fields = groups[0]!
          return Number(fields[fields.indexOf('lag') + 1])
        }
        expect(await lagOfRedis()).toBe(15)
        const lagOfBus = async () => (await bus.stats()).find((s) => s.group === 'g')!.lag
        // then the bus says what waits: nothing, and then the 3 entries published next
        expect(await lagOfBus()).toBe(0)
        await bus.publish([message(20), message(21), message(22)])
        expect(await lagOfRedis()).toBe(18)
        expect(await lagOfBus()).toBe(3)
        // and after a lost connection (the server may have restarted, so what was learned may no
        // longer hold) it counts again, once: still what waits
        bus.client.emit('close')
        expect(await lagOfBus()).toBe(3)
        await bus.publish([message(23)])
        expect(await lagOfRedis()).toBe(19)
        expect(await lagOfBus()).toBe(4)
        await sub.close()
      } finally {
        redis.disconnect()
        await bus.close()
        await deleteTestKeys(redisUrl!, prefix)
      }
    })

    it('is what waits at the first look of a new process, whose group is behind (a one-shot `tektree lag`)', async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
      const redis = new Redis(redisUrl!)
      let oneShot: Awaited<ReturnType<typeof createRedisBus>> | undefined
      try {
        const topic = 'tektree.test'
        await bus.ensureTopics([{name: topic, partitions: 1}])
        const message = (n: number) => ({topic, key: 'agg-1', value: `e${n}`, headers: {event_id: `e${n}`}})
        await bus.publish(Array.from({length: 30}, (_, n) => message(n)))
        const sub = await bus.subscribe({group: 'g', consumer: 'c', topics: [topic], blockMs: 50})
        await consumeUntil(sub, (all) => all.length === 30)
        await sub.close()
        // given a group that has read 20 of 30 entries while Redis counts only 2 of its reads
        const stream = bus.streamKey(topic, 0)
        const ids = ((await redis.call('XRANGE', stream, '-', '+')) as [string, string[]][]).map(([id]) => id)
        await redis.call('XGROUP', 'SETID', stream, 'g', ids[19]!, 'ENTRIESREAD', '2')
        const groups = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][]
        expect(Number(groups[0]![groups[0]!.indexOf('lag') + 1])).toBe(28)
        // when a process that has learned nothing yet looks
        oneShot = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
        const lagOf = async (b: typeof bus) => (await b.stats()).find((s) => s.group === 'g')!.lag
        // then it says what waits, and goes on saying it as entries come
        expect(await lagOf(oneShot)).toBe(10)
        await bus.publish([message(30), message(31)])
        expect(await lagOf(oneShot)).toBe(12)
      } finally {
        redis.disconnect()
        await oneShot?.close()
        await bus.close()
        await deleteTestKeys(redisUrl!, prefix)
      }
    })
  })

  describe('takeover keeps order', () => {
    it("a dead owner's pending entries reach the partition's new owner before newer ones, without waiting the visibility timeout", async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 600})
      try {
        const topic = 'tektree.test'
        await bus.ensureTopics([{name: topic, partitions: 1}])
        const message = (n: number) => ({topic, key: 'agg-1', value: `e${n}`, headers: {event_id: `e${n}`}})
        await bus.publish([message(1)])
        // given an owner that took e1 and died holding it (it never acks, never calls next() again)
        const dead = await bus.subscribe({group: 'g', consumer: 'dead', topics: [topic], blockMs: 50, visibilityTimeoutMs: 60_000})
        const first = await consumeUntil(dead, (all) => all.length === 1, {ack: false})
        expect(first.map((d) => d.value)).toEqual(['e1'])
        await bus.publish([message(2)])
        // when another consumer takes the partition over (after the dead one's lease expires)
        const next = await bus.subscribe({group: 'g', consumer: 'next', topics: [topic], blockMs: 50, visibilityTimeoutMs: 60_000})
        const got = await consumeUntil(next, (all) => all.length >= 2, {timeoutMs: 10_000})
        // then e1 comes first (a redelivery), then e2: the aggregate's order holds
        expect(got.map((d) => [d.value, d.deliveryCount])).toEqual([
          ['e1', 2],
          ['e2', 1],
        ])
        await next.close()
      } finally {
        await bus.close()
        await deleteTestKeys(redisUrl!, prefix)
      }
    })

    it("an entry a previous owner's late read took comes before newer entries, though that owner never gave it back", async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 600})
      const stale = new Redis(redisUrl!, {maxRetriesPerRequest: 1})
      try {
        const topic = 'tektree.test'
        await bus.ensureTopics([{name: topic, partitions: 1}])
        const message = (n: number) => ({topic, key: 'agg-1', value: `e${n}`, headers: {event_id: `e${n}`}})
        const next = await bus.subscribe({group: 'g', consumer: 'next', topics: [topic], blockMs: 50, visibilityTimeoutMs: 60_000})
        // (its takeover of the partition done: nothing was pending)
        expect(await next.next()).toEqual([])
        // given a read the partition's previous owner sent before it lost the partition (stopped,
        // paused, or on a connection it no longer watches), still blocked on the stream
        await stale.client('SETNAME', 'stale-reader')
        const late = stale.call('XREADGROUP', 'GROUP', 'g', 'old', 'COUNT', '10', 'BLOCK', '5000', 'STREAMS', bus.streamKey(topic, 0), '>')
        for (let i = 0; i < 100 && !/name=stale-reader .*cmd=xreadgroup/.test(String(await bus.client.call('CLIENT', 'LIST'))); i++) await new Promise((r) => setTimeout(r, 20))
        // when e1 is published (the late read takes it) and then e2
        await bus.publish([message(1)])
        expect(JSON.stringify(await late)).toContain('e1')
        await bus.publish([message(2)])
        // then the owner hands out e1 (claimed back) before e2, not e2 alone while e1 waits out the visibility timeout
        const got = await consumeUntil(next, (all) => all.length >= 2, {timeoutMs: 3_000})
        expect(got.map((d) => [d.value, d.deliveryCount])).toEqual([
          ['e1', 2],
          ['e2', 1],
        ])
        await next.close()
      } finally {
        stale.disconnect()
        await bus.close()
        await deleteTestKeys(redisUrl!, prefix)
      }
    })
  })

  describe('backend specifics', () => {
    const prefixes: string[] = []
    const withAdmin = async <T>(fn: (admin: Redis) => Promise<T>): Promise<T> => {
      const admin = new Redis(redisUrl!, {lazyConnect: true, maxRetriesPerRequest: 1})
      try {
        await admin.connect()
        return await fn(admin)
      } finally {
        admin.disconnect()
      }
    }
    afterEach(async () => {
      for (const prefix of prefixes.splice(0)) await deleteTestKeys(redisUrl!, prefix)
    })

    it('lays out one stream per topic partition with k/v/h fields and topic metadata in a hash', async () => {
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const bus = await createRedisBus({url: redisUrl!, prefix})
      try {
        await bus.ensureTopics([{name: 'tektree.knowledge', partitions: 4, retention: {maxLen: 1000}}])
        const [id] = await bus.publish([{topic: 'tektree.knowledge', key: 'q-1', value: '{"a":1}', headers: {event_id: 'e1'}}])
        const stream = `${prefix}:tektree.knowledge:p${partitionFor('q-1', 4)}`
        const entries = await withAdmin((admin) => admin.xrange(stream, '-', '+'))
        expect(entries).toEqual([[id, ['k', 'q-1', 'v', '{"a":1}', 'h', '{"event_id":"e1"}']]])
        const meta = await withAdmin((admin) => admin.hget(`${prefix}:tektree:topics`, 'tektree.knowledge'))
        expect(JSON.parse(meta!)).toEqual({partitions: 4, retention: {maxLen: 1000}})
        const sub = await bus.subscribe({group: 'svc', consumer: 'c1', topics: ['tektree.knowledge'], blockMs: 100})
        await consumeUntil(sub, (all) => all.length === 1, {ack: false})
        expect(await withAdmin((admin) => admin.zrange(`${prefix}:tektree:members:svc`, 0, -1))).toEqual(['c1'])
        const lease = await withAdmin((admin) => admin.get(`${prefix}:tektree:lease:svc:tektree.knowledge:p${partitionFor('q-1', 4)}`))
        expect(lease?.startsWith('c1#')).toBe(true)
        await sub.close()
        // close() hands over at once: membership and leases are gone.
        expect(await withAdmin((admin) => admin.zrange(`${prefix}:tektree:members:svc`, 0, -1))).toEqual([])
        expect(await withAdmin((admin) => admin.keys(`${prefix}:tektree:lease:*`))).toEqual([])
      } finally {
        await bus.close()
      }
    })

    it('{client}: commands use the caller client, blocking reads a duplicate; close() closes only the duplicate', async () => {
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const client = new Redis(redisUrl!)
      try {
        const bus = await createRedisBus({client, prefix})
        await bus.ensureTopics([{name: 'topic', partitions: 2}])
        await bus.publish([{topic: 'topic', key: 'k', value: 'v', headers: {}}])
        const group = uniqueName('g')
        const sub = await bus.subscribe({group, consumer: 'c', topics: ['topic'], blockMs: 100})
        expect(await consumeUntil(sub, (all) => all.length === 1)).toHaveLength(1)
        const names = async () => (await client.client('LIST')) as string
        expect(await names()).toContain(`name=tektree:${group}:c`)
        await bus.close()
        expect(await client.ping()).toBe('PONG')
        // The duplicate is gone (CLIENT LIST may lag a moment behind the socket close).
        await expect.poll(names, {timeout: 10_000}).not.toContain(`name=tektree:${group}:c`)
      } finally {
        client.disconnect()
      }
    })
  })
})
