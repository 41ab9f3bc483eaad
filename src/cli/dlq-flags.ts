/** The DLQ commands' filters, read the same way by each. */
import {Flags} from '@oclif/core'
import {parseDuration} from '../core/duration.js'
import {UserError} from '../errors.js'
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
