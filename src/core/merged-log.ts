/**
 * The store's log with the events archived out of it (`tektree archive run`) merged back in, as
 * the projections saw them: whatever reads the whole log to rebuild or check state (verify, a
 * rebuild, a shadow run) must read both, or every archived event's effects go missing.
 */
import type {EventEnvelope} from './envelope.js'

export interface LogEntry {
  event: EventEnvelope
  /** Read from the archive (not the store). */
  archived: boolean
}

/**
 * `log` (the store's, in append order) with `archived` merged in by timestamp, the archive's
 * events first among equal times; an event both archived and back in the store (restored) comes
 * once. The archive is read whole first (it is sorted here; files are per type and time range).
 */
export async function* withArchived(log: AsyncIterable<EventEnvelope>, archived: AsyncIterable<EventEnvelope> | undefined): AsyncGenerator<LogEntry> {
  const sorted = await sortedByTime(archived)
  if (sorted.length === 0) {
    // No archive (the usual case): the store's log as it is, without a date parse per event.
    for await (const event of log) yield {event, archived: false}
    return
  }
  const archivedIds = new Set(sorted.map((event) => event.event_id))
  const given = new Set<string>()
  const fresh = (event: EventEnvelope) => {
    if (!archivedIds.has(event.event_id)) return true
    if (given.has(event.event_id)) return false
    given.add(event.event_id)
    return true
  }
  let next = 0
  for await (const event of log) {
    const at = Date.parse(event.timestamp)
    while (next < sorted.length && Date.parse(sorted[next].timestamp) <= at) {
      const old = sorted[next++]
      if (fresh(old)) yield {event: old, archived: true}
    }
    if (fresh(event)) yield {event, archived: false}
  }
  while (next < sorted.length) {
    const old = sorted[next++]
    if (fresh(old)) yield {event: old, archived: true}
  }
}

async function sortedByTime(events: AsyncIterable<EventEnvelope> | undefined): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = []
  if (!events) return out
  for await (const event of events) out.push(event)
  // Stable: events of one timestamp keep the archive's order (their append order within a file).
  return out.map((event, i) => ({event, i, at: Date.parse(event.timestamp)})).sort((a, b) => a.at - b.at || a.i - b.i).map((x) => x.event)
}
