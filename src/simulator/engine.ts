/**
 * The simulator's view of the runtime pieces (runtime, catalog, publisher, outbox relay, consumer
 * runner), wired in one place so run.ts stays about the simulation itself.
 */
import type {Faker} from '@faker-js/faker'
import type {EventEnvelope} from '../runtime/envelope.js'
import type {Runtime} from '../runtime/runtime.js'
import type {Catalog, JsonSchema} from '../catalog/types.js'
import {SystemClock, VirtualClock} from '../runtime/clock.js'
import type {Clock} from '../runtime/ports.js'
import {UserError} from '../errors.js'
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
}

function describeRuntime(runtime: Runtime): string {
  const d = runtime.describe()
  const part = (p: {kind: string; location: string; fallbackReason?: string}) => `${p.kind} (${p.location})`
  return d.bus.kind === 'memory' && d.store.kind === 'memory' ? 'in-process' : `bus ${part(d.bus)}, store ${part(d.store)}`
}

/*
 * The runtime pieces below are written in parallel with the simulator; until they are all part of
 * the build they are imported by (non-literal) specifier and typed by the signatures agreed for them.
 */
interface Parts {
  openRuntime(options: {redisUrl?: string; mongoUrl?: string; inProcess?: boolean; clock?: Clock}): Promise<Runtime>
  createPublisher(options: Record<string, unknown>): {
    draft(type: string, payload: Record<string, unknown>, options?: Record<string, unknown>): EventEnvelope
    publish(events: EventEnvelope[], options?: {trusted?: boolean}): Promise<{accepted: unknown; duplicates: unknown; rejected: unknown}>
  }
  createOutboxRelay(options: Record<string, unknown>): {start(): unknown; kick(): void; stop(): Promise<unknown>}
  startConsumer(deps: Record<string, unknown>, service: SimService, options: Record<string, unknown>): {stop(): Promise<unknown>}
  loadCatalog(path?: string): Promise<Catalog>
  createValidator(catalog: Catalog): unknown
  createPayloadGenerator(schema: JsonSchema): (faker: Faker) => Record<string, unknown>
}

const PART_MODULES = ['../runtime/open.js', '../runtime/publisher.js', '../runtime/relay.js', '../runtime/consumer.js', '../catalog/load.js', '../catalog/validate.js', '../catalog/example.js']

async function loadParts(): Promise<Parts> {
  const parts: Record<string, unknown> = {}
  for (const specifier of PART_MODULES) {
    try {
      Object.assign(parts, await import(specifier))
    } catch (error) {
      if ((error as {code?: string}).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(specifier.slice(3))) {
        throw new UserError(`This build of tektree lacks ${specifier.slice(3).replace(/\.js$/, '')}, which the simulator needs.`, {code: 'NOT_AVAILABLE', exitCode: 1})
      }
      throw error
    }
  }
  return parts as unknown as Parts
}

const count = (value: unknown): number => (Array.isArray(value) ? value.length : Number(value ?? 0))

export async function openEngine(options: EngineOptions): Promise<SimEngine> {
  const {openRuntime, createPublisher, createOutboxRelay, startConsumer, loadCatalog, createValidator, createPayloadGenerator} = await loadParts()
  const catalog = await loadCatalog(options.catalogPath)
  const ownsRuntime = !options.runtime
  const clock = options.clockSpeed === 1 ? new SystemClock() : new VirtualClock({speed: options.clockSpeed})
  const runtime =
    options.runtime ?? (await openRuntime({redisUrl: options.redisUrl, mongoUrl: options.mongoUrl, inProcess: options.inProcess, clock}))
  try {
    const validator = createValidator(catalog)
    const producerId = `tektree-simulate-${process.pid}`
    const relay = createOutboxRelay({store: runtime.store, bus: runtime.bus, catalog, metrics: runtime.metrics, owner: producerId})
    const publisher = createPublisher({store: runtime.store, catalog, validator, relay, producerId, metrics: runtime.metrics})
    const consumerDeps = {
      bus: runtime.bus,
      store: runtime.store,
      leaderboards: runtime.leaderboards,
      clock: runtime.clock,
      metrics: runtime.metrics,
      catalog,
      validator,
      publisher,
      relay,
    }
    return {
      runtime,
      catalog,
      description: describeRuntime(runtime),
      envelope: (draft) =>
        publisher.draft(draft.type, draft.payload, {
          correlationId: draft.correlationId,
          ...(draft.eventId ? {eventId: draft.eventId} : {}),
        }) as EventEnvelope,
      async publish(envelopes) {
        const result = await publisher.publish(envelopes, {trusted: true})
        const rejected = (Array.isArray(result.rejected) ? result.rejected : []).map((r: any) => ({
          eventId: r?.event_id ?? r?.eventId ?? r?.envelope?.event_id,
          type: r?.event_type ?? r?.type ?? r?.envelope?.event_type,
          message: String(r?.error?.error?.message ?? r?.error?.message ?? r?.message ?? r?.error ?? 'rejected'),
        }))
        return {accepted: count(result.accepted), duplicates: count(result.duplicates), rejected}
      },
      relay: {
        start: () => void relay.start(),
        kick: () => relay.kick(),
        stop: async () => {
          await relay.stop()
        },
      },
      startConsumer(service, instance) {
        const abort = new AbortController()
        const handle = startConsumer(consumerDeps as any, service as any, {consumer: instance, signal: abort.signal, visibilityTimeoutMs: options.visibilityTimeoutMs ?? 5000} as any)
        return {
          stop: async () => {
            if (abort.signal.aborted) return
            await handle.stop()
          },
          crash: () => abort.abort(new Error('simulated consumer crash')),
        }
      },
      payloadGenerator: (schema) => createPayloadGenerator(schema) as (faker: Faker) => Record<string, unknown>,
      async close() {
        if (ownsRuntime) await runtime.close()
      },
    }
  } catch (error) {
    if (ownsRuntime) await runtime.close()
    throw error
  }
}
