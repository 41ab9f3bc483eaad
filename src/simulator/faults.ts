/**
 * Fault injection. Each fault imitates something a real deployment does:
 * - poison: a misbehaving producer writes garbage or schema-invalid JSON straight to the bus,
 *   bypassing the store and validation;
 * - duplicates: the bus delivers the SAME envelope again (at-least-once), straight to the bus;
 * - reordering: events of different aggregates swap places within a small window (global order is
 *   not guaranteed); one aggregate's events never change order;
 * - handler failures: a service's handler fails, deterministically by hash(event_id, attempt), on the
 *   first attempt (transient: the retry succeeds) or always (permanent: it ends in the DLQ);
 * - consumer crashes: handled by the run loop (abort a consumer without acking, start a new one).
 */
import type {EventEnvelope} from '../core/envelope.js'
import type {OutgoingMessage} from '../core/ports.js'
import type {Catalog} from '../catalog/types.js'
import type {SimDraft} from './journeys.js'
import {type Random, unitHash} from './random.js'

export type PoisonKind = 'garbage' | 'not-an-envelope' | 'schema-invalid'

/**
 * One poison message on `topic`. Garbage bytes cannot be parsed at all; "not-an-envelope" is JSON
 * without the envelope's fields; "schema-invalid" is a well-formed envelope of a real type whose
 * payload breaks the schema (an old producer, a typo).
 */
export function makePoison(random: Random, topic: string, eventType: string | undefined, kind?: PoisonKind): OutgoingMessage & {kind: PoisonKind} {
  const chosen: PoisonKind = kind ?? random.pick(eventType ? (['garbage', 'not-an-envelope', 'schema-invalid'] as const) : (['garbage', 'not-an-envelope'] as const))
  const id = random.uuid()
  let value: string
  if (chosen === 'garbage') {
    const bytes = Array.from({length: 8 + random.int(24)}, () => String.fromCharCode(random.int(256)))
    value = `\u0000\u00ff{${bytes.join('')}`
  } else if (chosen === 'not-an-envelope') {
    value = JSON.stringify({hello: 'world', n: random.int(1000), id})
  } else {
    value = JSON.stringify({
      event_id: id,
      event_type: eventType,
      event_version: '1.0.0',
      timestamp: new Date().toISOString(),
      source_service: 'misbehaving-producer',
      payload: {unexpected_field: true, user_id: 42},
      trace_id: random.uuid(),
      correlation_id: random.uuid(),
      causation_id: null,
      producer_id: 'tektree-simulate-poison',
      metadata: {},
    })
  }
  const headers: Record<string, string> = {event_id: id, published_at: String(Date.now()), poison: chosen}
  if (eventType) headers.event_type = eventType
  return {topic, key: id, value, headers, kind: chosen}
}

/** How many of `n` get a fault at `pct` percent: whole part always, the fraction by chance. */
export function sampleCount(n: number, pct: number, random: Random): number {
  const exact = (n * pct) / 100
  const whole = Math.floor(exact)
  return whole + (random.chance(exact - whole) ? 1 : 0)
}

/** A sample of the same envelopes, to be published again straight to the bus. */
export function pickDuplicates<T>(items: readonly T[], pct: number, random: Random): T[] {
  if (pct <= 0 || items.length === 0) return []
  const count = Math.min(items.length, sampleCount(items.length, pct, random))
  const out: T[] = []
  for (let i = 0; i < count; i++) out.push(items[random.int(items.length)])
  return out
}

/** The aggregate a draft belongs to (its partition key value), for reordering. */
export function draftKey(draft: SimDraft, catalog: Catalog | null): string {
  const field = catalog?.get(draft.type)?.partitionKey
  const value = field ? draft.payload[field] : undefined
  return typeof value === 'string' ? value : `${draft.type}:${JSON.stringify(draft.payload).length}`
}

/**
 * Swaps neighbours that belong to different aggregates, each pair with probability pct%. Only
 * adjacent pairs with different keys move, so one aggregate's events keep their order.
 * Returns the number of swaps.
 */
export function reorderInPlace<T>(items: T[], pct: number, random: Random, keyOf: (item: T) => string): number {
  if (pct <= 0) return 0
  let swaps = 0
  for (let i = 0; i + 1 < items.length; i++) {
    if (!random.chance(pct / 100)) continue
    if (keyOf(items[i]) === keyOf(items[i + 1])) continue
    ;[items[i], items[i + 1]] = [items[i + 1], items[i]]
    swaps++
    i++ // a moved event does not move again
  }
  return swaps
}

export class SimulatedFailure extends Error {
  readonly code: string
  readonly retriable: boolean
  constructor(message: string, code: string, retriable: boolean) {
    super(message)
    this.name = 'SimulatedFailure'
    this.code = code
    this.retriable = retriable
  }
}

/** The handler shape the simulator wraps (structurally the consumer runner's ServiceDefinition). */
export interface HandlerService<C = unknown> {
  name: string
  handle(event: EventEnvelope, ctx: C): Promise<unknown> | unknown
}

export interface FailureCounters {
  transient: number
  permanent: number
}

/**
 * Wraps a service so a deterministic share of events fails. Transient: the first `failAttempts`
 * attempts fail when hash(event_id, attempt) < rate, later ones succeed. Permanent: hash(event_id)
 * < rate fails every time. The attempt comes from ctx (attempt / deliveryCount) when the runner gives
 * it, else it is counted here (bounded map).
 */
export function withFailures<S extends HandlerService<any>>(
  service: S,
  options: {transient?: number; permanent?: number; failAttempts?: number},
  counters: FailureCounters = {transient: 0, permanent: 0},
): S {
  const transient = options.transient ?? 0
  const permanent = options.permanent ?? 0
  const failAttempts = options.failAttempts ?? 1
  if (transient <= 0 && permanent <= 0) return service
  const attempts = new Map<string, number>()
  const original = service.handle.bind(service)
  const handle = async (event: EventEnvelope, ctx: any) => {
    const id = event.event_id
    if (permanent > 0 && unitHash(`${service.name}:${id}:permanent`) < permanent) {
      counters.permanent++
      // Retriable as far as the runner knows: it retries on schedule, then dead-letters.
      throw new SimulatedFailure(`simulated permanent failure in ${service.name}`, 'SIMULATED_PERMANENT_FAILURE', true)
    }
    if (transient > 0) {
      const fromCtx = Number(ctx?.attempt ?? ctx?.deliveryCount ?? ctx?.delivery?.deliveryCount)
      const attempt = Number.isFinite(fromCtx) && fromCtx > 0 ? fromCtx : (attempts.get(id) ?? 0) + 1
      if (attempt <= failAttempts && unitHash(`${service.name}:${id}:${attempt}`) < transient) {
        attempts.set(id, attempt)
        if (attempts.size > 100_000) attempts.delete(attempts.keys().next().value as string)
        counters.transient++
        throw new SimulatedFailure(`simulated transient failure in ${service.name} (attempt ${attempt})`, 'SIMULATED_HANDLER_FAILURE', true)
      }
      attempts.delete(id)
    }
    return original(event, ctx)
  }
  return Object.assign(Object.create(Object.getPrototypeOf(service)), service, {handle}) as S
}
