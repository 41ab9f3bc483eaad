/**
 * Seeded runs into a durable store: the run id is mixed into the seeded event (and trace) ids, so a
 * second run of one seed adds events instead of being dropped as duplicates, while the content
 * (users, journeys, payloads) stays the seed's.
 */
import {describe, expect, it} from 'vitest'
import {createJourneys} from '../../src/simulator/journeys.js'
import {JOURNEY_STEPS, type JourneyStep} from '../../src/simulator/scenario.js'
import {isOrderedEventId} from '../../src/core/event-id.js'
import {createRandom, runKey, runKeyedUuid, SeededEventIds} from '../../src/simulator/random.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const all = Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 1])) as Record<JourneyStep, number>

function drafts(runId: string | null, n = 500) {
  let now = Date.UTC(2026, 10, 20)
  return createJourneys({users: 200, areas: 4, weights: all, seed: 21, runId, now: () => (now += 60_000)}).next(n)
}

describe('run-keyed event ids', () => {
  it('the same seed and run id repeat exactly', () => {
    expect(drafts('run-1')).toEqual(drafts('run-1'))
  })

  it('another run of the seed: the same content, none of the same event or trace ids', () => {
    const a = drafts('run-1')
    const b = drafts('run-2')
    const content = (d: typeof a) => d.map(({type, payload, correlationId}) => ({type, payload, correlationId}))
    expect(content(b)).toEqual(content(a))
    const idsA = new Set(a.map((d) => d.eventId))
    expect(b.some((d) => idsA.has(d.eventId))).toBe(false)
    const tracesA = new Set(a.map((d) => d.traceId))
    expect(b.some((d) => tracesA.has(d.traceId))).toBe(false)
  })

  it('ids stay distinct UUID v4s within a run', () => {
    const ids = drafts('run-3', 2000).map((d) => d.eventId!)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.every((id) => UUID_V4.test(id))).toBe(true)
  })

  it('without a run id, the seed alone decides (the ids seeded runs had before)', () => {
    const plain = createRandom(21)
    const keyed = createRandom(21)
    expect(runKeyedUuid(keyed, null, true)).toBe(plain.uuid())
    expect(runKey('a')).not.toEqual(runKey('b'))
  })

  it('ids are ordered (core/event-id.ts) by the count within a run: they sort as they were made', () => {
    const ids = drafts('run-4', 3000).map((d) => d.eventId!)
    expect(ids.every(isOrderedEventId)).toBe(true)
    expect([...ids].sort()).toEqual(ids)
  })

  it("two sources of one run (journeys, foreign events) never share a prefix, so never an id", () => {
    const key = runKey('run-5')
    const journeys = new SeededEventIds(key, 0)
    const foreign = new SeededEventIds(key, 1)
    const a = createRandom(5)
    const b = createRandom(5)
    const x = Array.from({length: 100}, () => journeys.next(a))
    const y = Array.from({length: 100}, () => foreign.next(b))
    expect(x[0].slice(0, 4)).not.toBe(y[0].slice(0, 4))
    expect(x.some((id) => y.includes(id))).toBe(false)
    // The same draws as random.uuid() (four per id): the PRNG is where it would have been.
    const plain = createRandom(5)
    for (let i = 0; i < 100; i++) plain.uuid()
    expect(a.u32()).toBe(plain.u32())
  })
})
