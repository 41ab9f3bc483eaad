/**
 * The lag view-model on the in-process bus: the figures per group, topic and partition, and from two
 * readings the rates, trend and ETA; the CI gate; the 80-column rendering.
 */
import {describe, expect, it} from 'vitest'
import {MemoryBus} from '../../src/adapters/memory/memory-bus.js'
import {partitionFor} from '../../src/core/partition.js'
import {byGroup, lagRows, overLimit, sampleLag, type LagSample} from '../../src/ops/lag.js'
import {renderLag} from '../../src/commands/lag.js'
import type {GroupStats} from '../../src/core/ports.js'
import {createStyle, stripAnsi} from '../../src/cli/style.js'

const message = (topic: string, key: string, n: number) => ({topic, key, value: `${key}-${n}`, headers: {event_id: `${key}-${n}`}})

describe('lag', () => {
  it('reads each group, topic and partition from the bus, and rates from two readings', async () => {
    const bus = new MemoryBus()
    try {
      const topic = 'tektree.test'
      await bus.ensureTopics([{name: topic, partitions: 2}])
      const key0 = ['a', 'b', 'c', 'd', 'e'].find((k) => partitionFor(k, 2) === 0)!
      await bus.publish(Array.from({length: 10}, (_, i) => message(topic, key0, i)))
      const sub = await bus.subscribe({group: 'svc', consumer: 'c1', topics: [topic], batchSize: 4})
      const got = await sub.next()
      await sub.ack(got.slice(0, 3))
      const first = await sampleLag(bus, {}, () => 1_000)
      const [row, p0, p1] = lagRows(null, first, {partitions: true})
      expect(row).toMatchObject({group: 'svc', topic, partition: null, lag: 6, pending: 1, consumers: ['c1'], inPerSec: null, trend: null, etaMs: null})
      expect(p0).toMatchObject({partition: 0, lag: 6, pending: 1, consumers: ['c1']})
      expect(p1).toMatchObject({partition: 1, lag: 0, pending: 0, etaMs: 0})
      // two seconds later: 4 more acked, 2 more arrived
      await sub.ack(got.slice(3))
      await sub.ack(await sub.next())
      await bus.publish([message(topic, key0, 10), message(topic, key0, 11)])
      const second = await sampleLag(bus, {}, () => 3_000)
      const [later] = lagRows(first, second)
      expect(later).toMatchObject({lag: 4, pending: 0, inPerSec: 1, outPerSec: 2.5, trend: 'shrinking'})
      // backlog 4 drained at 2.5 - 1 = 1.5 a second
      expect(later.etaMs).toBe(Math.round((4 / 1.5) * 1000))
      await sub.close()
    } finally {
      await bus.close()
    }
  })

  it('a backlog that does not move is steady with no ETA; one that grows has none either', () => {
    const stats = (lag: number, acked: number): GroupStats => ({group: 'g', topic: 't', lag, pending: 0, oldestPendingAgeMs: null, consumers: [], partitions: [], acked})
    const at = (ms: number, groups: GroupStats[]): LagSample => ({at: ms, groups})
    expect(lagRows(at(0, [stats(50, 0)]), at(1000, [stats(50, 0)]))[0]).toMatchObject({trend: 'steady', etaMs: null, inPerSec: 0, outPerSec: 0})
    expect(lagRows(at(0, [stats(50, 0)]), at(1000, [stats(80, 10)]))[0]).toMatchObject({trend: 'growing', etaMs: null, inPerSec: 40, outPerSec: 10})
    expect(lagRows(at(0, [stats(50, null as unknown as number)]), at(1000, [stats(80, 10)]))[0]).toMatchObject({inPerSec: null, trend: null})
  })

  it('the gate counts lag and pending, per group and topic', () => {
    const rows = lagRows(null, {
      at: 0,
      groups: [
        {group: 'a', topic: 't', lag: 0, pending: 3, oldestPendingAgeMs: 10, consumers: [], partitions: [], acked: 0},
        {group: 'b', topic: 't', lag: 0, pending: 0, oldestPendingAgeMs: null, consumers: [], partitions: [], acked: 0},
      ],
    })
    expect(overLimit(rows, 0).map((r) => r.group)).toEqual(['a'])
    expect(overLimit(rows, 3)).toEqual([])
  })

  it('colours the trend only where colour is allowed, and the colour takes no column', () => {
    const sample = (lag: number, acked: number): LagSample => ({at: lag === 50 ? 0 : 1000, groups: [{group: 'g', topic: 't', lag, pending: 0, oldestPendingAgeMs: null, consumers: [], partitions: [], acked}]})
    const rows = lagRows(sample(50, 0), sample(80, 10))
    const coloured = renderLag(rows, createStyle(process.stdout, {color: true, width: 80}))
    const plain = renderLag(rows, createStyle(process.stdout, {color: false, width: 80}))
    expect(coloured.join('\n')).toContain('\u001b[')
    expect(plain.join('\n')).not.toContain('\u001b[')
    expect(coloured.map(stripAnsi)).toEqual(plain)
  })

  it("names a group's consumers over all its topics, not only its first topic's", () => {
    const stats = (topic: string, consumers: Array<{name: string; idleMs: number; live?: boolean}>) => ({
      group: 'analytics',
      topic,
      lag: 0,
      pending: 0,
      oldestPendingAgeMs: null,
      consumers: consumers.map((c) => ({live: true, ...c, pending: 0})),
      partitions: [],
      acked: 0,
    })
    const rows = lagRows(null, {
      at: 0,
      groups: [
        // The group's own retry topic, never written to: redis-server lists no consumer on it.
        stats('tektree.direct.analytics', []),
        stats('tektree.knowledge', [{name: 'w1', idleMs: 900}]),
        stats('tektree.user', [{name: 'w1', idleMs: 40}, {name: 'w2', idleMs: 70}]),
        // a consumer gone, its pending entries left: not counted as running
        stats('tektree.social', [{name: 'gone', idleMs: 5, live: false}]),
      ],
    })
    expect(renderLag(rows)[1]).toBe('analytics (2 consumers, least idle 40ms)')
  })

  it('renders within 80 columns, long names cut', () => {
    const long = 'a-consumer-group-with-a-name-far-too-long-for-any-column'
    const rows = lagRows(null, {
      at: 0,
      groups: [
        {
          group: long,
          topic: `tektree.${long}`,
          lag: 123_456_789,
          pending: 9_999_999,
          oldestPendingAgeMs: 86_400_000 * 3,
          consumers: [{name: long, pending: 1, idleMs: 5, live: true}],
          partitions: [{partition: 11, lag: 1, pending: 2, oldestPendingAgeMs: 3, owner: long, acked: 4}],
          acked: 4,
        },
      ],
    }, {partitions: true})
    const lines = renderLag(rows)
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80)
    expect(lines.join('\n')).toContain('…')
  })
})

describe('byGroup', () => {
  it("adds a group's topics up, so lagRows gives one row per group with the same arithmetic", () => {
    const stats = (topic: string, lag: number, pending: number, acked: number, oldest: number | null) => ({
      group: 'g',
      topic,
      lag,
      pending,
      oldestPendingAgeMs: oldest,
      consumers: [{name: 'c1', pending, idleMs: topic === 'a' ? 50 : 10, live: true}],
      partitions: [{partition: 0, lag, pending, oldestPendingAgeMs: oldest, owner: 'c1', acked}],
      acked,
    })
    const before = byGroup({at: 0, groups: [stats('a', 10, 0, 100, null), stats('b', 10, 0, 100, null)]})
    const now = byGroup({at: 1000, groups: [stats('a', 5, 1, 110, 200), stats('b', 0, 0, 125, null)]})
    expect(now.groups).toHaveLength(1)
    expect(now.groups[0].consumers).toEqual([{name: 'c1', pending: 1, idleMs: 10, live: true}])
    const [row] = lagRows(before, now)
    expect(row).toMatchObject({group: 'g', topic: '*', lag: 5, pending: 1, oldestPendingAgeMs: 200, outPerSec: 35, inPerSec: 21, trend: 'shrinking'})
  })
})
