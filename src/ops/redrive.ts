/**
 * Sends DLQ entries back to the group that dead-lettered them, and to no other: onto the group's
 * own topic (engine/direct.ts), at a bounded rate. An entry stays in the DLQ until its group has
 * handled and acked the event (the runner removes it then); one that fails again goes back in with
 * its attempts counted. Interrupted, it can be run again: what is still in the DLQ is sent again,
 * and the handlers' guards make a second copy apply nothing twice.
 */
import type {Catalog} from '../catalog/types.js'
import {pauseUntil} from '../core/pause.js'
import type {Bus, DlqRecord} from '../core/ports.js'
import {directMessage, directTopicSpec, FIRST_FAILURE_HEADER, PRIOR_ATTEMPTS_HEADER, REDRIVE_HEADER} from '../engine/direct.js'

export interface RedriveOptions {
  bus: Bus
  catalog: Catalog
  records: readonly DlqRecord[]
  /** Messages a second (none = as fast as the bus takes them). */
  ratePerSec?: number
  signal?: AbortSignal
  onProgress?: (sent: number, total: number) => void
}

export interface RedriveResult {
  sent: number
  total: number
  interrupted: boolean
}

export function redriveMessage(catalog: Catalog, record: DlqRecord) {
  const headers = {[REDRIVE_HEADER]: record.id, [PRIOR_ATTEMPTS_HEADER]: String(record.attempts), [FIRST_FAILURE_HEADER]: record.first_failure_at}
  return record.envelope
    ? directMessage(catalog, record.group, record.envelope, headers)
    : directMessage(catalog, record.group, {raw: record.raw, key: record.event_id ?? record.delivery_id, type: record.event_type}, headers)
}

export async function redrive(options: RedriveOptions): Promise<RedriveResult> {
  const {bus, catalog, records, signal} = options
  const total = records.length
  await bus.ensureTopics([...new Set(records.map((r) => r.group))].map(directTopicSpec))
  const rate = options.ratePerSec && options.ratePerSec > 0 ? options.ratePerSec : null
  // Batches of at most a tenth of a second's worth, so the rate holds over short runs too.
  const batchSize = rate === null ? 500 : Math.max(1, Math.min(500, Math.floor(rate / 10)))
  const started = Date.now()
  let sent = 0
  while (sent < total) {
    if (signal?.aborted) return {sent, total, interrupted: true}
    const batch = records.slice(sent, sent + batchSize)
    await bus.publish(batch.map((record) => redriveMessage(catalog, record)))
    sent += batch.length
    options.onProgress?.(sent, total)
    if (rate !== null && sent < total) {
      const due = started + (sent / rate) * 1000
      if (!(await pauseUntil(due, signal))) return {sent, total, interrupted: true}
    }
  }
  return {sent, total, interrupted: false}
}
