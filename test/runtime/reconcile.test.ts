/**
 * Reconcile on the in-process adapters: a bus that lost everything the store marked published (a
 * restart without persistence) gets it all back, in append order, and only once; the window
 * (sinceMs) bounds what is compared. The Redis case, with a lost tail: reconcile.int.test.ts.
 */
import {describe, expect, it} from 'vitest'
import {createValidator} from '../../src/catalog/validate.js'
import {exampleEvent} from '../../src/catalog/example.js'
import {createMemoryBus, createMemoryStore} from '../../src/adapters/memory/index.js'
import {createPublisher} from '../../src/engine/publisher.js'
import {reconcile} from '../../src/engine/reconcile.js'
import {createOutboxRelay} from '../../src/engine/relay.js'
import type {Bus} from '../../src/core/ports.js'
import {tektreeCatalog, until} from './consumer-harness.js'

async function everythingOn(bus: Bus, topics: ReadonlyArray<{name: string; partitions: number}>): Promise<string[]> {
  const ids: string[] = []
  for (const t of topics) for (let p = 0; p < t.partitions; p++) ids.push(...(await bus.eventIds(t.name, p, {count: 10_000})).map((e) => e.eventId!))
  return ids
}

describe('reconcile (in-process)', () => {
  it('republishes, in append order, what a bus that lost everything no longer holds; then nothing', async () => {
    const catalog = await tektreeCatalog()
    const store = createMemoryStore()
    const lost = createMemoryBus()
    const relay = createOutboxRelay({store, bus: lost, catalog, owner: 'relay'})
    const publisher = createPublisher({store, catalog, validator: createValidator(catalog), relay, producerId: 'test'})
    const key = '5f0c8a52-1f6e-4a57-9a3b-2f1d4c9e7b10'
    const events = Array.from({length: 12}, (_, i) => {
      const type = i % 2 === 0 ? 'user.profile.updated' : 'user.authenticated'
      const payload = exampleEvent(catalog, type, {seed: i + 1}).payload
      payload[catalog.get(type)!.partitionKey!] = key
      return publisher.draft(type, payload)
    })
    expect((await publisher.publish(events)).accepted).toBe(12)
    await relay.drain(5_000)
    await relay.stop()

    // The bus restarts empty.
    const fresh = createMemoryBus()
    const dry = await reconcile({store, bus: fresh, catalog, dryRun: true})
    expect(dry).toMatchObject({checked: 12, missing: 12, republished: 0})
    expect(await everythingOn(fresh, catalog.topics())).toEqual([])

    const fixed = await reconcile({store, bus: fresh, catalog, batchSize: 5})
    expect(fixed).toMatchObject({checked: 12, missing: 12, republished: 12})
    // One aggregate, one partition: back in the order they were appended.
    expect(await everythingOn(fresh, catalog.topics())).toEqual(events.map((e) => e.event_id))
    expect(await reconcile({store, bus: fresh, catalog})).toMatchObject({checked: 12, missing: 0, republished: 0})
    expect(await everythingOn(fresh, catalog.topics())).toHaveLength(12)
  })

  it('with sinceMs, compares only what was published from then on', async () => {
    const catalog = await tektreeCatalog()
    const store = createMemoryStore()
    const relay = createOutboxRelay({store, bus: createMemoryBus(), catalog, owner: 'relay'})
    const publisher = createPublisher({store, catalog, validator: createValidator(catalog), relay, producerId: 'test'})
    const draft = (seed: number) => publisher.draft('user.registered', exampleEvent(catalog, 'user.registered', {seed}).payload)
    await publisher.publish([draft(1), draft(2)])
    await relay.drain(5_000)
    const between = Date.now()
    await until(() => expect(Date.now()).toBeGreaterThan(between + 2))
    const late = [draft(3), draft(4), draft(5)]
    await publisher.publish(late)
    await relay.drain(5_000)
    await relay.stop()
    const result = await reconcile({store, bus: createMemoryBus(), catalog, dryRun: true, sinceMs: between + 1, skewMs: 0})
    expect(result.missing).toBe(3)
    expect(result.sample.map((m) => m.event_id)).toEqual(late.map((e) => e.event_id))
  })
})
