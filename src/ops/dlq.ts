/**
 * The dead-letter queue as an operator reads it: entries filtered by group, type, error code and
 * time, grouped by cause (a fingerprint: group, event type, error code and the message with its ids
 * and numbers masked, so a thousand "user 1f3c... not found" are one row), counted against seed
 * 000's alert threshold, and the daily report. Plain code over the Store port.
 */
import {compileTypeGlobs} from '../core/glob.js'
import type {DlqRecord, DlqStore} from '../core/ports.js'
import {printable} from '../core/redact.js'

/** Seed 000, "DLQ Monitoring": alert when the DLQ holds more than this. */
export const DLQ_ALERT_THRESHOLD = 100

export interface DlqFilter {
  group?: string
  /** Event type globs ("payment.*"). */
  types?: string[]
  /** Error codes (exact). */
  codes?: string[]
  /** Dead-lettered at or after / before (ms). */
  since?: number
  until?: number
}

/** Reads every entry that matches (the store filters by group; the rest here). */
export async function listDlq(dlq: DlqStore, filter: DlqFilter = {}): Promise<DlqRecord[]> {
  const records = await dlq.list(filter.group === undefined ? {} : {group: filter.group})
  return records.filter(matcher(filter))
}

export function matcher(filter: DlqFilter): (record: DlqRecord) => boolean {
  const typeMatches = filter.types && filter.types.length > 0 ? compileTypeGlobs(filter.types) : null
  const codes = filter.codes && filter.codes.length > 0 ? new Set(filter.codes) : null
  return (record) => {
    if (filter.group !== undefined && record.group !== filter.group) return false
    if (typeMatches && !typeMatches(record.event_type ?? '')) return false
    if (codes && !codes.has(record.error.error.code)) return false
    const at = Date.parse(record.dead_lettered_at)
    if (filter.since !== undefined && at < filter.since) return false
    if (filter.until !== undefined && at >= filter.until) return false
    return true
  }
}

const MASKS: Array<[RegExp, string]> = [
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>'],
  [/\b\d{4}-\d{2}-\d{2}T[\d:.]+Z?\b/g, '<time>'],
  [/\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b/gi, '<id>'],
  [/\b\d+(?:\.\d+)?\b/g, '<n>'],
]

/** The message with ids, times and numbers masked: what stays is the cause. */
export function maskMessage(message: string): string {
  let out = message
  for (const [pattern, mask] of MASKS) out = out.replace(pattern, mask)
  return out
}

export interface DlqCause {
  fingerprint: string
  group: string
  event_type: string | null
  code: string
  /** The masked message. */
  message: string
  count: number
  first_seen: string
  last_seen: string
  /** Ids of the entries, oldest first. */
  ids: string[]
}

/** Entries grouped by cause, the most frequent first. */
export function groupByCause(records: readonly DlqRecord[]): DlqCause[] {
  const causes = new Map<string, DlqCause>()
  for (const record of records) {
    const message = maskMessage(record.error.error.message)
    const fingerprint = [record.group, record.event_type ?? '?', record.error.error.code, message].join('|')
    let cause = causes.get(fingerprint)
    if (!cause) {
      cause = {fingerprint, group: record.group, event_type: record.event_type, code: record.error.error.code, message, count: 0, first_seen: record.dead_lettered_at, last_seen: record.dead_lettered_at, ids: []}
      causes.set(fingerprint, cause)
    }
    cause.count++
    cause.ids.push(record.id)
    if (record.dead_lettered_at < cause.first_seen) cause.first_seen = record.dead_lettered_at
    if (record.dead_lettered_at > cause.last_seen) cause.last_seen = record.dead_lettered_at
  }
  return [...causes.values()].sort((a, b) => b.count - a.count || a.fingerprint.localeCompare(b.fingerprint))
}

export interface DlqStats {
  total: number
  threshold: number
  over_threshold: boolean
  by_group: Record<string, number>
  by_code: Record<string, number>
  oldest: string | null
  newest: string | null
}

export function dlqStats(records: readonly DlqRecord[], threshold = DLQ_ALERT_THRESHOLD): DlqStats {
  const byGroup: Record<string, number> = {}
  const byCode: Record<string, number> = {}
  let oldest: string | null = null
  let newest: string | null = null
  for (const r of records) {
    byGroup[r.group] = (byGroup[r.group] ?? 0) + 1
    byCode[r.error.error.code] = (byCode[r.error.error.code] ?? 0) + 1
    if (oldest === null || r.dead_lettered_at < oldest) oldest = r.dead_lettered_at
    if (newest === null || r.dead_lettered_at > newest) newest = r.dead_lettered_at
  }
  return {total: records.length, threshold, over_threshold: records.length > threshold, by_group: sortedCounts(byGroup), by_code: sortedCounts(byCode), oldest, newest}
}

function sortedCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a, x], [b, y]) => y - x || a.localeCompare(b)))
}

export interface DlqReport {
  generated_at: string
  since: string
  /** The whole DLQ now. */
  stats: DlqStats
  /** Entries dead-lettered since `since`. */
  new_entries: number
  causes: Array<Omit<DlqCause, 'ids'>>
}

/** The daily report (seed 000): the DLQ now, what arrived since `since`, by cause. */
export function dlqReport(all: readonly DlqRecord[], since: number, now: number, threshold = DLQ_ALERT_THRESHOLD): DlqReport {
  const recent = all.filter(matcher({since}))
  return {
    generated_at: new Date(now).toISOString(),
    since: new Date(since).toISOString(),
    stats: dlqStats(all, threshold),
    new_entries: recent.length,
    causes: groupByCause(recent).map(({ids: _ids, ...cause}) => cause),
  }
}

// A type or message from the bus may hold control characters: shown escaped, never raw.
const cell = (text: string) => printable(text.replace(/\|/g, '\\|').replace(/\n/g, ' '))

export function reportMarkdown(report: DlqReport): string {
  const {stats} = report
  const lines = [
    `# DLQ report`,
    '',
    `Generated ${report.generated_at}, covering entries dead-lettered since ${report.since}.`,
    '',
    `- In the DLQ now: **${stats.total}** (alert threshold ${stats.threshold}: ${stats.over_threshold ? '**over**' : 'under'})`,
    `- New since ${report.since}: **${report.new_entries}**`,
    '',
  ]
  if (report.causes.length > 0) {
    lines.push('## New entries by cause', '', '| count | group | event type | code | message | first | last |', '|---:|---|---|---|---|---|---|')
    for (const c of report.causes) lines.push(`| ${c.count} | ${cell(c.group)} | ${cell(c.event_type ?? '?')} | ${cell(c.code)} | ${cell(c.message)} | ${c.first_seen} | ${c.last_seen} |`)
    lines.push('')
  }
  if (stats.total > 0) {
    lines.push('## The whole DLQ by group', '', '| group | entries |', '|---|---:|')
    for (const [group, n] of Object.entries(stats.by_group)) lines.push(`| ${cell(group)} | ${n} |`)
    lines.push('')
  }
  return lines.join('\n')
}
