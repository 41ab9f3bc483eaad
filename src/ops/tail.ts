/**
 * Events as they reach the bus, outside any consumer group (kcat -C, rpk topic consume): from the
 * beginning, from the end, or from a time, across every partition of the chosen topics in enqueue
 * order, filtered by type, aggregate, correlation id and payload fields. Reads through Bus.read, so
 * it takes nothing from the groups and works on any bus.
 */
import {compileTypeGlobs} from '../core/glob.js'
import {pause} from '../core/pause.js'
import type {Bus, Delivery} from '../core/ports.js'

export type TailFrom = 'beginning' | 'end' | number

export interface TailFilter {
  types?: string[]
  aggregateId?: string
  correlationId?: string
  /** Dotted paths into the envelope ("payload.author_id") and the value each must have (as text). */
  where?: Array<{path: string; value: string}>
}

export interface TailOptions {
  bus: Bus
  topics: readonly string[]
  from: TailFrom
  /** Keep waiting for new events once caught up. */
  follow: boolean
  filter?: TailFilter
  limit?: number
  signal?: AbortSignal
  /** How often to look for new events while following (ms). */
  pollMs?: number
}

export interface TailedEvent {
  delivery: Delivery
  /** The parsed envelope, or null when the bytes are not JSON. */
  envelope: Record<string, unknown> | null
}

const PAGE = 500

export async function* tail(options: TailOptions): AsyncGenerator<TailedEvent> {
  const {bus, signal} = options
  const matches = compileFilter(options.filter ?? {})
  const infos = await bus.topics()
  const cursors: Array<{topic: string; partition: number; after: string | null; done: boolean}> = []
  for (const topic of options.topics) {
    const info = infos.find((t) => t.name === topic)
    if (!info) continue
    for (let p = 0; p < info.partitions; p++) {
      const after = options.from === 'beginning' ? null : await bus.positionAt(topic, p, options.from)
      cursors.push({topic, partition: p, after, done: false})
    }
  }
  let emitted = 0
  for (;;) {
    if (signal?.aborted) return
    // One page from every partition, merged by enqueue time: the order they reached the bus.
    const pages = await Promise.all(cursors.map((c) => bus.read(c.topic, c.partition, c.after, PAGE)))
    const batch: Delivery[] = []
    pages.forEach((page, i) => {
      const cursor = cursors[i]
      if (page.length > 0) cursor.after = page[page.length - 1].id
      cursor.done = page.length < PAGE
      batch.push(...page)
    })
    batch.sort(byArrival)
    for (const delivery of batch) {
      const envelope = parse(delivery.value)
      if (!matches(delivery, envelope)) continue
      yield {delivery, envelope}
      if (options.limit !== undefined && ++emitted >= options.limit) return
      if (signal?.aborted) return
    }
    if (cursors.every((c) => c.done)) {
      if (!options.follow) return
      if (!(await pause(options.pollMs ?? 200, signal))) return
    }
  }
}

/** Enqueue time, then the transport id (a sequence in-process; ms-seq on Redis) within a millisecond. */
function byArrival(a: Delivery, b: Delivery): number {
  if (a.enqueuedAt !== b.enqueuedAt) return a.enqueuedAt - b.enqueuedAt
  const [am, as = '0'] = a.id.split('-')
  const [bm, bs = '0'] = b.id.split('-')
  return Number(am) - Number(bm) || Number(as) - Number(bs)
}

function parse(value: string): Record<string, unknown> | null {
  try {
    const parsed = JSON.parse(value) as unknown
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null
  } catch {
    return null
  }
}

function compileFilter(filter: TailFilter): (delivery: Delivery, envelope: Record<string, unknown> | null) => boolean {
  const typeMatches = filter.types && filter.types.length > 0 ? compileTypeGlobs(filter.types) : null
  return (delivery, envelope) => {
    if (typeMatches) {
      const type = delivery.headers.event_type ?? (typeof envelope?.event_type === 'string' ? envelope.event_type : '')
      if (!typeMatches(type)) return false
    }
    if (filter.aggregateId !== undefined) {
      const aggregate = (envelope?.metadata as {aggregate_id?: unknown} | undefined)?.aggregate_id
      if (delivery.key !== filter.aggregateId && aggregate !== filter.aggregateId) return false
    }
    if (filter.correlationId !== undefined && envelope?.correlation_id !== filter.correlationId) return false
    for (const {path, value} of filter.where ?? []) {
      const found = valueAt(envelope, path)
      if (found === undefined || (typeof found === 'object' && found !== null ? JSON.stringify(found) : String(found)) !== value) return false
    }
    return true
  }
}

function valueAt(root: unknown, path: string): unknown {
  let node = root
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}
