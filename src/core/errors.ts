/**
 * Errors of the runtime pieces (publisher, outbox relay, consumer runner). Each carries a seed 002
 * error-contract code, so a DLQ record or a command can report it as data.
 */
import {errorContract, type ErrorContract} from './envelope.js'

export class RuntimeError extends Error {
  readonly code: string
  readonly details: Record<string, unknown>

  constructor(message: string, options: {code?: string; details?: Record<string, unknown>; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = 'RuntimeError'
    this.code = options.code ?? 'RUNTIME_ERROR'
    this.details = options.details ?? {}
  }

  toContract(): ErrorContract {
    return errorContract(this.code, this.message, {...this.details})
  }
}

/**
 * Thrown by a handler when retrying cannot help (a business rule says no, the input can never be
 * processed): the consumer runner dead-letters the event at once instead of after every retry.
 */
export class NonRetryableError extends RuntimeError {
  readonly retriable = false

  constructor(message: string, options: {code?: string; details?: Record<string, unknown>; cause?: unknown} = {}) {
    super(message, {code: options.code ?? 'NON_RETRYABLE', details: options.details, cause: options.cause})
    this.name = 'NonRetryableError'
  }
}

/**
 * A bus refuses a message for a topic it does not have (never ensured): retrying cannot help, so the
 * outbox relay counts it against the event and quarantines it after a few attempts.
 */
export class UnknownTopicError extends NonRetryableError {
  constructor(topic: string) {
    super(`Unknown topic "${topic}": call ensureTopics() first`, {code: 'UNKNOWN_TOPIC', details: {topic}})
    this.name = 'UnknownTopicError'
  }
}

/**
 * A commit's handled records were already held (StoreWrites.handled): another consumer of the
 * group completed some of the unit's events first. Nothing of the unit was applied.
 */
export class CommitConflictError extends RuntimeError {
  constructor(scope: string, keys: readonly string[]) {
    super(`${keys.length} event(s) of this unit were completed by another consumer of ${scope} first: nothing of it was applied`, {
      code: 'ALREADY_HANDLED',
      details: {scope, keys: keys.slice(0, 10)},
    })
    this.name = 'CommitConflictError'
  }
}

/**
 * A commit's expected versions (StoreWrites.expect) did not hold: another process wrote a document
 * the unit's handlers read, after they read it. Nothing of the unit was applied; handled again, the
 * events read the document as it is now.
 */
export class StaleReadError extends RuntimeError {
  constructor(readonly documents: ReadonlyArray<{collection: string; id: string; expected: number; found: number}>) {
    const first = documents[0]!
    super(`${first.collection}/${first.id} changed after this unit read it (version ${first.found}, expected ${first.expected}): nothing of it was applied`, {
      code: 'STALE_READ',
      details: {documents: documents.slice(0, 10)},
    })
    this.name = 'StaleReadError'
  }
}

/** The conflict of a unit whose handled records `taken` were held already (a unit is one group's). */
export function handledConflict(taken: ReadonlyArray<{group: string; event_id: string}>): CommitConflictError {
  return new CommitConflictError(`handled:${taken[0]!.group}`, taken.map((r) => r.event_id))
}

/** drain() ran out of time with events still in the outbox. */
export class DrainTimeoutError extends RuntimeError {
  constructor(pending: number, timeoutMs: number) {
    super(`The outbox still holds ${pending} unpublished event(s) after ${timeoutMs} ms`, {
      code: 'DRAIN_TIMEOUT',
      details: {pending, timeout_ms: timeoutMs},
    })
    this.name = 'DrainTimeoutError'
  }
}

/**
 * True when the error says retrying is pointless: a NonRetryableError, or any error carrying
 * `retriable: false` (the kafkajs convention, also used by the simulator's injected failures).
 */
export function isNonRetryable(error: unknown): boolean {
  if (error instanceof NonRetryableError) return true
  return error !== null && typeof error === 'object' && (error as {retriable?: unknown}).retriable === false
}

/** An AbortError, as Clock.sleep and fetch produce them. */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError'
}
