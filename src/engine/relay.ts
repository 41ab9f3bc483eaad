/**
 * The outbox relay (seed 002's outbox, seed 003's polling relay): moves appended events from the
 * store's outbox to the bus, oldest first.
 *
 *   claim (lease) -> bus.publish -> outbox.markPublished -> metrics.published
 *
 * The publish latency recorded is from the event's timestamp to the moment the bus accepted it:
 * consumers can have it from then on; the mark after it is the relay's own bookkeeping.
 *
 * At-least-once: an event is marked published only after the bus accepted it. A bus error keeps the
 * batch (this relay still holds its lease) and retries it with bounded exponential backoff; if the
 * process dies, the lease expires and the events are claimed again. A crash between publish and
 * markPublished sends an event twice: consumers dedupe by event_id.
 *
 * Several relays on one store (every process and worker thread has one) never lose an event
 * (leases keep them apart, expiry hands a dead relay's events on) and keep each aggregate's order:
 * a claim skips any aggregate another relay holds a live lease on, so its later events cannot race
 * the earlier ones to the bus (on a standalone mongod two claims at the same instant still can).
 *
 * An event the bus refuses for itself (an error marked `retriable: false`, e.g. a topic the bus does
 * not have) must not hold every later event back: the relay then publishes the batch one event at a
 * time, charges an attempt to each refused event and, after maxAttempts, quarantines it in the store
 * (Outbox.quarantine: out of the outbox, with its error contract, attempts, first and last failure;
 * release() puts it back). While a refused event is being retried, later events of the same partition
 * key wait behind it, so an aggregate's order holds; once it is quarantined they go on (the alternative,
 * quarantining every later event of that aggregate for ever, turns one bad event into a stuck user).
 * A bus that is down (any other error) is never charged to the events: the batch waits and retries.
 *
 * Idle, it waits for kick() (the publisher calls it after every append) or pollMs: no busy loop.
 */
import type {Catalog} from '../catalog/types.js'
import {errorContract, type ErrorContract, type EventEnvelope} from '../core/envelope.js'
import {DrainTimeoutError, isNonRetryable, RuntimeError} from '../core/errors.js'
import type {RuntimeMetrics} from '../core/metrics.js'
import type {Bus, Clock, OutgoingMessage, QuarantineEntry, Store} from '../core/ports.js'

export interface OutboxRelayOptions {
  store: Store
  bus: Bus
  catalog: Catalog
  metrics?: RuntimeMetrics
  /** Lease owner name: unique per relay instance. */
  owner: string
  batchSize?: number
  pollMs?: number
  leaseMs?: number
  /** For publish latency (now - event timestamp); default: wall clock. */
  clock?: Clock
  /** Longest backoff after bus errors (default 2000 ms). */
  maxBackoffMs?: number
  /** Bus/store errors, as they happen (the loop carries on). */
  onError?: (error: unknown) => void
  /** Each batch once the bus has accepted it (the simulator redelivers from these). */
  onPublished?: (events: readonly EventEnvelope[]) => void
  /** Attempts at an event the bus refuses (not retriable) before it is quarantined (default 5). */
  maxAttempts?: number
  /** Events quarantined, as they are. */
  onQuarantined?: (entries: readonly QuarantineEntry[]) => void
}

export interface RelayStats {
  running: boolean
  /** Events accepted by the bus and marked published. */
  published: number
  batches: number
  errors: number
  consecutiveErrors: number
  lastError: string | null
  /** Events held after a failed publish, waiting for the next attempt. */
  held: number
  /** Events this relay quarantined (the bus refused them maxAttempts times). */
  quarantined: number
}

export interface OutboxRelay {
  /** Starts the loop (idempotent). */
  start(): void
  /** Wakes an idle loop now. */
  kick(): void
  /** Stops after the current batch; resolves when the loop has ended. */
  stop(): Promise<void>
  /**
   * Resolves when the outbox is empty; rejects with DrainTimeoutError (code DRAIN_TIMEOUT) after
   * timeoutMs. Works with or without start(): when stopped it publishes batches itself.
   */
  drain(timeoutMs?: number): Promise<void>
  /** One claim -> publish -> mark cycle; returns how many events it published (throws bus errors). */
  flush(): Promise<number>
  stats(): RelayStats
}

const sleepReal = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, Math.max(0, ms))
    signal?.addEventListener('abort', done, {once: true})
  })

const isReported = (error: unknown) => (error as {reported?: unknown} | null)?.reported === true

function contractOf(error: unknown): ErrorContract {
  const own = (error as {toContract?: () => ErrorContract} | null)?.toContract?.()
  if (own) return own
  return errorContract('PUBLISH_REFUSED', error instanceof Error ? error.message : String(error))
}

export function toOutgoingMessage(catalog: Catalog, event: EventEnvelope, publishedAt: number): OutgoingMessage {
  const definition = catalog.get(event.event_type)
  return {
    // An event the catalog no longer knows still goes out, on its domain's topic, so it is not stuck.
    topic: definition?.topic ?? `tektree.${event.event_type.split('.')[0]}`,
    key: event.metadata?.aggregate_id ?? event.event_id,
    value: JSON.stringify(event),
    headers: {event_type: event.event_type, event_id: event.event_id, published_at: String(publishedAt)},
  }
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const {store, bus, catalog, metrics, owner} = options
  const batchSize = options.batchSize ?? 1000
  const pollMs = options.pollMs ?? 25
  const leaseMs = options.leaseMs ?? 10_000
  const maxBackoffMs = options.maxBackoffMs ?? 2_000
  const maxAttempts = Math.max(1, options.maxAttempts ?? 5)
  /** Refused events still being retried: attempts so far, by event_id. */
  const refusals = new Map<string, {attempts: number; first: string; last: string; error: ErrorContract}>()
  const now = options.clock ? () => options.clock!.now() : Date.now

  let running = false
  let loop: Promise<void> | null = null
  let stopController = new AbortController()
  let wake: (() => void) | null = null
  let kicked = false
  /** A claimed batch the bus refused: published first next time (keeps order, no lease wait). */
  let held: EventEnvelope[] = []
  let topicsReady = false
  let cycle: Promise<number> | null = null
  const cycleWaiters = new Set<() => void>()
  const stats: RelayStats = {running: false, published: 0, batches: 0, errors: 0, consecutiveErrors: 0, lastError: null, held: 0, quarantined: 0}

  const report = (error: unknown) => {
    stats.errors++
    stats.consecutiveErrors++
    stats.lastError = error instanceof Error ? error.message : String(error)
    try {
      options.onError?.(error)
    } catch {
      // A listener's failure must not stop the relay.
    }
  }

  const runCycle = async (): Promise<number> => {
    if (!topicsReady) {
      await bus.ensureTopics(catalog.topics())
      topicsReady = true
    }
    const batch = held.length > 0 ? held : await store.outbox.claim({owner, limit: batchSize, leaseMs})
    if (batch.length === 0) return 0
    held = batch
    stats.held = batch.length
    const publishedAt = Date.now()
    const messages = new Array<OutgoingMessage>(batch.length)
    for (let i = 0; i < batch.length; i++) messages[i] = toOutgoingMessage(catalog, batch[i], publishedAt)
    try {
      await bus.publish(messages)
    } catch (error) {
      if (!isNonRetryable(error)) throw error
      return isolate(batch, messages)
    }
    // The bus has them: from here a failure only risks a duplicate, never a loss.
    const acceptedAt = now()
    held = []
    stats.held = 0
    await published(batch, acceptedAt)
    return batch.length
  }

  const published = async (events: readonly EventEnvelope[], acceptedAt: number) => {
    options.onPublished?.(events)
    const ids = new Array<string>(events.length)
    for (let i = 0; i < events.length; i++) ids[i] = events[i].event_id
    await store.outbox.markPublished(ids)
    for (const id of ids) refusals.delete(id)
    stats.published += events.length
    stats.batches++
    stats.consecutiveErrors = 0
    if (metrics) for (const event of events) metrics.published(event.event_type, 1, acceptedAt - Date.parse(event.timestamp))
  }

  /**
   * The bus refused something in the batch for good: one event at a time, so the others go out.
   * A refused event is charged an attempt (and reported once per attempt); later events of its
   * partition key wait behind it; after maxAttempts it is quarantined and they go on.
   */
  const isolate = async (batch: readonly EventEnvelope[], messages: readonly OutgoingMessage[]): Promise<number> => {
    const sentAt: number[] = []
    const waitingAt: number[] = []
    const quarantine: QuarantineEntry[] = []
    const blocked = new Set<string>()
    let busDown: unknown = null
    // A topic at a time first (what a bus refuses is usually a topic: one publish for each of the
    // others); one event at a time only within a topic the bus refused. Order matters per topic
    // partition only, so topics may go in any order.
    const byTopic = new Map<string, number[]>()
    for (let i = 0; i < batch.length; i++) {
      const indexes = byTopic.get(messages[i].topic)
      if (indexes) indexes.push(i)
      else byTopic.set(messages[i].topic, [i])
    }
    const singles: number[] = []
    for (const indexes of byTopic.values()) {
      if (busDown !== null) {
        waitingAt.push(...indexes)
        continue
      }
      // The whole batch was one topic: it was just refused as a whole.
      if (byTopic.size === 1) {
        singles.push(...indexes)
        continue
      }
      try {
        await bus.publish(indexes.map((i) => messages[i]))
        sentAt.push(...indexes)
      } catch (error) {
        if (isNonRetryable(error)) singles.push(...indexes)
        else {
          busDown = error
          waitingAt.push(...indexes)
        }
      }
    }
    for (const i of singles) {
      const event = batch[i]
      const slot = `${messages[i].topic}\u0000${messages[i].key}`
      if (busDown !== null || blocked.has(slot)) {
        waitingAt.push(i)
        continue
      }
      try {
        await bus.publish([messages[i]])
        sentAt.push(i)
      } catch (error) {
        if (!isNonRetryable(error)) {
          busDown = error
          waitingAt.push(i)
          continue
        }
        report(error)
        const at = new Date().toISOString()
        const contract = contractOf(error)
        const seen = refusals.get(event.event_id)
        const entry = {attempts: (seen?.attempts ?? 0) + 1, first: seen?.first ?? at, last: at, error: contract}
        if (entry.attempts >= maxAttempts) {
          refusals.delete(event.event_id)
          quarantine.push({event_id: event.event_id, error: contract, attempts: entry.attempts, first_failure_at: entry.first, last_failure_at: at})
        } else {
          refusals.set(event.event_id, entry)
          blocked.add(slot)
          waitingAt.push(i)
        }
      }
    }
    const inOrder = (indexes: number[]) => indexes.sort((a, b) => a - b).map((i) => batch[i])
    const sent = inOrder(sentAt)
    const waiting = inOrder(waitingAt)
    held = waiting
    stats.held = waiting.length
    if (sent.length > 0) await published(sent, now())
    if (quarantine.length > 0) {
      stats.quarantined += await store.outbox.quarantine(quarantine)
      // Said where relay errors are said (services, workers, simulate), once per event, not retried.
      for (const entry of quarantine) {
        const event = batch.find((e) => e.event_id === entry.event_id)
        report(
          new RuntimeError(
            `quarantined ${event?.event_type ?? 'an event'} ${entry.event_id} after ${entry.attempts} refused attempt(s): ${entry.error.error.message} (out of the outbox; \`tektree status\` counts them)`,
            {code: 'OUTBOX_QUARANTINED', details: {event_id: entry.event_id, attempts: entry.attempts, error: entry.error}},
          ),
        )
      }
      try {
        options.onQuarantined?.(quarantine)
      } catch {
        // A listener's failure must not stop the relay.
      }
    }
    if (busDown !== null) throw busDown
    // Refused events wait for their next attempt after a backoff; each refusal was reported above.
    if (waiting.length > 0) throw Object.assign(new Error(`${waiting.length} event(s) held back behind a refused event`), {reported: true})
    return sent.length
  }

  /** Cycles never overlap (the loop and drain() may both ask for one). */
  const flush = (): Promise<number> => {
    if (cycle) return cycle
    cycle = runCycle().finally(() => {
      cycle = null
      for (const notify of [...cycleWaiters]) notify()
    })
    return cycle
  }

  const idle = (ms: number): Promise<void> => {
    if (kicked) {
      kicked = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const signal = stopController.signal
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        if (wake === done) wake = null
        kicked = false
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, {once: true})
      wake = done
    })
  }

  const run = async (): Promise<void> => {
    while (running) {
      let published = 0
      try {
        kicked = false
        published = await flush()
      } catch (error) {
        if (!isReported(error)) report(error)
        const backoff = Math.min(maxBackoffMs, pollMs * 2 ** Math.min(stats.consecutiveErrors, 16))
        await sleepReal(backoff, stopController.signal)
        continue
      }
      if (!running) break
      if (published >= batchSize) {
        // More may be waiting: go on, but let other work (consumers, the publisher) have a turn.
        await new Promise<void>((resolve) => setImmediate(resolve))
        continue
      }
      await idle(pollMs)
    }
  }

  const relay: OutboxRelay = {
    start() {
      if (running) return
      running = true
      stats.running = true
      stopController = new AbortController()
      loop = run().finally(() => {
        stats.running = false
      })
    },
    kick() {
      kicked = true
      wake?.()
    },
    async stop() {
      if (!running) {
        await loop
        return
      }
      running = false
      stopController.abort()
      await loop
      loop = null
    },
    async drain(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let failures = 0
      for (;;) {
        const pending = await store.outbox.pending()
        if (pending === 0 && held.length === 0) return
        const left = deadline - Date.now()
        if (left <= 0) throw new DrainTimeoutError(pending, timeoutMs)
        if (running) {
          relay.kick()
          // Wait for the loop's next cycle to end (or a short tick: leases held by others expire on their own).
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer)
              cycleWaiters.delete(done)
              resolve()
            }
            const timer = setTimeout(done, Math.min(left, Math.max(pollMs, 10)))
            cycleWaiters.add(done)
          })
          continue
        }
        try {
          const n = await flush()
          failures = 0
          if (n === 0) await sleepReal(Math.min(left, pollMs))
        } catch (error) {
          if (!isReported(error)) report(error)
          failures++
          await sleepReal(Math.min(left, maxBackoffMs, pollMs * 2 ** Math.min(failures, 16)))
        }
      }
    },
    flush,
    stats: () => ({...stats}),
  }
  return relay
}
