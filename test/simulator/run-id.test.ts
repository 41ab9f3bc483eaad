/**
 * Seeded runs into a durable store: the run id is mixed into the seeded event (and trace) ids, so a
 * second run of one seed adds events instead of being dropped as duplicates, while the content
 * (users, journeys, payloads) stays the seed's.
 */
import {describe, expect, it} from 'vitest'
import {createJourneys} from '../../src/simulator/journeys.js'
import {JOURNEY_STEPS, type JourneyStep} from '../../src/simulator/scenario.js'
import {createRandom, runKey, runKeyedUuid} from '../../src/simulator/random.js'

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
})
