/**
 * Shared setup for the consumer runner, publisher and relay tests: the real TekTree catalog on the
 * in-process engine with a frozen VirtualClock (retry delays cost nothing; time moves by advance()).
 * Not a test file itself.
 */
import {randomUUID} from 'node:crypto'
import {vi} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import {createValidator, type EventValidator} from '../../src/catalog/validate.js'
import {VirtualClock} from '../../src/core/clock.js'
import {startConsumer, type ConsumerHandle, type ConsumerOptions, type RunnerEvent, type ServiceDefinition} from '../../src/engine/consumer.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {createMemoryBus, createMemoryLeaderboards, createMemoryStore} from '../../src/adapters/memory/index.js'
import type {MemoryBusOptions} from '../../src/adapters/memory/index.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import type {RuntimeMetrics} from '../../src/core/metrics.js'
import type {Bus, Leaderboards, Store} from '../../src/core/ports.js'
import {createPublisher, type Publisher} from '../../src/engine/publisher.js'
import {toOutgoingMessage} from '../../src/engine/relay.js'
import type {Runtime} from '../../src/core/runtime.js'

let catalogPromise: Promise<Catalog> | undefined
export const tektreeCatalog = (): Promise<Catalog> => (catalogPromise ??= loadCatalog())

export const START = Date.parse('2026-11-20T10:00:00.000Z')

export interface Harness {
  catalog: Catalog
  validator: EventValidator
  bus: Bus
  store: Store
  leaderboards: Leaderboards
  clock: VirtualClock
  metrics: RuntimeMetrics
  runtime: Runtime
  publisher: Publisher
  events: RunnerEvent[]
  /** A valid envelope of `type` whose partition key is `key` (payload overrides merged in). */
  event(type: string, options?: {key?: string; payload?: Record<string, unknown>; metadata?: Record<string, unknown>}): EventEnvelope
  /** Straight onto the bus, as the relay would put them. */
  send(events: readonly EventEnvelope[]): Promise<void>
  /** A raw message (poison) onto a topic. */
  sendRaw(topic: string, value: string, headers?: Record<string, string>): Promise<void>
  start(service: ServiceDefinition, options?: ConsumerOptions): ConsumerHandle
  close(): Promise<void>
}

/** `wrapBus` may wrap the in-process bus (fault injection) or replace it (a Redis bus). */
export async function createHarness(options: {bus?: MemoryBusOptions; wrapBus?: (bus: Bus) => Bus} = {}): Promise<Harness> {
  const catalog = await tektreeCatalog()
  const validator = createValidator(catalog)
  const memoryBus = createMemoryBus({defaultBlockMs: 20, ...options.bus})
  const bus = options.wrapBus ? options.wrapBus(memoryBus) : memoryBus
  const store = createMemoryStore()
  const leaderboards = createMemoryLeaderboards()
  const clock = new VirtualClock({start: START, speed: 0})
  const metrics = createMetrics()
  const runtime: Runtime = {
    bus,
    store,
    leaderboards,
    clock,
    metrics,
    endpoints: {bus: null, store: null},
    describe: () => {
      const part = {kind: 'memory', location: 'in-process', origin: 'in-process' as const}
      return {bus: part, store: part, leaderboards: part}
    },
    close: async () => {},
  }
  const publisher = createPublisher({store, catalog, validator, producerId: `test-${randomUUID()}`, clock})
  await bus.ensureTopics(catalog.topics())
  const handles: ConsumerHandle[] = []
  const events: RunnerEvent[] = []
  let seed = 1
  return {
    catalog,
    validator,
    bus,
    store,
    leaderboards,
    clock,
    metrics,
    runtime,
    publisher,
    events,
    event(type, eventOptions = {}) {
      const definition = catalog.get(type)!
      const example = exampleEvent(catalog, type, {seed: seed++})
      const payload = {...example.payload, ...eventOptions.payload}
      if (eventOptions.key !== undefined && definition.partitionKey) payload[definition.partitionKey] = eventOptions.key
      return publisher.draft(type, payload, {metadata: eventOptions.metadata})
    },
    async send(list) {
      await bus.publish(list.map((e) => toOutgoingMessage(catalog, e, Date.now())))
    },
    async sendRaw(topic, value, headers = {}) {
      await bus.publish([{topic, key: randomUUID(), value, headers}])
    },
    start(service, consumerOptions = {}) {
      const handle = startConsumer({runtime, catalog, validator, publisher}, service, {
        consumer: `c-${randomUUID()}`,
        blockMs: 20,
        ...consumerOptions,
        onEvent: (event) => {
          events.push(event)
          consumerOptions.onEvent?.(event)
        },
      })
      handles.push(handle)
      return handle
    },
    async close() {
      await Promise.allSettled(handles.map((h) => h.stop()))
      await bus.close()
      await store.close()
      await leaderboards.close()
    },
  }
}

/** Polls until `check` passes (bounded): outcomes, never durations. */
export const until = <T>(check: () => T | Promise<T>, timeout = 5_000): Promise<T> => vi.waitFor(check, {timeout, interval: 5})

/** Waits until the virtual clock has `n` sleepers (a retry is parked), then moves time on by `ms`. */
export async function advanceWhenParked(clock: VirtualClock, ms: number, n = 1): Promise<void> {
  await until(() => {
    if (clock.pendingSleepers < n) throw new Error(`waiting for ${n} parked retr(ies), have ${clock.pendingSleepers}`)
  })
  await clock.advance(ms)
}

export const serviceName = (prefix = 'svc') => `${prefix}-${randomUUID().slice(0, 8)}`
