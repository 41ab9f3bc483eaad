/**
 * Reconcile: the store's published events against what the bus holds, and republish what it lost.
 *
 * Why: the relay marks an event published once the bus accepted it. A bus that then loses writes
 * (redis-server with AOF everysec loses up to its last second in a crash) leaves events the store
 * calls published that no consumer will ever see, and nothing else notices. Consumers dedupe by
 * event_id, so republishing is safe; an event the bus still holds is never sent again.
 *
 * How, through the ports only (so a Kafka bus reconciles the same way):
 * 1. `until` = now: events marked published after it are left out (the relay is publishing them
 *    while this reads the bus, and they would look missing).
 * 2. The event ids each topic partition holds from the window's start on (Bus.eventIds, a page at a
 *    time): a set of ids, so memory grows with what the bus holds in the window, never with the
 *    store. `sinceMs` bounds both sides.
 * 3. The store's published events (Outbox.published, streamed in append order), each placed on its
 *    topic partition as the relay places it. One the bus does not hold is missing, unless it is
 *    older than its topic's retention period (the catalog's: the only trimming tektree does), which
 *    may have removed it. Not "older than the oldest entry the partition still holds": after a
 *    crash that took a partition's whole content, the entries published since would make every
 *    lost event look trimmed, and when in doubt republishing is harmless while skipping loses.
 * 4. The missing ones are republished in append order (so each aggregate keeps its order), in
 *    batches, to the same topic and partition; with dryRun only listed.
 */
import type {Catalog} from '../catalog/types.js'
import type {EventEnvelope} from '../core/envelope.js'
import {partitionFor} from '../core/partition.js'
import type {Bus, Store, TopicSpec} from '../core/ports.js'
import {toOutgoingMessage} from './relay.js'

export interface ReconcileOptions {
  store: Store
  bus: Bus
  catalog: Catalog
  /** Only events published at or after this (ms); default: everything the store marked published. */
  sinceMs?: number
  /** List what is missing, republish nothing. */
  dryRun?: boolean
  /** Events per bus publish, and bus entries per read (default 500). */
  batchSize?: number
  /** How many missing events the result lists (default 100; all are counted and republished). */
  listLimit?: number
  /** Clock differences between the store's process and the bus (ms, default 5000): kept on the safe side. */
  skewMs?: number
  now?: () => number
}

export interface MissingEvent {
  event_id: string
  event_type: string
  topic: string
  partition: number
  published_at: string
}

export interface ReconcileResult {
  /** Published events compared with the bus. */
  checked: number
  /** Published events the bus no longer holds (and retention did not remove). */
  missing: number
  /** Of those, how many were published again (0 with dryRun). */
  republished: number
  /** Not on the bus, but older than their topic's retention period: trimmed, not lost. */
  trimmed: number
  /** Published after reconcile began (the relay's current work): left for the next run. */
  skipped: number
  dryRun: boolean
  since: string | null
  /** The first listLimit missing events. */
  sample: MissingEvent[]
}

export async function reconcile(options: ReconcileOptions): Promise<ReconcileResult> {
  const {store, bus, catalog} = options
  const batchSize = Math.max(1, options.batchSize ?? 500)
  const listLimit = Math.max(0, options.listLimit ?? 100)
  const skewMs = Math.max(0, options.skewMs ?? 5_000)
  const now = options.now ?? Date.now
  const sinceMs = options.sinceMs
  const dryRun = Boolean(options.dryRun)
  const until = now()

  const specs = catalog.topics()
  // The bus may have lost its topic metadata with everything else (no AOF at all): recreate it.
  await bus.ensureTopics(specs)
  const bySpec = new Map<string, TopicSpec>(specs.map((spec) => [spec.name, spec]))

  const onBus = new Set<string>()
  for (const spec of specs) {
    for (let p = 0; p < spec.partitions; p++) {
      let afterId: string | null = null
      for (;;) {
        const page = await bus.eventIds(spec.name, p, afterId === null ? {sinceMs: sinceMs === undefined ? undefined : sinceMs - skewMs, count: batchSize} : {afterId, count: batchSize})
        for (const entry of page) if (entry.eventId !== null) onBus.add(entry.eventId)
        if (page.length < batchSize) break
        afterId = page[page.length - 1].id
      }
    }
  }

  const result: ReconcileResult = {checked: 0, missing: 0, republished: 0, trimmed: 0, skipped: 0, dryRun, since: sinceMs === undefined ? null : new Date(sinceMs).toISOString(), sample: []}
  let batch: EventEnvelope[] = []
  const flush = async () => {
    if (batch.length === 0) return
    const publishedAt = Date.now()
    await bus.publish(batch.map((event) => toOutgoingMessage(catalog, event, publishedAt)))
    result.republished += batch.length
    batch = []
  }

  for await (const {event, publishedAt} of store.outbox.published(sinceMs === undefined ? {} : {sinceMs})) {
    if (publishedAt > until) {
      result.skipped++
      continue
    }
    const message = toOutgoingMessage(catalog, event, 0)
    const spec = bySpec.get(message.topic)
    // A type the catalog no longer places on a topic it has: nothing to compare it with.
    if (!spec) continue
    if (onBus.has(event.event_id)) {
      result.checked++
      continue
    }
    // Events marked before the store recorded when (publishedAt 0) count as trimmed where the topic
    // has a retention period (too old to tell), and are compared where it keeps everything.
    const maxAgeMs = spec.retention?.maxAgeMs
    if (maxAgeMs !== undefined && publishedAt < until - maxAgeMs - skewMs) {
      result.trimmed++
      continue
    }
    result.checked++
    result.missing++
    const partition = partitionFor(message.key, spec.partitions)
    if (result.sample.length < listLimit) {
      result.sample.push({event_id: event.event_id, event_type: event.event_type, topic: spec.name, partition, published_at: new Date(publishedAt).toISOString()})
    }
    if (dryRun) continue
    batch.push(event)
    if (batch.length >= batchSize) await flush()
  }
  if (!dryRun) await flush()
  return result
}
