/**
 * Helpers shared by the contract suites: deadline-bounded polling (never fixed sleeps, never timing
 * assertions) and builders for envelopes and DLQ records.
 */
import {randomUUID} from 'node:crypto'
import type {EventEnvelope} from '../../src/core/envelope.js'
import type {Delivery, DlqRecord, Subscription} from '../../src/core/ports.js'

export function uniqueName(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Polls `condition` until it is truthy or the deadline passes (then throws with `message`).
 * Returns the truthy value.
 */
export async function until<T>(
  condition: () => T | Promise<T>,
  options: {timeoutMs?: number; intervalMs?: number; message?: string} = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let last: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
      last = value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(`until: ${options.message ?? 'condition not met'} before the deadline (last: ${String(last)})`)
    }
    await pause(options.intervalMs ?? 20)
  }
}

/**
 * Calls next() until `done(all)` is true or the deadline passes; acks each batch when `ack` is set.
 * Returns every delivery received, in the order received.
 */
export async function consumeUntil(
  sub: Subscription,
  done: (all: Delivery[]) => boolean,
  options: {ack?: boolean; timeoutMs?: number; message?: string} = {},
): Promise<Delivery[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  const all: Delivery[] = []
  while (!done(all)) {
    if (Date.now() > deadline) {
      throw new Error(`consumeUntil: ${options.message ?? 'not done'} before the deadline (received ${all.length})`)
    }
    const batch = await sub.next()
    all.push(...batch)
    if (options.ack !== false && batch.length > 0) await sub.ack(batch)
  }
  return all
}

/** Settles within `ms` or throws: proves a promise does not hang, without asserting how fast it is. */
export async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined
  const outcome = Promise.allSettled([promise]).then(([result]) => result)
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms)
  })
  const result = await Promise.race([outcome, timeout])
  clearTimeout(timer)
  if (result === 'timeout') throw new Error(`${what} did not settle within ${ms} ms`)
  return result
}

export function makeEvent(overrides: Partial<EventEnvelope> & {aggregateId?: string} = {}): EventEnvelope {
  const {aggregateId, ...rest} = overrides
  const id = randomUUID()
  return {
    event_id: id,
    event_type: 'knowledge.question.posted',
    event_version: '1.0.0',
    timestamp: new Date('2025-01-01T00:00:00.000Z').toISOString(),
    source_service: 'contract-tests',
    payload: {question_id: aggregateId ?? `q-${id}`, title: 'How?'},
    trace_id: randomUUID().replace(/-/g, ''),
    correlation_id: randomUUID(),
    causation_id: null,
    producer_id: 'contract-tests-1',
    metadata: {aggregate_id: aggregateId ?? `q-${id}`, aggregate_type: 'question'},
    ...rest,
  }
}

export function makeDlqRecord(overrides: Partial<DlqRecord> = {}): DlqRecord {
  const group = overrides.group ?? 'test-group'
  const eventId = overrides.event_id === undefined ? randomUUID() : overrides.event_id
  const at = new Date('2025-01-01T00:00:00.000Z').toISOString()
  return {
    id: `${group}:${eventId ?? randomUUID()}`,
    group,
    event_id: eventId,
    event_type: 'knowledge.question.posted',
    topic: 'tektree.knowledge',
    partition: 0,
    delivery_id: '1-0',
    error: {error: {code: 'HANDLER_FAILED', message: 'boom', details: {attempt: 3}}},
    attempts: 3,
    first_failure_at: at,
    last_failure_at: at,
    dead_lettered_at: at,
    raw: '{"event_id":"x"}',
    envelope: null,
    ...overrides,
  }
}
