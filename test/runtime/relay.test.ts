/** The outbox relay: store outbox -> bus, in order, at least once, through bus failures. */
import {randomUUID} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {createValidator} from '../../src/catalog/validate.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {DrainTimeoutError, NonRetryableError} from '../../src/core/errors.js'
import {createMemoryBus, createMemoryStore} from '../../src/adapters/memory/index.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import type {Bus, Delivery, OutgoingMessage} from '../../src/core/ports.js'
import {createPublisher} from '../../src/engine/publisher.js'
import {createOutboxRelay} from '../../src/engine/relay.js'
import {tektreeCatalog, until} from './consumer-harness.js'

/**
 * A bus that fails publish() while `down` is true (a Redis outage), and refuses for good (an error
 * marked not retriable, as a bus refuses an unknown topic) any batch holding an event_id in `refuse`.
 */
function flakyBus(inner: Bus) {
  const state = {down: false, attempts: 0, refuse: new Set<string>()}
  const bus: Bus = {
    kind: inner.kind,
    ensureTopics: (s) => inner.ensureTopics(s),
    async publish(messages: readonly OutgoingMessage[]) {
      state.attempts++
      if (state.down) throw new Error('ECONNRESET')
      const refused = messages.find((m) => state.refuse.has(m.headers.event_id))
      if (refused) throw new NonRetryableError(`refused ${refused.headers.event_id}`, {code: 'MESSAGE_TOO_LARGE'})
      return inner.publish(messages)
    },
    subscribe: (o) => inner.subscribe(o),
    stats: (f) => inner.stats(f),
    topics: () => inner.topics(),
    read: (...a) => inner.read(...a),
    positionAt: (...a) => inner.positionAt(...a),
    trim: (...a) => inner.trim(...a),
    eventIds: (...a) => inner.eventIds(...a),
    close: () => inner.close(),
  }
  return {bus, state}
}

async function setup(options: {batchSize?: number; maxAttempts?: number} = {}) {
  const catalog = await tektreeCatalog()
  const memoryBus = createMemoryBus()
  const {bus, state} = flakyBus(memoryBus)
  const store = createMemoryStore()
  const metrics = createMetrics()
  const errors: unknown[] = []
  const relay = createOutboxRelay({
    store,
    bus,
    catalog,
    metrics,
    owner: `relay-${randomUUID()}`,
    batchSize: options.batchSize ?? 1000,
    maxAttempts: options.maxAttempts,
    onError: (e) => errors.push(e),
  })
  const publisher = createPublisher({store, catalog, validator: createValidator(catalog), relay, producerId: 'relay-test'})
  let seed = 1
  const make = (type: string, key?: string): EventEnvelope => {
    const definition = catalog.get(type)!
    const payload = exampleEvent(catalog, type, {seed: seed++}).payload
    if (key) payload[definition.partitionKey!] = key
    return publisher.draft(type, payload)
  }
  /** Everything on a topic, over all partitions, in transport id order. */
  const readAll = async (topic: string): Promise<Delivery[]> => {
    const out: Delivery[] = []
    const spec = catalog.topics().find((t) => t.name === topic)!
    for (let p = 0; p < spec.partitions; p++) out.push(...(await memoryBus.read(topic, p, null, 100_000)))
    return out.sort((a, b) => Number(a.id) - Number(b.id))
  }
  return {catalog, bus: memoryBus, state, store, metrics, relay, publisher, make, readAll, errors}
}

describe('outbox relay', () => {
  it('records publish latency up to the moment the bus accepted the event, not its mark in the store', async () => {
    const catalog = await tektreeCatalog()
    const store = createMemoryStore()
    const metrics = createMetrics()
    const event = exampleEvent(catalog, 'user.authenticated', {seed: 1})
    let clockNow = Date.parse(event.timestamp) + 5
    // The mark takes 10 s of the relay's clock: a latency taken after it would say so.
    const markPublished = store.outbox.markPublished.bind(store.outbox)
    store.outbox.markPublished = async (ids) => {
      clockNow += 10_000
      return markPublished(ids)
    }
    const relay = createOutboxRelay({store, bus: createMemoryBus(), catalog, metrics, owner: 'latency', clock: {now: () => clockNow, sleep: async () => undefined}})
    await store.events.append([event])
    relay.start()
    await relay.drain(10_000)
    await relay.stop()
    expect(metrics.snapshot().totals.published).toBe(1)
    expect(metrics.snapshot().publishLatencyMs).toMatchObject({count: 1, max: 5})
  })

  it('publishes appended events in append order, as the agreed messages, and drain() resolves', async () => {
    const {relay, publisher, make, readAll, store, metrics, catalog} = await setup({batchSize: 7})
    const key = randomUUID()
    const events = Array.from({length: 30}, (_, i) => make(i % 3 === 0 ? 'user.authenticated' : 'user.profile.updated', key))
    relay.start()
    // appended in several publishes, as the simulator does
    for (let i = 0; i < events.length; i += 10) await publisher.publish(events.slice(i, i + 10))
    await relay.drain(10_000)
    expect(await store.outbox.pending()).toBe(0)
    const onBus = await readAll('tektree.user')
    expect(onBus.map((d) => d.headers.event_id)).toEqual(events.map((e) => e.event_id))
    const first = onBus[0]
    expect(first.key).toBe(key)
    expect(JSON.parse(first.value)).toEqual(events[0])
    expect(first.headers).toMatchObject({event_type: events[0].event_type, event_id: events[0].event_id})
    expect(Number(first.headers.published_at)).toBeGreaterThan(0)
    expect(first.topic).toBe(catalog.get('user.authenticated')!.topic)
    expect(metrics.snapshot().totals.published).toBe(30)
    expect(metrics.snapshot().publishLatencyMs.count).toBe(30)
    expect(relay.stats()).toMatchObject({published: 30, running: true})
    await relay.stop()
    expect(relay.stats().running).toBe(false)
  })

  it('keys a message by the event id when the event has no aggregate id', async () => {
    const {relay, publisher, make, readAll, store} = await setup()
    const event = make('user.registered')
    delete event.metadata.aggregate_id
    await store.events.append([event]) // straight to the store: nothing fills the aggregate id
    await relay.drain(5_000)
    const [delivery] = await readAll('tektree.user')
    expect(delivery.key).toBe(event.event_id)
    void publisher
  })

  it('keeps the events when bus.publish fails, then publishes them (in order) after recovery', async () => {
    const {relay, publisher, make, readAll, store, state, errors} = await setup({batchSize: 5})
    const events = Array.from({length: 12}, () => make('user.registered'))
    state.down = true
    relay.start()
    await publisher.publish(events)
    await until(() => expect(state.attempts).toBeGreaterThanOrEqual(3))
    expect(await store.outbox.pending()).toBe(12)
    expect(relay.stats().held).toBe(5)
    expect(errors.length).toBeGreaterThanOrEqual(2)
    expect(relay.stats().consecutiveErrors).toBeGreaterThanOrEqual(2)
    // when the bus comes back
    state.down = false
    await relay.drain(10_000)
    const ids = (await readAll('tektree.user')).map((d) => d.headers.event_id)
    expect(ids).toEqual(events.map((e) => e.event_id))
    expect(relay.stats()).toMatchObject({published: 12, consecutiveErrors: 0, held: 0})
    await relay.stop()
  })

  it('drain() without start() publishes by itself; it rejects with DRAIN_TIMEOUT while the bus stays down', async () => {
    const {relay, publisher, make, store, state} = await setup()
    await publisher.publish([make('user.registered'), make('user.registered')])
    state.down = true
    const error = await relay.drain(150).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DrainTimeoutError)
    expect((error as DrainTimeoutError).code).toBe('DRAIN_TIMEOUT')
    expect((error as DrainTimeoutError).details).toMatchObject({pending: 2})
    state.down = false
    await relay.drain(5_000)
    expect(await store.outbox.pending()).toBe(0)
  })

  it('two relays on one store lose nothing (leases keep them apart)', async () => {
    const {bus, store, catalog, publisher, make, readAll} = await setup()
    const a = createOutboxRelay({store, bus, catalog, owner: 'relay-a', batchSize: 3, pollMs: 5})
    const b = createOutboxRelay({store, bus, catalog, owner: 'relay-b', batchSize: 3, pollMs: 5})
    a.start()
    b.start()
    const events = Array.from({length: 40}, () => make('user.registered'))
    await publisher.publish(events)
    await a.drain(10_000)
    await Promise.all([a.stop(), b.stop()])
    const ids = (await readAll('tektree.user')).map((d) => d.headers.event_id)
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.event_id)))
    expect(a.stats().published + b.stats().published).toBe(40)
  })

  it('an event for a topic the bus does not have is quarantined after maxAttempts; the events around it are published', async () => {
    const {relay, publisher, make, readAll, store, errors} = await setup({maxAttempts: 3})
    const before = [make('user.registered'), make('user.registered')]
    // A type the catalog does not know goes to its domain's topic, which nobody ensured.
    const ghost = {...make('user.registered'), event_type: 'ghost.thing.happened'}
    const after = Array.from({length: 3}, () => make('user.registered'))
    await store.events.append([...before, ghost, ...after])
    relay.start()
    await relay.drain(10_000)
    expect((await readAll('tektree.user')).map((d) => d.headers.event_id)).toEqual([...before, ...after].map((e) => e.event_id))
    const [record] = await store.outbox.quarantined()
    expect(record).toMatchObject({event_id: ghost.event_id, event_type: 'ghost.thing.happened', attempts: 3, envelope: ghost})
    expect(record.error.error).toMatchObject({code: 'UNKNOWN_TOPIC', details: {topic: 'tektree.ghost'}})
    expect(Date.parse(record.last_failure_at)).toBeGreaterThanOrEqual(Date.parse(record.first_failure_at))
    expect(await store.outbox.countQuarantined()).toBe(1)
    expect(await store.outbox.pending()).toBe(0)
    // One warning per attempt and one saying it was quarantined, and no more however long it runs.
    expect(errors).toHaveLength(4)
    expect((errors[3] as {code?: string}).code).toBe('OUTBOX_QUARANTINED')
    expect(String((errors[3] as Error).message)).toMatch(new RegExp(`quarantined ghost.thing.happened ${ghost.event_id} after 3`))
    expect(relay.stats()).toMatchObject({quarantined: 1, held: 0, published: 5})
    await publisher.publish([make('user.registered')])
    await relay.drain(5_000)
    expect(errors).toHaveLength(4)
    await relay.stop()
    expect(relay.stats().running).toBe(false)
  })

  it('later events of a refused event\'s key wait behind it, other keys do not; released, it is published again', async () => {
    const {relay, make, readAll, store, state} = await setup({maxAttempts: 4})
    const key = randomUUID()
    const refused = make('user.profile.updated', key)
    const sameKey = make('user.profile.updated', key)
    const others = [make('user.registered'), make('user.registered')]
    state.refuse.add(refused.event_id)
    await store.events.append([refused, others[0], sameKey, others[1]])
    relay.start()
    // The other keys go out while the refused event is retried; its key's later event waits.
    await until(async () => expect((await readAll('tektree.user')).map((d) => d.headers.event_id)).toEqual(others.map((e) => e.event_id)))
    await relay.drain(10_000)
    // Quarantined after 4 attempts, then the event behind it went on.
    expect((await readAll('tektree.user')).map((d) => d.headers.event_id)).toEqual([...others, sameKey].map((e) => e.event_id))
    expect((await store.outbox.quarantined()).map((r) => [r.event_id, r.attempts, r.error.error.code])).toEqual([[refused.event_id, 4, 'MESSAGE_TOO_LARGE']])
    // Released (the bus takes it now), it is published like any outbox entry.
    state.refuse.clear()
    expect(await store.outbox.release([refused.event_id])).toBe(1)
    relay.kick()
    await relay.drain(5_000)
    expect((await readAll('tektree.user')).map((d) => d.headers.event_id)).toEqual([...others, sameKey, refused].map((e) => e.event_id))
    expect(await store.outbox.countQuarantined()).toBe(0)
    await relay.stop()
  })

  it('a refused event that the bus takes before maxAttempts keeps its key\'s order', async () => {
    const {relay, make, readAll, store, state, errors} = await setup({maxAttempts: 100})
    const key = randomUUID()
    const first = make('user.profile.updated', key)
    const second = make('user.profile.updated', key)
    state.refuse.add(first.event_id)
    await store.events.append([first, second])
    relay.start()
    await until(() => expect(errors.length).toBeGreaterThanOrEqual(2))
    state.refuse.clear()
    await relay.drain(10_000)
    expect((await readAll('tektree.user')).map((d) => d.headers.event_id)).toEqual([first.event_id, second.event_id])
    expect(await store.outbox.countQuarantined()).toBe(0)
    await relay.stop()
  })

  it('a bus that is down is never charged to the events: nothing is quarantined, however long', async () => {
    const {relay, publisher, make, store, state} = await setup({maxAttempts: 2})
    state.down = true
    relay.start()
    await publisher.publish([make('user.registered')])
    await until(() => expect(state.attempts).toBeGreaterThanOrEqual(5))
    expect(await store.outbox.countQuarantined()).toBe(0)
    state.down = false
    await relay.drain(5_000)
    expect(relay.stats().quarantined).toBe(0)
    await relay.stop()
  })

  it('stop() finishes the current batch and leaves the rest in the outbox', async () => {
    const {relay, publisher, make, store, readAll} = await setup({batchSize: 4})
    await publisher.publish(Array.from({length: 4}, () => make('user.registered')))
    relay.start()
    await relay.stop()
    const published = relay.stats().published
    expect((await readAll('tektree.user')).length).toBe(published)
    expect(await store.outbox.pending()).toBe(4 - published)
  })
})
