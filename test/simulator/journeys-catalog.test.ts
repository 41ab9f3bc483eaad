/**
 * Every event the journeys generate is valid against the shipped TekTree catalog (payload schemas).
 */
import {randomUUID} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {createJourneys} from '../../src/simulator/journeys.js'
import {JOURNEY_STEPS, type JourneyStep} from '../../src/simulator/scenario.js'

describe('journeys against the TekTree catalog', () => {
  it('every generated payload validates', async () => {
    const catalog = await loadCatalog()
    const validator = createValidator(catalog)
    let now = Date.UTC(2026, 10, 20)
    const weights = Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 1])) as Record<JourneyStep, number>
    const journeys = createJourneys({users: 300, areas: 6, weights, seed: 8, now: () => (now += 60_000)})
    const failures: string[] = []
    const seen = new Set<string>()
    for (const draft of journeys.next(5000)) {
      seen.add(draft.type)
      const definition = catalog.get(draft.type)
      expect(definition, draft.type).toBeDefined()
      const result = validator.validate({
        event_id: randomUUID(),
        event_type: draft.type,
        event_version: definition!.version,
        timestamp: new Date(now).toISOString(),
        source_service: definition!.producer ?? 'simulator',
        payload: draft.payload,
        trace_id: randomUUID(),
        correlation_id: draft.correlationId,
        causation_id: null,
        producer_id: 'test',
        metadata: {},
      })
      if (!result.ok && failures.length < 5) failures.push(`${draft.type}: ${result.error.error.message} ${JSON.stringify(draft.payload)}`)
    }
    expect(failures).toEqual([])
    // The check can fail: a payload the catalog forbids is caught.
    const bad = validator.validate({
      event_id: randomUUID(), event_type: 'social.user.followed', event_version: '1.0.0', timestamp: new Date(now).toISOString(),
      source_service: 'user', payload: {follower_id: randomUUID(), followee_id: randomUUID(), followee_follower_count: 0},
      trace_id: randomUUID(), correlation_id: randomUUID(), causation_id: null, producer_id: 'test', metadata: {},
    })
    expect(bad.ok).toBe(false)
    expect(seen.size).toBe(19)
  })
})
