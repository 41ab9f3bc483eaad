import {describe, expect, it} from 'vitest'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {makePoison, pickDuplicates, reorderInPlace, SimulatedFailure, withFailures} from '../../src/simulator/faults.js'
import {createRandom} from '../../src/simulator/random.js'

const envelope = (id: string): EventEnvelope => ({
  event_id: id,
  event_type: 'user.registered',
  event_version: '1.0.0',
  timestamp: new Date().toISOString(),
  source_service: 'user',
  payload: {user_id: id},
  trace_id: id,
  correlation_id: id,
  causation_id: null,
  producer_id: 'test',
  metadata: {},
})

describe('poison', () => {
  it('garbage cannot be parsed; the others parse but are not valid events', () => {
    const r = createRandom(1)
    const garbage = makePoison(r, 'tektree.user', 'user.registered', 'garbage')
    expect(() => JSON.parse(garbage.value)).toThrow()
    const notEnvelope = JSON.parse(makePoison(r, 'tektree.user', undefined, 'not-an-envelope').value)
    expect(notEnvelope.event_id).toBeUndefined()
    const invalid = JSON.parse(makePoison(r, 'tektree.user', 'user.registered', 'schema-invalid').value)
    expect(invalid.event_type).toBe('user.registered')
    expect(invalid.payload.user_id).toBe(42)
  })
})

describe('duplicates', () => {
  it('samples about pct% of the same items', () => {
    const r = createRandom(2)
    const items = Array.from({length: 10_000}, (_, i) => i)
    const dups = pickDuplicates(items, 5, r)
    expect(dups.length).toBe(500)
    expect(dups.every((d) => items.includes(d))).toBe(true)
    expect(pickDuplicates(items, 0, r)).toEqual([])
  })
})

describe('reordering', () => {
  it('never reorders one aggregate, but does reorder across aggregates', () => {
    const r = createRandom(3)
    const items = Array.from({length: 2000}, (_, i) => ({key: `k${i % 7 === 0 ? 0 : i % 5}`, seq: i}))
    const before = new Map<string, number[]>()
    for (const it of items) before.set(it.key, [...(before.get(it.key) ?? []), it.seq])
    const copy = [...items]
    const swaps = reorderInPlace(copy, 30, r, (x) => x.key)
    expect(swaps).toBeGreaterThan(100)
    expect(copy.map((x) => x.seq)).not.toEqual(items.map((x) => x.seq))
    const after = new Map<string, number[]>()
    for (const it of copy) after.set(it.key, [...(after.get(it.key) ?? []), it.seq])
    expect(after).toEqual(before)
    // moved by at most one place (a small window)
    copy.forEach((x, i) => expect(Math.abs(x.seq - i)).toBeLessThanOrEqual(1))
  })
})

describe('handler failures', () => {
  const service = () => {
    const handled: string[] = []
    return {handled, def: {name: 'gamification', consumes: ['user.*'], handle: async (e: EventEnvelope, _ctx: unknown) => void handled.push(e.event_id)}}
  }

  it('transient: fails the first attempt of about rate of events, the retry succeeds', async () => {
    const {handled, def} = service()
    const wrapped = withFailures(def, {transient: 0.2})
    let failed = 0
    for (let i = 0; i < 2000; i++) {
      const e = envelope(`e-${i}`)
      try {
        await wrapped.handle(e, {})
      } catch (error) {
        expect(error).toBeInstanceOf(SimulatedFailure)
        failed++
        await wrapped.handle(e, {}) // the retry
      }
    }
    expect(handled).toHaveLength(2000)
    expect(failed).toBeGreaterThan(300)
    expect(failed).toBeLessThan(500)
    expect(wrapped.consumes).toEqual(['user.*'])
  })

  it('deterministic by event id and attempt (ctx.attempt wins)', async () => {
    const a = withFailures(service().def, {transient: 0.5})
    const b = withFailures(service().def, {transient: 0.5})
    const outcome = async (w: typeof a, id: string) => w.handle(envelope(id), {attempt: 1}).then(() => 'ok', () => 'fail')
    for (let i = 0; i < 50; i++) expect(await outcome(a, `x${i}`)).toBe(await outcome(b, `x${i}`))
    for (let i = 0; i < 50; i++) expect(await a.handle(envelope(`x${i}`), {attempt: 2}).then(() => 'ok')).toBe('ok')
  })

  it('permanent: the same events fail every time', async () => {
    const {handled, def} = service()
    const wrapped = withFailures(def, {permanent: 0.1})
    const failing = new Set<string>()
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 500; i++) {
        await wrapped.handle(envelope(`p-${i}`), {}).catch(() => failing.add(`p-${i}`))
      }
    }
    expect(failing.size).toBeGreaterThan(20)
    expect(failing.size).toBeLessThan(90)
    expect(handled.length).toBe(4 * (500 - failing.size))
  })
})
