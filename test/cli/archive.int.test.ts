/**
 * `tektree archive run|query|restore|verify` as a user runs them (bin/run.js on dist/), on a SQLite
 * store file seeded here with events on both sides of their retention: exit codes, --json, NDJSON
 * when piped, 80 columns, the closest names for a misspelt type, what to run when there is no
 * archive yet, and a run killed with SIGKILL at each step of a file (test/support/kill-archive.mjs)
 * that the next run resumes.
 */
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {makeEvent} from '../contracts/helpers.js'
import {ROOT, requireBuild, runCli} from './run-cli.js'

const DAY = 86_400_000
const AS_OF = '2026-06-01T00:00:00.000Z'
const ago = (days: number) => new Date(Date.parse(AS_OF) - days * DAY).toISOString()

describe('tektree archive', () => {
  let dir: string
  let storeFile: string
  let env: Record<string, string>
  const expired: EventEnvelope[] = []
  const kept: EventEnvelope[] = []
  const runtime = () => ['--store-url', `sqlite:${storeFile}`, '--bus-url', 'memory:']
  const storeBytes = async () => {
    const store = await createSqliteStore({path: storeFile})
    try {
      const out = new Map<string, string>()
      for await (const e of store.events.query({})) out.set(e.event_id, JSON.stringify(e))
      return out
    } finally {
      await store.close()
    }
  }

  beforeAll(async () => {
    requireBuild()
    dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-cli-'))
    storeFile = path.join(dir, 'store.db')
    env = {TEKTREE_DATA_DIR: path.join(dir, '.tektree'), TEKTREE_ARCHIVE_DIR: ''}
    const make = (type: string, days: number, user: string) => makeEvent({event_type: type, timestamp: ago(days), payload: {user_id: user, content_id: `c-${days}`}, metadata: {aggregate_id: user}})
    expired.push(make('notification.sent', 40, 'u-1'), make('social.content.liked', 400, 'u-1'), make('social.content.liked', 500, 'u-2'))
    kept.push(make('notification.sent', 10, 'u-1'), make('user.registered', 900, 'u-1'))
    const store = await createSqliteStore({path: storeFile})
    await store.events.append([...expired, ...kept])
    await store.outbox.markPublished([...expired, ...kept].map((e) => e.event_id))
    await store.close()
  })

  afterAll(() => {
    rmSync(dir, {recursive: true, force: true})
  })

  it('no archive yet: query, restore and verify say so and what to run (exit 2)', async () => {
    for (const args of [['archive', 'verify'], ['archive', 'query'], ['archive', 'restore', ...runtime()]]) {
      const result = await runCli(args, {env})
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr).toContain('No archive in')
      expect(result.stderr).toContain('tektree archive run')
    }
  })

  it('run --dry-run counts per domain and type and writes nothing', async () => {
    const result = await runCli(['archive', 'run', '--dry-run', '--as-of', AS_OF, '--json', ...runtime()], {env})
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.dry_run).toBe(true)
    expect(Object.fromEntries(report.types.filter((t: {past: number}) => t.past > 0).map((t: {type: string; past: number}) => [t.type, t.past]))).toEqual({'notification.sent': 1, 'social.content.liked': 2})
    expect((await storeBytes()).size).toBe(5)
    expect(existsSync(path.join(dir, '.tektree', 'archive'))).toBe(false)
    const text = await runCli(['archive', 'run', '--dry-run', '--as-of', AS_OF, ...runtime()], {env})
    expect(text.stdout).toContain('Dry run, nothing written')
    expect(text.stdout).toMatch(/social\.content\.liked\s+1y\s+2/)
  })

  it('run, query, verify (and a changed byte), restore byte for byte, twice', async () => {
    const before = await storeBytes()
    const run = await runCli(['archive', 'run', '--as-of', AS_OF, ...runtime()], {env})
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain('3 event(s) archived into 2 file(s)')
    for (const line of run.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80)
    expect([...(await storeBytes()).keys()].sort()).toEqual(kept.map((e) => e.event_id).sort())

    // Piped: the envelopes as NDJSON, the store's bytes.
    const query = await runCli(['archive', 'query', '--user', 'u-1'], {env})
    expect(query.code).toBe(0)
    expect(query.stdout.trim().split('\n').sort()).toEqual([expired[0], expired[1]].map((e) => before.get(e.event_id)!).sort())
    const one = await runCli(['archive', 'query', '--aggregate', 'u-2'], {env})
    expect(one.stdout.trim()).toBe(before.get(expired[2].event_id))
    expect(one.stderr).toContain('1 file(s) read, 1 skipped by the index')
    const json = JSON.parse((await runCli(['archive', 'query', '--type', 'social.*', '--from', ago(450), '--json'], {env})).stdout)
    expect(json.events.map((e: {event: EventEnvelope}) => e.event.event_id)).toEqual([expired[1].event_id])
    expect((await runCli(['archive', 'query', '--limit', '1'], {env})).stdout.trim().split('\n')).toHaveLength(1)
    const typo = await runCli(['archive', 'query', '--type', 'socail.content.liked'], {env})
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain('Did you mean social.content.liked')

    expect((await runCli(['archive', 'verify'], {env})).code).toBe(0)
    // tektree verify reads the data dir's archive beside the store (no service ran here, so the
    // oracle has differences to report either way: what is checked is which events it read).
    const oracle = JSON.parse((await runCli(['verify', '--json', ...runtime()], {env})).stdout)
    expect(oracle).toMatchObject({events: 5, archived: 3})
    // So does simulate --verify (it reported every archived event's effects as differences).
    const otherStore = ['--store-url', `sqlite:${path.join(dir, 'simulated.db')}`, '--bus-url', 'memory:']
    const simulated = await runCli(['simulate', '--scenario', 'smoke', '--events', '20', '--verify', '--json', ...otherStore], {env})
    expect(JSON.parse(simulated.stdout).verify, simulated.stderr).toMatchObject({archived: 3})
    const storeOnly = JSON.parse((await runCli(['verify', '--json', '--ignore-archive', ...runtime()], {env})).stdout)
    expect(storeOnly.events).toBe(2)
    expect(storeOnly.archived).toBeUndefined()
    const manifest = readFileSync(path.join(dir, '.tektree', 'archive', 'manifest.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    const file = manifest.find((m) => m.kind === 'file').file as string
    const full = path.join(dir, '.tektree', 'archive', file)
    const original = readFileSync(full)
    const changed = Buffer.from(original)
    changed[changed.length - 6] ^= 0x10
    writeFileSync(full, changed)
    const bad = await runCli(['archive', 'verify'], {env})
    expect(bad.code).toBe(1)
    expect(bad.stdout).toContain(file)
    expect(bad.stdout).toContain('checksum mismatch')
    writeFileSync(full, original)

    const restore = await runCli(['archive', 'restore', '--json', ...runtime()], {env})
    expect(restore.code, restore.stderr).toBe(0)
    expect(JSON.parse(restore.stdout)).toMatchObject({read: 3, inserted: 3, duplicates: 0})
    expect(await storeBytes()).toEqual(before)
    const again = await runCli(['archive', 'restore', ...runtime()], {env})
    expect(again.stdout).toContain('0 restored, 3 already in the store')
    expect(await storeBytes()).toEqual(before)
  })

  it('Ctrl+C during the first file: it is finished, the run stops there (exit 130), the next goes on', async () => {
    const archive = path.join(dir, 'interrupted')
    const before = await storeBytes()
    const stopped = await runCli(['archive', 'run', '--as-of', AS_OF, '--dir', archive, ...runtime()], {
      env: {...env, KILL_ARCHIVE: 'sigint-after-rename:1'},
      nodeArgs: ['--import', path.join(ROOT, 'test', 'support', 'kill-archive.mjs')],
    })
    expect(stopped.code, stopped.stderr).toBe(130)
    expect(stopped.stdout).toContain('1 event(s) archived into 1 file(s)')
    expect(stopped.stdout).toContain('Interrupted: run it again to go on.')
    expect((await storeBytes()).size).toBe(before.size - 1)
    const resumed = await runCli(['archive', 'run', '--as-of', AS_OF, '--dir', archive, ...runtime()], {env})
    expect(resumed.code).toBe(0)
    expect(resumed.stdout).toContain('2 event(s) archived into 1 file(s)')
    expect(JSON.parse((await runCli(['archive', 'verify', '--dir', archive, '--json'], {env})).stdout)).toMatchObject({ok: true, files: 2, events: 3})
    expect((await runCli(['archive', 'restore', '--dir', archive, ...runtime()], {env})).code).toBe(0)
    expect(await storeBytes()).toEqual(before)
  })

  it.each(['before-rename', 'after-rename', 'before-deleted'])('kill -9 %s of the second file: the next run resumes, nothing lost or archived twice', async (step) => {
    const archive = path.join(dir, `killed-${step}`)
    const before = await storeBytes()
    const killed = await runCli(['archive', 'run', '--as-of', AS_OF, '--dir', archive, ...runtime()], {
      env: {...env, KILL_ARCHIVE: `${step}:2`},
      nodeArgs: ['--import', path.join(ROOT, 'test', 'support', 'kill-archive.mjs')],
    })
    expect(killed.signal).toBe('SIGKILL')
    const resumed = await runCli(['archive', 'run', '--as-of', AS_OF, '--dir', archive, '--json', ...runtime()], {env})
    expect(resumed.code, resumed.stderr).toBe(0)
    const recovered = JSON.parse(resumed.stdout).recovered
    if (step === 'before-rename') expect(recovered.removed_temps).toHaveLength(1)
    if (step === 'after-rename') expect(recovered.adopted).toHaveLength(1)
    if (step === 'before-deleted') expect(recovered.completed).toHaveLength(1)
    expect([...(await storeBytes()).keys()].sort()).toEqual(kept.map((e) => e.event_id).sort())
    const verify = await runCli(['archive', 'verify', '--dir', archive, '--json'], {env})
    expect(JSON.parse(verify.stdout)).toMatchObject({ok: true, files: 2, events: 3, pending: 0})
    const all = await runCli(['archive', 'query', '--dir', archive], {env})
    expect(all.stdout.trim().split('\n').sort()).toEqual(expired.map((e) => before.get(e.event_id)!).sort())
    expect((await runCli(['archive', 'restore', '--dir', archive, ...runtime()], {env})).code).toBe(0)
    expect(await storeBytes()).toEqual(before)
  })
})
