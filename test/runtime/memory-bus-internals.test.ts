/**
 * MemoryBus-only behaviour, outside the portable contract (test/contracts/bus.contract.ts): automatic
 * retention on publish, topic spec guards, one live consumer per name, and one instance shared by
 * many subscribers of the process (how the simulator uses it).
 */
import {describe, it, expect} from 'vitest'
import {createMemoryBus} from '../../src/adapters/memory/index.js'
import {consumeUntil, settlesWithin, uniqueName} from '../contracts/helpers.js'
import {partitionFor} from '../../src/core/partition.js'

const msg = (topic: string, key: string, n: number) => ({topic, key, value: String(n), headers: {}})

describe('MemoryBus (in-process only)', () => {
  it('yields to the event loop on every next(): timers run while a backlog is consumed', async () => {
    // Nothing here waits on I/O: without the yield a consumer draining a backlog runs in resolved
    // promises only, and every timer (rate control, progress lines, Ctrl+C) waits for the whole backlog.
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 1}])
    const sub = await bus.subscribe({group: 'g', consumer: 'c', topics: ['t'], batchSize: 10, blockMs: 10})
    await bus.publish(Array.from({length: 2000}, (_, i) => msg('t', 'k', i)))
    let timerFired = false
    setTimeout(() => (timerFired = true), 0)
    let consumed = 0
    let consumedBeforeTimer = 0
    while (consumed < 2000) {
      const deliveries = await sub.next()
      await sub.ack(deliveries)
      consumed += deliveries.length
      if (!timerFired) consumedBeforeTimer += deliveries.length
    }
    expect(timerFired).toBe(true)
    expect(consumedBeforeTimer).toBeLessThan(2000)
    await bus.close()
  })

  it('applies a topic maxLen retention on publish, approximately (at most 10% over)', async () => {
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 1, retention: {maxLen: 100}}])
    for (let i = 0; i < 1000; i++) await bus.publish([msg('t', 'k', i)])
    const [info] = await bus.topics()
    expect(info.length).toBeGreaterThanOrEqual(100)
    expect(info.length).toBeLessThanOrEqual(110)
    const entries = await bus.read('t', 0, null, 1000)
    expect(entries[entries.length - 1].value).toBe('999')
    await bus.close()
  })

  it('a group whose cursor was trimmed past skips to the oldest retained entry', async () => {
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 1}])
    const sub = await bus.subscribe({group: 'g', consumer: 'c', topics: ['t'], blockMs: 10})
    await bus.publish(Array.from({length: 10}, (_, i) => msg('t', 'k', i)))
    expect(await bus.trim('t', {maxLen: 3})).toBe(7)
    expect((await bus.stats({group: 'g'}))[0].lag).toBe(3)
    const got = await consumeUntil(sub, (all) => all.length >= 3)
    expect(got.map((d) => d.value)).toEqual(['7', '8', '9'])
    await bus.close()
  })

  it('refuses to change the partition count of a topic, and unknown topics', async () => {
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 4}])
    await expect(bus.ensureTopics([{name: 't', partitions: 8}])).rejects.toThrow(/move keys/)
    await expect(bus.ensureTopics([{name: 'u', partitions: 0}])).rejects.toThrow(/positive integer/)
    await expect(bus.publish([msg('nope', 'k', 1)])).rejects.toThrow(/ensureTopics/)
    await expect(bus.subscribe({group: 'g', consumer: 'c', topics: ['nope']})).rejects.toThrow(/ensureTopics/)
    await bus.close()
  })

  it('refuses a second live consumer with the same name in a group', async () => {
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 1}])
    await bus.subscribe({group: 'g', consumer: 'same', topics: ['t']})
    await expect(bus.subscribe({group: 'g', consumer: 'same', topics: ['t']})).rejects.toThrow(/already a live member/)
    await bus.close()
  })

  it('a consumer blocked in a long next() takes over at once when the other consumer leaves', async () => {
    const bus = createMemoryBus()
    await bus.ensureTopics([{name: 't', partitions: 2}])
    const a = await bus.subscribe({group: 'g', consumer: 'a', topics: ['t']})
    const b = await bus.subscribe({group: 'g', consumer: 'b', topics: ['t'], blockMs: 60_000})
    const aPartition = a.assignment()[0].partition
    const key = Array.from({length: 50}, (_, i) => `k${i}`).find((k) => partitionFor(k, 2) === aPartition)!
    await bus.publish([msg('t', key, 1)])
    const waiting = b.next()
    await a.close()
    const result = await settlesWithin(waiting, 10_000, "b's blocked next()")
    expect(result).toMatchObject({status: 'fulfilled', value: [{key, value: '1'}]})
    await bus.close()
  })

  it('one instance serves many groups and consumers at once, each group getting everything once', async () => {
    const bus = createMemoryBus()
    const topic = uniqueName('t')
    await bus.ensureTopics([{name: topic, partitions: 8}])
    const groups = ['projections', 'notifications', 'leaderboards']
    const received = new Map<string, string[]>(groups.map((g) => [g, []]))
    const total = 20_000
    const controller = new AbortController()
    const workers = groups.flatMap((group) =>
      [0, 1, 2].map(async (n) => {
        const sub = await bus.subscribe({group, consumer: `${group}-${n}`, topics: [topic], batchSize: 256, blockMs: 50})
        const deadline = Date.now() + 20_000
        while (!controller.signal.aborted && Date.now() < deadline) {
          const batch = await sub.next(controller.signal)
          for (const d of batch) received.get(group)!.push(d.value)
          await sub.ack(batch)
        }
        await sub.close()
      }),
    )
    for (let i = 0; i < total; i += 500) {
      await bus.publish(Array.from({length: 500}, (_, j) => msg(topic, `agg-${(i + j) % 97}`, i + j)))
    }
    const deadline = Date.now() + 20_000
    while ([...received.values()].some((v) => v.length < total) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    controller.abort()
    await Promise.all(workers)
    for (const group of groups) {
      const values = received.get(group)!
      expect(values).toHaveLength(total)
      expect(new Set(values).size).toBe(total)
    }
    const stats = await bus.stats({topic})
    expect(stats.map((s) => [s.group, s.lag, s.pending])).toEqual(groups.map((g) => [g, 0, 0]))
    await bus.close()
  })
})
