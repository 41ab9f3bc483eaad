/**
 * The simulator's view of the runtime pieces (runtime, catalog, and the engine's pipeline: publisher,
 * outbox relay, consumer runners), so run.ts stays about the simulation itself.
 */
import type {Faker} from '@faker-js/faker'
import type {EventEnvelope} from '../core/envelope.js'
import type {Runtime} from '../core/runtime.js'
import type {OutgoingMessage} from '../core/ports.js'
import type {Catalog, JsonSchema} from '../catalog/types.js'
import {SystemClock, VirtualClock} from '../core/clock.js'
import type {ServiceDefinition} from '../engine/consumer.js'
import {openRuntime} from '../adapters/open.js'
import {createPipeline} from '../engine/pipeline.js'
import {toOutgoingMessage} from '../engine/relay.js'
import {createPayloadGenerator} from '../catalog/example.js'
import {loadCatalog} from '../catalog/load.js'
import type {SimDraft} from './journeys.js'
import type {SimService} from './services-bridge.js'

export interface PublishOutcome {
  accepted: number
  duplicates: number
  rejected: Array<{eventId?: string; type?: string; message: string}>
}

export interface ConsumerHandle {
  /** Graceful: finish in-flight work, ack, leave the group. */
  stop(): Promise<void>
  /** A crash: stop at once WITHOUT acking in-flight deliveries (they are redelivered later). */
  crash(): void
}

export interface SimEngine {
  runtime: Runtime
  catalog: Catalog
  description: string
  envelope(draft: SimDraft): EventEnvelope
  publish(envelopes: EventEnvelope[]): Promise<PublishOutcome>
  /** The bus message of an envelope, exactly as the outbox relay writes it (for duplicates). */
  toBusMessage(envelope: EventEnvelope): OutgoingMessage
  relay: {start(): void; kick(): void; stop(): Promise<void>}
  startConsumer(service: SimService, instance: string): ConsumerHandle
  payloadGenerator: (schema: JsonSchema) => (faker: Faker) => Record<string, unknown>
  close(): Promise<void>
}

export interface EngineOptions {
  runtime?: Runtime
  redisUrl?: string
  mongoUrl?: string
  inProcess?: boolean
  catalogPath?: string
  clockSpeed: number
  visibilityTimeoutMs?: number
  /** Errors the relay and consumers meet while running (they carry on). */
  onError?: (message: string) => void
  /** Events the relay has put on the bus, batch by batch. */
  onRelayed?: (events: readonly EventEnvelope[]) => void
  /** Share the metrics with `tektree dashboard` (see engine/metrics/beacon.ts). */
  beacon?: {role: string; workers?: () => number}
}

function describeRuntime(runtime: Runtime): string {
  const d = runtime.describe()
  const part = (p: {kind: string; location: string; fallbackReason?: string}) => `${p.kind} (${p.location})`
  return d.bus.kind === 'memory' && d.store.kind === 'memory' ? 'in-process' : `bus ${part(d.bus)}, store ${part(d.store)}`
}

export async function openEngine(options: EngineOptions): Promise<SimEngine> {
  const catalog = await loadCatalog(options.catalogPath)
  const ownsRuntime = !options.runtime
  const clock = options.clockSpeed === 1 ? new SystemClock() : new VirtualClock({speed: options.clockSpeed})
  const runtime =
    options.runtime ?? (await openRuntime({redisUrl: options.redisUrl, mongoUrl: options.mongoUrl, inProcess: options.inProcess, clock}))
  try {
    // Envelope timestamps stay on the wall clock (latencies are measured against them); the
    // runtime's clock (virtual under clock.speed) drives retries and the journeys' calendar days.
    const pipeline = createPipeline({
      runtime,
      catalog,
      producerId: `tektree-simulate-${process.pid}`,
      onRelayError: (error) => options.onError?.(`outbox relay: ${(error as Error)?.message ?? String(error)}`),
      onPublished: options.onRelayed,
      beacon: options.beacon,
    })
    const {publisher} = pipeline
    return {
      runtime,
      catalog,
      description: describeRuntime(runtime),
      envelope: (draft) => publisher.draft(draft.type, draft.payload, {
          correlationId: draft.correlationId,
          ...(draft.eventId ? {eventId: draft.eventId} : {}),
          ...(draft.traceId ? {traceId: draft.traceId} : {}),
        }),
      async publish(envelopes) {
        const result = await publisher.publish(envelopes, {trusted: true})
        return {
          accepted: result.accepted,
          duplicates: result.duplicates.length,
          // An id reused for other content is refused, like an invalid event.
          rejected: [...result.rejected, ...result.conflicts].map((r) => ({eventId: r.event_id, type: r.event_type, message: r.error.error.message})),
        }
      },
      toBusMessage: (envelope) => toOutgoingMessage(catalog, envelope, Date.now()),
      relay: {
        start: () => pipeline.relay?.start(),
        kick: () => pipeline.relay?.kick(),
        stop: async () => {
          await pipeline.relay?.stop()
        },
      },
      startConsumer(service, instance) {
        const abort = new AbortController()
        const handle = pipeline.startConsumer(service as ServiceDefinition, {
          consumer: instance,
          signal: abort.signal,
          visibilityTimeoutMs: options.visibilityTimeoutMs ?? 5000,
          onEvent: (event) => {
            if (event.type === 'bus_error' || event.type === 'store_error') options.onError?.(`${service.name} ${event.type} (${event.phase}): ${(event.error as Error)?.message ?? String(event.error)}`)
          },
        })
        return {
          stop: async () => {
            if (!abort.signal.aborted) await handle.stop()
            await handle.done
          },
          crash: () => abort.abort(new Error('simulated consumer crash')),
        }
      },
      payloadGenerator: (schema) => createPayloadGenerator(schema),
      async close() {
        await pipeline.beacon?.stop()
        if (ownsRuntime) await runtime.close()
      },
    }
  } catch (error) {
    if (ownsRuntime) await runtime.close()
    throw error
  }
}
