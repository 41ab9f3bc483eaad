/** The publisher: drafting envelopes from the catalog, validating, appending through the store's outbox. */
import {randomUUID} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {createValidator} from '../../src/catalog/validate.js'
import {VirtualClock} from '../../src/core/clock.js'
import {RuntimeError} from '../../src/core/errors.js'
import {derivedEventId, isOrderedEventId, newEventId} from '../../src/core/event-id.js'
import {createMemoryStore} from '../../src/adapters/memory/index.js'
import {createPublisher} from '../../src/engine/publisher.js'
import {START, tektreeCatalog} from './consumer-harness.js'
import {exampleEvent} from '../../src/catalog/example.js'
import {UUID_V4_PATTERN} from '../../src/catalog/envelope.schema.js'

async function setup() {
  const catalog = await tektreeCatalog()
  const validator = createValidator(catalog)
  const store = createMemoryStore()
  let kicks = 0
  const clock = new VirtualClock({start: START, speed: 0})
  const publisher = createPublisher({store, catalog, validator, relay: {kick: () => void kicks++}, producerId: 'publisher-test-1', clock})
  return {catalog, validator, store, publisher, clock, kicks: () => kicks}
}

describe('publisher.draft', () => {
  it('fills the envelope from the catalog', async () => {
    const {catalog, publisher, validator} = await setup()
    const payload = exampleEvent(catalog, 'knowledge.answer.submitted', {seed: 7}).payload
    const event = publisher.draft('knowledge.answer.submitted', payload)
    const definition = catalog.get('knowledge.answer.submitted')!
    expect(event.event_id).toMatch(new RegExp(UUID_V4_PATTERN))
    expect(event).toMatchObject({
      event_type: 'knowledge.answer.submitted',
      event_version: definition.version,
      source_service: definition.producer,
      producer_id: 'publisher-test-1',
      timestamp: new Date(START).toISOString(),
      correlation_id: event.event_id,
      causation_id: null,
      payload,
      metadata: {aggregate_id: payload[definition.partitionKey!], aggregate_type: definition.domain},
    })
    expect(event.trace_id).toMatch(/^[0-9a-f]{32}$/)
    expect(validator.validate(event).ok).toBe(true)
  })

  it('takes ids, source, timestamp and metadata from the options; canonicalizes an alias', async () => {
    const {catalog, publisher} = await setup()
    const payload = exampleEvent(catalog, 'social.content.liked', {seed: 3}).payload
    const eventId = randomUUID()
    const causation = randomUUID()
    const event = publisher.draft('knowledge.content.liked', payload, {
      eventId,
      correlationId: 'corr-1',
      causationId: causation,
      traceId: 'ab'.repeat(16),
      source: 'knowledge',
      timestamp: Date.parse('2026-01-02T03:04:05.000Z'),
      metadata: {tenant: 't1', aggregate_id: 'explicit'},
    })
    expect(event).toMatchObject({
      event_id: eventId,
      event_type: 'social.content.liked',
      correlation_id: 'corr-1',
      causation_id: causation,
      trace_id: 'ab'.repeat(16),
      source_service: 'knowledge',
      timestamp: '2026-01-02T03:04:05.000Z',
      metadata: {tenant: 't1', aggregate_id: 'explicit'},
    })
  })

  it('refuses a type the catalog does not have', async () => {
    const {publisher} = await setup()
    expect(() => publisher.draft('user.registred', {})).toThrow(RuntimeError)
    try {
      publisher.draft('user.registred', {})
    } catch (error) {
      expect((error as RuntimeError).code).toBe('UNKNOWN_EVENT_TYPE')
    }
  })
})

describe('publisher.publish', () => {
  it('appends valid events (the store writes their outbox entries), rejects invalid ones by index, kicks the relay', async () => {
    const {catalog, publisher, store, kicks} = await setup()
    const good = publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed: 1}).payload)
    const bad = {...publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed: 2}).payload)}
    bad.payload = {...bad.payload, signup_source: 'fax'}
    const good2 = publisher.draft('user.authenticated', exampleEvent(catalog, 'user.authenticated', {seed: 3}).payload)
    const result = await publisher.publish([good, bad, good2])
    expect(result.accepted).toBe(2)
    expect(result.duplicates).toEqual([])
    expect(result.rejected).toHaveLength(1)
    expect(result.rejected[0]).toMatchObject({index: 1, event_id: bad.event_id, event_type: 'user.registered'})
    expect(result.rejected[0].error.error.code).toBe('VALIDATION_FAILED')
    expect(await store.events.count()).toBe(2)
    expect(await store.outbox.pending()).toBe(2)
    expect(kicks()).toBe(1)
  })

  it('is idempotent by event id: a re-publish reports duplicates and does not re-enter the outbox', async () => {
    const {catalog, publisher, store, kicks} = await setup()
    const event = publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed: 1}).payload)
    await publisher.publish([event])
    await store.outbox.markPublished([event.event_id])
    const again = await publisher.publish([event])
    expect(again).toEqual({accepted: 0, duplicates: [event.event_id], conflicts: [], rejected: []})
    expect(await store.outbox.pending()).toBe(0)
    expect(kicks()).toBe(1)
  })

  it('an event_id re-published with other content is a conflict (EVENT_ID_CONFLICT, by index), not a duplicate', async () => {
    const {catalog, publisher, store} = await setup()
    const event = publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed: 1}).payload)
    await publisher.publish([event])
    const other = {...event, payload: {...event.payload, username: 'someone_else'}}
    const result = await publisher.publish([event, other])
    expect(result.accepted).toBe(0)
    expect(result.duplicates).toEqual([event.event_id])
    expect(result.conflicts.map((c) => [c.index, c.event_id, c.error.error.code])).toEqual([[1, event.event_id, 'EVENT_ID_CONFLICT']])
    expect(await store.events.get(event.event_id)).toEqual(event)
  })

  it('fills a missing aggregate id, and normalizes an alias type when validating', async () => {
    const {catalog, publisher, store} = await setup()
    const example = exampleEvent(catalog, 'social.content.liked', {seed: 5})
    const event = {...example, event_type: 'knowledge.content.liked', metadata: {}}
    const result = await publisher.publish([event])
    expect(result.accepted).toBe(1)
    const stored = (await store.events.get(event.event_id))!
    expect(stored.event_type).toBe('social.content.liked')
    expect(stored.metadata).toMatchObject({aggregate_id: example.payload.content_id, aggregate_type: 'social'})
  })

  it('skips schema validation with trusted: true, but still refuses unknown types', async () => {
    const {catalog, publisher, store} = await setup()
    const event = publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed: 1}).payload)
    const unchecked = {...event, payload: {...event.payload, username: 'NOT CHECKED'}}
    const unknown = {...event, event_id: randomUUID(), event_type: 'nope.nope'}
    const result = await publisher.publish([unchecked, unknown], {trusted: true})
    expect(result.accepted).toBe(1)
    expect(result.rejected.map((r) => [r.index, r.error.error.code])).toEqual([[1, 'UNKNOWN_EVENT_TYPE']])
    expect((await store.events.get(event.event_id))!.payload.username).toBe('NOT CHECKED')
  })
})

describe('derivedEventId', () => {
  it('is deterministic, v4-shaped, and differs by each input', () => {
    const cause = randomUUID()
    const id = derivedEventId(cause, 'gamification', 'gamification.xp.earned', 0)
    expect(id).toMatch(new RegExp(UUID_V4_PATTERN))
    expect(derivedEventId(cause, 'gamification', 'gamification.xp.earned', 0)).toBe(id)
    const others = [
      derivedEventId(randomUUID(), 'gamification', 'gamification.xp.earned', 0),
      derivedEventId(cause, 'notification', 'gamification.xp.earned', 0),
      derivedEventId(cause, 'gamification', 'gamification.level.up', 0),
      derivedEventId(cause, 'gamification', 'gamification.xp.earned', 1),
      derivedEventId(cause, 'gamification', 'gamification.xp.earned', 'all-time'),
    ]
    expect(new Set([id, ...others]).size).toBe(6)
  })

  it('never changes between versions: an event redelivered after an upgrade re-emits the same ids', () => {
    expect(derivedEventId('0b7d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4', 'gamification', 'gamification.xp.earned', 0)).toBe('369b072d-fc3a-4af4-8c7a-25d0f41aee0b')
    expect(derivedEventId('identity:level:u1:5', 'gamification', 'gamification.level.up', 0)).toBe('2fcdb0ea-dafe-4d25-8ebb-6d8ba2dea192')
  })

  it("an ordered cause's derived ids take its prefix: deterministic, v4-shaped, ordered", () => {
    const cause = newEventId(Date.UTC(2026, 11, 2))
    const ids = [0, 1, 2].map((n) => derivedEventId(cause, 'notification', 'notification.sent', n))
    for (const id of ids) {
      expect(id).toMatch(new RegExp(UUID_V4_PATTERN))
      expect(isOrderedEventId(id)).toBe(true)
      expect(id.slice(0, 13)).toBe(cause.slice(0, 13))
    }
    expect(new Set(ids).size).toBe(3)
    expect(derivedEventId(cause, 'notification', 'notification.sent', 1)).toBe(ids[1])
    // A later cause's derived ids sort after an earlier cause's (the index takes them at its edge).
    const later = derivedEventId(newEventId(Date.UTC(2026, 11, 2) + 1), 'notification', 'notification.sent', 0)
    expect(ids.every((id) => id < later)).toBe(true)
    expect(derivedEventId('01a2f1e0-9c00-4ec7-b7aa-0123456789ab', 'gamification', 'gamification.xp.earned', 0)).toBe('01a2f1e0-9c00-4ec7-b785-74ab204e3c06')
  })
})

describe('newEventId', () => {
  it('is v4-shaped, marked as ordered, and sorts by the millisecond it was made', () => {
    const start = Date.UTC(2026, 11, 2, 3, 0, 0)
    const ids = Array.from({length: 2_000}, (_, i) => newEventId(start + i))
    for (const id of ids) expect(id).toMatch(new RegExp(UUID_V4_PATTERN))
    expect(ids.every(isOrderedEventId)).toBe(true)
    expect([...ids].sort()).toEqual(ids)
    expect(ids[0].slice(0, 13)).toBe(`${start.toString(16).padStart(12, '0').slice(0, 8)}-${start.toString(16).padStart(12, '0').slice(8)}`)
  })

  it('ids made in one millisecond stay distinct (56 random bits each)', () => {
    const ids = Array.from({length: 100_000}, () => newEventId(1_800_000_000_000))
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('a random v4 id is not taken for an ordered one (its mark is 18 fixed bits)', () => {
    expect(isOrderedEventId('0b7d1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4')).toBe(false)
    expect(isOrderedEventId('0b7d1c2e-3f4a-4ec7-a7e6-7f8091a2b3c4')).toBe(false)
    expect(isOrderedEventId('identity:level:u1:5')).toBe(false)
  })

  it("is the publisher's default id", async () => {
    const {catalog, publisher} = await setup()
    const payload = exampleEvent(catalog, 'user.registered', {seed: 3}).payload
    expect(isOrderedEventId(publisher.draft('user.registered', payload).event_id)).toBe(true)
  })
})
