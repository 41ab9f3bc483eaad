/**
 * Event data is untrusted: a DLQ entry holds whatever arrived on the bus (its type and id taken from
 * poison JSON, an error message quoting its bytes, the bytes themselves), and a search document the
 * title someone wrote. The commands show them with every control character escaped on a human's
 * screen, and --json keeps them exact. The built CLI (`npm test` builds first) on a SQLite store
 * file; no server.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import type {DlqRecord} from '../../src/core/ports.js'
import {DOCUMENTS} from '../../src/services/search/index.js'
import {requireBuild, runCli} from './run-cli.js'

/** Control characters other than \n and \t (layout: the lines of a block of bytes). */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/
const OSC52 = '\u001b]52;c;cm0gLXJmIH4K\u0007'
const CLEAR = '\u001b[2J'

const dir = mkdtempSync(path.join(tmpdir(), 'tektree-hostile-dlq-'))
const args = ['--store-url', `sqlite:${path.join(dir, 'store.db')}`, '--bus-url', 'memory:']
const now = new Date().toISOString()
const unparsed: DlqRecord = {
  id: 'gamification:social.content/0/1-0',
  group: 'gamification',
  event_id: null,
  event_type: `x${CLEAR}\u009b31my`,
  topic: 'social.content',
  partition: 0,
  delivery_id: '1-0',
  // What V8's JSON.parse says of such bytes: it quotes them.
  error: {error: {code: 'INVALID_JSON', message: `Not valid JSON: Unexpected token '\u001b', "${OSC52.slice(0, 10)}"... is not valid JSON`, details: {path: '$', service: 'gamification', note: '\u009d0;t\u009c'}}},
  attempts: 1,
  first_failure_at: now,
  last_failure_at: now,
  dead_lettered_at: now,
  raw: `${OSC52}${CLEAR}\u0000\u009b31m\r\nsecond line\tend`,
  envelope: null,
}
const notAnEnvelope: DlqRecord = {
  ...unparsed,
  id: 'gamification:\u009b2J',
  event_id: '\u009b2J',
  event_type: `social.${OSC52}`,
  delivery_id: '2-0',
  error: {error: {code: 'VALIDATION_FAILED', message: `must have required property 'payload' at ${CLEAR}`, details: {path: '$'}}},
  raw: JSON.stringify({event_type: `social.${OSC52}`, event_id: '\u009b2J'}),
  envelope: {payload: {text: `\u009b2J${CLEAR}`}} as unknown as DlqRecord['envelope'],
}

beforeAll(async () => {
  requireBuild()
  const runtime = await openRuntime({storeUrl: args[1], busUrl: 'memory:'})
  try {
    await runtime.store.dlq.add(unparsed)
    await runtime.store.dlq.add(notAnEnvelope)
    // As the search service indexes a social.content.created whose title carries escape sequences.
    await runtime.store.projections.update(DOCUMENTS, 'content:c1', {$set: {kind: 'content', id: 'c1', title: `poisoned ${OSC52}title${CLEAR}\u009b2J`, text: '', tags: [], terms: ['poisoned', 'title'], updated_at: now}})
  } finally {
    await runtime.close()
  }
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('tektree dlq: what came off the bus is shown escaped', () => {
  it('list, list --flat, show, report, purge and redrive --dry-run print no raw control character', async () => {
    const runs = await Promise.all(
      [['dlq', 'list'], ['dlq', 'list', '--flat'], ['dlq', 'show', unparsed.id], ['dlq', 'show', notAnEnvelope.id], ['dlq', 'report'], ['dlq', 'purge', '--dry-run'], ['dlq', 'redrive', '--dry-run']].map(async (argv) => ({
        argv,
        r: await runCli([...argv, ...args]),
      })),
    )
    for (const {argv, r} of runs) {
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
      expect(r.stdout, argv.join(' ')).not.toMatch(RAW_CONTROL)
      expect(r.stderr, argv.join(' ')).not.toMatch(RAW_CONTROL)
    }
    const out = (i: number) => runs[i].r.stdout
    // Shown, not dropped.
    expect(out(0)).toContain(`x\\u001b[2J\\u009b31my`)
    expect(out(0)).toContain(`Not valid JSON: Unexpected token '\\u001b'`)
    expect(out(1)).toContain(`    x\\u001b[2J\\u009b31my  INVALID_JSON  attempts 1`)
    expect(out(2)).toContain('original bytes:\n\\u001b]52;c;cm0gLXJmIH4K\\u0007\\u001b[2J\\u0000\\u009b31m\\r\nsecond line\tend')
    expect(out(2)).toContain('"note": "\\u009d0;t\\u009c"')
    expect(out(3)).toContain('  event        social.\\u001b]52;c;cm0gLXJmIH4K\\u0007 \\u009b2J')
    expect(out(3)).toContain('"text": "\\u009b2J\\u001b[2J"')
  })

  it('show: the ids a hint suggests (from the DLQ) are escaped on stderr', async () => {
    const r = await runCli(['dlq', 'show', 'gamification:', ...args])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Did you mean:')
    expect(r.stderr).toContain('gamification:\\u009b2J')
    expect(r.stderr).not.toMatch(RAW_CONTROL)
  })

  it('show --json keeps the entry exact', async () => {
    const r = await runCli(['dlq', 'show', unparsed.id, '--json', ...args])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual(unparsed)
  })

  it('search: a title from an event payload is shown escaped', async () => {
    const r = await runCli(['search', 'poisoned', ...args])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('poisoned \\u001b]52;c;cm0gLXJmIH4K\\u0007title\\u001b[2J\\u009b2J')
    expect(r.stdout).not.toMatch(RAW_CONTROL)
  })
})
