/**
 * `tektree publish` on the in-process engine (no spawned CLI, no servers). In-process there are no
 * consumers: events land in this command's store and bus, so the --json summary is what we assert on.
 */
import {randomUUID, createHash} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {fileURLToPath} from 'node:url'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import Publish, {publishNdjson, type PublishSummary} from '../../src/commands/publish.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {createPublisher} from '../../src/engine/publisher.js'
import {createMemoryStore} from '../../src/adapters/memory/index.js'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import type {ErrorContract} from '../../src/core/envelope.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tektree-publish-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
afterEach(() => {
  process.exitCode = undefined
})

const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`

function registered(username: string, eventId = randomUUID()) {
  return {
    event_id: eventId,
    event_type: 'user.registered',
    event_version: '1.0.0',
    timestamp: new Date().toISOString(),
    source_service: 'user',
    payload: {user_id: randomUUID(), username, email_hash: sha(username), signup_source: 'web'},
    trace_id: randomUUID().replaceAll('-', ''),
    correlation_id: eventId,
    causation_id: null,
    producer_id: 'test',
    metadata: {},
  }
}

async function publish(...argv: string[]): Promise<{exitCode: number; stdout: string; stderr: string}> {
  process.exitCode = undefined
  let stdout = ''
  let stderr = ''
  const write = process.stdout.write
  const errWrite = process.stderr.write
  const consoleLog = console.log
  // oclif prints --json output with console.log (which vitest intercepts), human output too.
  console.log = (...args: unknown[]) => {
    stdout += `${args.map(String).join(' ')}\n`
  }
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk)
    return true
  }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    await Publish.run(argv, root)
    return {exitCode: Number(process.exitCode ?? 0), stdout, stderr}
  } catch (error) {
    const e = error as Error & {oclif?: {exit?: number}}
    if (e.oclif?.exit === undefined) throw error
    return {exitCode: e.oclif.exit, stdout, stderr}
  } finally {
    process.stdout.write = write
    process.stderr.write = errWrite
    console.log = consoleLog
  }
}

function file(name: string, lines: string[]): string {
  const path = join(dir, `${name}-${randomUUID()}.ndjson`)
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

describe('tektree publish --in-process', () => {
  it('publishes the valid lines and reports each invalid one with its line number (exit 1)', async () => {
    const first = registered('ada_lovelace')
    const follower = randomUUID()
    const followee = randomUUID()
    const input = file('mixed', [
      JSON.stringify(first), // 1 valid
      JSON.stringify(registered('grace_hopper')), // 2 valid
      '{"event_type": "user.registered", ', // 3 not JSON
      '', // 4 blank: skipped
      JSON.stringify(registered('NOT Valid!')), // 5 bad payload (username pattern)
      JSON.stringify({event_type: 'social.user.followed', payload: {follower_id: follower, followee_id: followee, followee_follower_count: 1}}), // 6 draft
      JSON.stringify({event_type: 'no.such.event', payload: {}}), // 7 unknown type (draft)
      JSON.stringify(first), // 8 duplicate of line 1
    ])
    const {exitCode, stdout} = await publish(input, '--in-process', '--json', '--batch-size', '2')
    expect(exitCode).toBe(1)
    const summary = JSON.parse(stdout) as PublishSummary
    expect(summary).toMatchObject({read: 7, published: 3, duplicates: 1, invalid: 3, outbox_pending: 0})
    expect(summary.runtime.bus.origin).toBe('in-process')
    const byLine = new Map(summary.errors.map((e) => [e.error.details.line, e.error]))
    expect([...byLine.keys()].sort()).toEqual([3, 5, 7])
    expect(byLine.get(3)!.code).toBe('INVALID_JSON')
    expect(byLine.get(7)!.code).toBe('UNKNOWN_EVENT_TYPE')
    expect(byLine.get(5)!.message).toMatch(/username/)
    for (const error of summary.errors) {
      expect(typeof error.error.code).toBe('string')
      expect(typeof error.error.message).toBe('string')
      expect(error.error.details).toBeTypeOf('object')
    }
  })

  it('all valid -> exit 0; without --json the error contracts and the summary go to stderr', async () => {
    const ok = await publish(file('ok', [JSON.stringify(registered('alan_turing')), JSON.stringify(registered('edsger_d'))]), '--in-process', '--json')
    expect(ok.exitCode).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({read: 2, published: 2, invalid: 0, errors: []})

    const bad = await publish(file('bad', [JSON.stringify(registered('barbara_l')), 'nope']), '--in-process')
    expect(bad.exitCode).toBe(1)
    expect(bad.stdout).toBe('')
    const contract = bad.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ErrorContract)
    expect(contract).toHaveLength(1)
    expect(contract[0].error).toMatchObject({code: 'INVALID_JSON', details: {line: 2}})
    expect(bad.stderr).toMatch(/1 published .*0 duplicates, 1 invalid of 2 lines/)
  })

  it('an event_id seen again with other content is a conflict, reported on its line (exit 1); the same content is a duplicate', async () => {
    const first = registered('ada_lovelace')
    const reused = {...registered('grace_hopper'), event_id: first.event_id, correlation_id: first.event_id}
    const input = file('conflict', [
      JSON.stringify(first), // 1 published
      JSON.stringify(first), // 2 duplicate (same content)
      JSON.stringify(reused), // 3 conflict: same event_id, another user
      JSON.stringify(registered('alan_turing')), // 4 published
    ])
    const {exitCode, stdout} = await publish(input, '--in-process', '--json', '--batch-size', '1')
    expect(exitCode).toBe(1)
    const summary = JSON.parse(stdout) as PublishSummary
    expect(summary).toMatchObject({read: 4, published: 2, duplicates: 1, conflicts: 1, invalid: 0, outbox_pending: 0})
    expect(summary.errors).toHaveLength(1)
    expect(summary.errors[0].error).toMatchObject({code: 'EVENT_ID_CONFLICT', details: {line: 3, event_id: first.event_id}})

    // Within one batch too, and without --json the contract and the count go to stderr.
    const human = await publish(file('conflict-batch', [JSON.stringify(first), JSON.stringify({...reused, timestamp: new Date(0).toISOString()})]), '--in-process')
    expect(human.exitCode).toBe(1)
    expect(human.stderr).toMatch(/"code":"EVENT_ID_CONFLICT".*"line":2/)
    expect(human.stderr).toMatch(/1 published .*0 duplicates, 1 conflict, 0 invalid of 2 lines/)
  })

  it("reports its own events still in the outbox, not the shared store's others (exit 0 beside a relay holding some)", async () => {
    // A store shared with services: another relay has leased an event, and keeps it for a minute.
    const storeFile = join(dir, `shared-${randomUUID()}.db`)
    const other = await createSqliteStore({path: storeFile})
    try {
      await other.events.append([registered('someone_else') as never])
      expect(await other.outbox.claim({owner: 'another-relay', limit: 10, leaseMs: 60_000})).toHaveLength(1)
      const {exitCode, stdout} = await publish(file('shared', [JSON.stringify(registered('katherine_j'))]), '--store-url', `sqlite:${storeFile}`, '--bus-url', 'memory:', '--json')
      expect(JSON.parse(stdout)).toMatchObject({published: 1, outbox_pending: 0})
      expect(exitCode).toBe(0)
      expect(await other.outbox.pending()).toBe(1)
    } finally {
      await other.close()
    }
  })

  it('a missing file is a usage error (exit 2)', async () => {
    const {exitCode, stderr} = await publish(join(dir, 'missing.ndjson'), '--in-process')
    expect(exitCode).toBe(2)
    expect(stderr).toContain('No such file')
  })
})

describe('publishNdjson', () => {
  it('streams in batches, appends to the store, and maps publisher rejections back to line numbers', async () => {
    const catalog = await loadCatalog()
    const store = createMemoryStore()
    const publisher = createPublisher({store, catalog, validator: createValidator(catalog), producerId: 'test'})
    const good = Array.from({length: 5}, (_, i) => JSON.stringify(registered(`user_${i}`)))
    const lines = [...good.slice(0, 3), JSON.stringify({...registered('x_y_z'), event_version: 'one'}), ...good.slice(3)]
    const invalid: Array<[string, number]> = []
    const totals = await publishNdjson({
      input: Readable.from(lines.map((l) => `${l}\n`)),
      catalog,
      publisher,
      batchSize: 2,
      onInvalid: (error, line) => {
        invalid.push([error.error.code, line])
      },
    })
    expect(totals).toEqual({read: 6, published: 5, duplicates: 0, conflicts: 0, invalid: 1})
    expect(invalid.map(([, line]) => line)).toEqual([4])
    expect(await store.events.count()).toBe(5)
    expect(await store.outbox.pending()).toBe(5) // no relay here: the outbox keeps them for one
    await store.close()
  })
})
