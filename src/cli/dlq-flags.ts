/** The DLQ commands' filters, read the same way by each. */
import {Flags} from '@oclif/core'
import {parseDuration} from '../core/duration.js'
import {UserError} from '../errors.js'
import type {DlqRecord, DlqStore} from '../core/ports.js'
import {closest} from '../core/suggest.js'
import type {DlqFilter} from '../ops/dlq.js'

export const dlqFilterFlags = {
  group: Flags.string({summary: 'Only entries of this consumer group (a service name).', helpGroup: 'FILTER'}),
  type: Flags.string({summary: 'Only these event types (globs: "payment.*"); repeatable.', multiple: true, helpGroup: 'FILTER'}),
  code: Flags.string({summary: 'Only these error codes (e.g. VALIDATION_FAILED); repeatable.', multiple: true, helpGroup: 'FILTER'}),
  since: Flags.string({summary: 'Dead-lettered at or after: a duration ago ("24h") or an ISO time.', helpGroup: 'FILTER'}),
  until: Flags.string({summary: 'Dead-lettered before: a duration ago ("1h") or an ISO time.', helpGroup: 'FILTER'}),
}

/** "24h" (that long ago) or an ISO time, as ms since the epoch; a UserError naming the flag otherwise. */
export function parseWhen(text: string, flag: string, now = Date.now()): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text)
    if (Number.isFinite(at)) return at
  } else {
    try {
      return now - parseDuration(text)
    } catch {
      // reported below
    }
  }
  throw new UserError(`--${flag} ${text} is neither a duration nor an ISO time`, {code: 'INVALID_FLAGS', hint: 'Give e.g. 24h, 30m or 2026-11-30T08:00:00Z.', exitCode: 2})
}

export function dlqFilterFrom(flags: {group?: string; type?: string[]; code?: string[]; since?: string; until?: string}): DlqFilter {
  return {
    ...(flags.group ? {group: flags.group} : {}),
    ...(flags.type?.length ? {types: flags.type} : {}),
    ...(flags.code?.length ? {codes: flags.code} : {}),
    ...(flags.since ? {since: parseWhen(flags.since, 'since')} : {}),
    ...(flags.until ? {until: parseWhen(flags.until, 'until')} : {}),
  }
}

/**
 * When a filter by group or error code matched nothing, what the DLQ does hold, with the closest
 * names: a typo (`--group gamificaton`, `--code invalid_json`) otherwise reads as an empty DLQ.
 * On stderr, so that --json and piped output stay the answer.
 */
export async function explainNoMatch(dlq: DlqStore, filter: DlqFilter, matched: readonly DlqRecord[]): Promise<void> {
  if (matched.length > 0 || (filter.group === undefined && !filter.codes?.length)) return
  const all = await dlq.list({})
  if (all.length === 0) return
  const lines: string[] = []
  const say = (flag: string, asked: readonly string[], held: Iterable<string>) => {
    const names = [...new Set(held)].sort()
    const missing = asked.filter((name) => !names.includes(name))
    if (missing.length === 0) return
    const near = [...new Set(missing.flatMap((name) => closest(name, names)))]
    lines.push(`No entry has ${flag} ${missing.join(', ')}${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}; the DLQ holds ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''}.`)
  }
  if (filter.group !== undefined) say('--group', [filter.group], all.map((r) => r.group))
  if (filter.codes?.length) say('--code', filter.codes, all.map((r) => r.error.error.code))
  for (const line of lines) process.stderr.write(`${line}\n`)
}
