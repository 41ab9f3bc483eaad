/** tail over the in-process bus: order across partitions, a start time, filters, limit, follow. */
import {describe, expect, it} from 'vitest'
import {MemoryBus} from '../../src/adapters/memory/memory-bus.js'
import {tail, type TailedEvent} from '../../src/ops/tail.js'
import {line} from '../../src/commands/tail.js'

const event = (n: number, type: string, aggregate: string, extra: Record<string, unknown> = {}) => ({
  topic: 't',
  key: aggregate,
  value: JSON.stringify({event_id: `e${n}`, event_type: type, correlation_id: `c${n % 2}`, metadata: {aggregate_id: aggregate}, payload: {n, ...extra}}),
  headers: {event_type: type, event_id: `e${n}`},
})

async function collect(events: AsyncIterable<TailedEvent>): Promise<string[]> {
  const out: string[] = []
  for await (const e of events) out.push(String(e.envelope?.event_id))
  return out
}

describe('tail', () => {
  it('reads every partition in the order events reached the bus, from a time, filtered, limited', async () => {
    const bus = new MemoryBus()
    try {
      await bus.ensureTopics([{name: 't', partitions: 4}])
      for (let n = 0; n < 6; n++) await bus.publish([event(n, n % 2 ? 'social.content.liked' : 'user.registered', `agg-${n % 3}`, {author_id: n === 4 ? 'ada' : 'bob'})])
      await new Promise((resolve) => setTimeout(resolve, 30))
      const middle = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 30))
      for (let n = 6; n < 8; n++) await bus.publish([event(n, 'user.registered', 'agg-x')])
      expect(await collect(tail({bus, topics: ['t'], from: 'beginning', follow: false}))).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7'])
      expect(await collect(tail({bus, topics: ['t'], from: middle, follow: false}))).toEqual(['e6', 'e7'])
      expect(await collect(tail({bus, topics: ['t'], from: 'beginning', follow: false, filter: {types: ['social.*']}}))).toEqual(['e1', 'e3', 'e5'])
      expect(await collect(tail({bus, topics: ['t'], from: 'beginning', follow: false, filter: {aggregateId: 'agg-1'}}))).toEqual(['e1', 'e4'])
      expect(await collect(tail({bus, topics: ['t'], from: 'beginning', follow: false, filter: {correlationId: 'c1'}, limit: 2}))).toEqual(['e1', 'e3'])
      expect(await collect(tail({bus, topics: ['t'], from: 'beginning', follow: false, filter: {where: [{path: 'payload.author_id', value: 'ada'}]}}))).toEqual(['e4'])
    } finally {
      await bus.close()
    }
  })

  it('follows from the end: only what is published afterwards, until aborted', async () => {
    const bus = new MemoryBus()
    try {
      await bus.ensureTopics([{name: 't', partitions: 2}])
      await bus.publish([event(0, 'user.registered', 'a')])
      const stop = new AbortController()
      const seen: string[] = []
      const following = (async () => {
        for await (const e of tail({bus, topics: ['t'], from: 'end', follow: true, pollMs: 10, signal: stop.signal})) {
          seen.push(String(e.envelope?.event_id))
          if (seen.length === 2) stop.abort()
        }
      })()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await bus.publish([event(1, 'user.registered', 'a'), event(2, 'user.registered', 'b')])
      await following
      expect(seen).toEqual(['e1', 'e2'])
    } finally {
      await bus.close()
    }
  })

  it('a terminal line fits 80 columns', () => {
    const long = {delivery: {id: '1', topic: 't', partition: 11, key: 'k'.repeat(40), value: '', headers: {}, deliveryCount: 0, enqueuedAt: Date.now()}, envelope: {event_type: 'x'.repeat(60), event_id: 'y'.repeat(36)}}
    expect(line(long).length).toBeLessThanOrEqual(80)
  })

  it('a terminal line shows the control characters of a type, key or id from the bus escaped', () => {
    const hostile = {
      delivery: {id: '1-0', topic: 't', partition: 0, key: '\u001b[2Jkey', value: '\u001b]52;c;eA==\u0007', headers: {event_type: 'x\u001b]0;title\u0007', event_id: '\u0000\u009b2J'}, deliveryCount: 0, enqueuedAt: Date.now()},
      envelope: null,
    }
    const shown = line(hostile)
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
    expect(shown).toContain('x\\u001b]0;title\\u0007')
    expect(shown).toContain('\\u001b[')
    expect(shown).toContain('\\u009b2J')
  })
})
