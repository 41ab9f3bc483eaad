/**
 * The DLQ console: causes (fingerprints with ids and numbers masked), filters, the alert threshold,
 * the daily report; and the commands on a SQLite store file, as an operator runs them.
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {errorContract} from '../../src/core/envelope.js'
import type {DlqRecord} from '../../src/core/ports.js'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import {dlqReport, dlqStats, groupByCause, maskMessage, matcher, reportMarkdown} from '../../src/ops/dlq.js'

const run = promisify(execFile)

let n = 0
function record(group: string, type: string, code: string, message: string, at: string): DlqRecord {
  const eventId = `0b9f3c1e-8a4d-4e2b-9f6a-${String(++n).padStart(12, '0')}`
  return {
    id: `${group}:${eventId}`,
    group,
    event_id: eventId,
    event_type: type,
    topic: `tektree.${type.split('.')[0]}`,
    partition: 0,
    delivery_id: `${n}-0`,
    error: errorContract(code, message, {service: group}),
    attempts: 4,
    first_failure_at: at,
    last_failure_at: at,
    dead_lettered_at: at,
    raw: JSON.stringify({event_id: eventId, event_type: type}),
    envelope: null,
  }
}

const entries = [
  record('payment', 'payment.subscription.upgraded', 'HANDLER_FAILED', 'user 1f3c9a2e-1111-4e2b-9f6a-2d7c1e5b3a90 not found after 3 tries', '2026-11-29T10:00:00.000Z'),
  record('payment', 'payment.subscription.upgraded', 'HANDLER_FAILED', 'user 9a9a9a9a-2222-4e2b-9f6a-2d7c1e5b3a90 not found after 4 tries', '2026-11-30T09:00:00.000Z'),
  record('email', 'user.registered', 'VALIDATION_FAILED', 'payload.email must match format "email"', '2026-11-30T10:00:00.000Z'),
]

describe('DLQ causes, filters, threshold and report', () => {
  it('masks ids, times and numbers, so one cause is one row', () => {
    expect(maskMessage('user 1f3c9a2e-1111-4e2b-9f6a-2d7c1e5b3a90 not found after 3 tries at 2026-11-30T10:00:00.000Z (id deadbeef0123456789)')).toBe(
      'user <id> not found after <n> tries at <time> (id <id>)',
    )
    const causes = groupByCause(entries)
    expect(causes.map((c) => [c.count, c.group, c.code, c.message])).toEqual([
      [2, 'payment', 'HANDLER_FAILED', 'user <id> not found after <n> tries'],
      [1, 'email', 'VALIDATION_FAILED', 'payload.email must match format "email"'],
    ])
    expect(causes[0]).toMatchObject({first_seen: '2026-11-29T10:00:00.000Z', last_seen: '2026-11-30T09:00:00.000Z', ids: [entries[0].id, entries[1].id]})
  })

  it('filters by group, type glob, code and time', () => {
    const pick = (f: Parameters<typeof matcher>[0]) => entries.filter(matcher(f)).map((e) => e.id)
    expect(pick({group: 'email'})).toEqual([entries[2].id])
    expect(pick({types: ['payment.*']})).toEqual([entries[0].id, entries[1].id])
    expect(pick({codes: ['VALIDATION_FAILED']})).toEqual([entries[2].id])
    expect(pick({since: Date.parse('2026-11-30T00:00:00Z')})).toEqual([entries[1].id, entries[2].id])
    expect(pick({until: Date.parse('2026-11-30T00:00:00Z')})).toEqual([entries[0].id])
  })

  it('flags a DLQ over the alert threshold of 100 (seed 000), not one at it', () => {
    const many = (k: number) => Array.from({length: k}, () => entries[2])
    expect(dlqStats(many(100)).over_threshold).toBe(false)
    expect(dlqStats(many(101))).toMatchObject({total: 101, threshold: 100, over_threshold: true, by_group: {email: 101}})
  })

  it('the daily report counts what arrived in the period, by cause, in markdown', () => {
    const report = dlqReport(entries, Date.parse('2026-11-30T00:00:00Z'), Date.parse('2026-11-30T12:00:00Z'))
    expect(report).toMatchObject({new_entries: 2, stats: {total: 3, over_threshold: false}})
    const md = reportMarkdown(report)
    expect(md).toContain('In the DLQ now: **3**')
    expect(md).toContain('| 1 | payment | payment.subscription.upgraded | HANDLER_FAILED | user <id> not found after <n> tries |')
    expect(md).toContain('| email | 1 |')
  })
})

describe('tektree dlq on a store file', () => {
  let dir: string
  let storeUrl: string
  const cli = (args: string[], env: Record<string, string> = {}) =>
    run('./bin/run.js', ['dlq', ...args, '--store-url', storeUrl, '--bus-url', 'memory:'], {env: {...process.env, NO_COLOR: '1', ...env}}).then(
      (r) => ({code: 0, stdout: r.stdout, stderr: r.stderr}),
      (e: {code: number; stdout: string; stderr: string}) => ({code: e.code, stdout: e.stdout, stderr: e.stderr}),
    )

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tektree-dlq-'))
    storeUrl = `sqlite:${join(dir, 'store.db')}`
    const store = await createSqliteStore({path: join(dir, 'store.db')})
    for (const e of entries) await store.dlq.add(e)
    await store.close()
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('list groups by cause; --flat lists entries; show prints one; an unknown id is exit 2 with the near ones', async () => {
    const list = await cli(['list', '--json'])
    expect(list.code).toBe(0)
    expect(JSON.parse(list.stdout).causes.map((c: {count: number}) => c.count)).toEqual([2, 1])
    const text = await cli(['list'])
    expect(text.stdout).toContain('user <id> not found after <n> tries')
    for (const line of text.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
    const flat = await cli(['list', '--flat', '--group', 'payment', '--json'])
    expect(JSON.parse(flat.stdout).entries.map((e: DlqRecord) => e.id)).toEqual([entries[0].id, entries[1].id])
    const show = await cli(['show', entries[2].id, '--json'])
    expect(JSON.parse(show.stdout)).toEqual(entries[2])
    const unknown = await cli(['show', entries[2].event_id!])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain(entries[2].id)
  })

  it('stats, report and export', async () => {
    expect(JSON.parse((await cli(['stats', '--json'])).stdout)).toMatchObject({total: 3, by_group: {payment: 2, email: 1}})
    const report = await cli(['report', '--since', '2026-11-30T00:00:00Z'])
    expect(report.stdout).toContain('# DLQ report')
    const exported = await cli(['export', '--code', 'HANDLER_FAILED'])
    expect(exported.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual([entries[0].id, entries[1].id])
  })

  it('a group or code that matches nothing says what the DLQ holds, with the closest names, on stderr', async () => {
    const group = await cli(['list', '--group', 'paymnt', '--json'])
    expect(group.code).toBe(0)
    expect(JSON.parse(group.stdout)).toMatchObject({total: 0})
    expect(group.stderr).toContain('No entry has --group paymnt (did you mean payment?); the DLQ holds email, payment.')
    const code = await cli(['purge', '--code', 'handler_failed', '--dry-run'])
    expect(code.stderr).toContain('No entry has --code handler_failed (did you mean HANDLER_FAILED?)')
    // a filter that matches says nothing more
    expect((await cli(['stats', '--group', 'payment'])).stderr).toBe('')
  })

  it('redrive --dry-run sends nothing and says what would go; retry of an unknown id sends nothing (exit 2)', async () => {
    const dry = await cli(['redrive', '--group', 'payment', '--dry-run', '--json'])
    expect(dry.code).toBe(0)
    expect(JSON.parse(dry.stdout)).toMatchObject({dry_run: true, matched: 2, sent: 0, causes: [{count: 2, group: 'payment'}]})
    const unknown = await cli(['retry', entries[0].id, 'payment:nope'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('payment:nope')
    expect(JSON.parse((await cli(['stats', '--json'])).stdout).total).toBe(3)
  })

  it('purge: --dry-run removes nothing, no terminal and no --yes refuses (exit 2), --yes removes the matching ones', async () => {
    const dry = await cli(['purge', '--group', 'email', '--dry-run', '--json'])
    expect(JSON.parse(dry.stdout)).toMatchObject({dry_run: true, matched: 1, removed: 0})
    const refused = await cli(['purge', '--group', 'email'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('--yes')
    const purged = await cli(['purge', '--group', 'email', '--yes', '--json'])
    expect(JSON.parse(purged.stdout)).toMatchObject({matched: 1, removed: 1})
    expect(JSON.parse((await cli(['stats', '--json'])).stdout).total).toBe(2)
  })
})
