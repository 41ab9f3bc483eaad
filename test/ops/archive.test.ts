/**
 * Archive by retention (issue 13) on the in-process store and a SQLite file: the shared suite
 * (./archive-suite.ts: run, query, verify, restore byte for byte, a run stopped at each step of a
 * file), then verify against damaged files, bad input, and the index's Bloom filter.
 */
import {appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'
import {afterEach, beforeAll, describe, expect, it} from 'vitest'
import {MemoryStore} from '../../src/adapters/memory/memory-store.js'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import type {Store} from '../../src/core/ports.js'
import {queryArchive, runArchive, verifyArchive, type ArchivedEvent} from '../../src/ops/archive/index.js'
import {line} from '../../src/commands/archive/query.js'
import {readManifest} from '../../src/ops/archive/files.js'
import {buildIdFilter, idHashes, mayHold} from '../../src/ops/archive/id-filter.js'
import {makeEvent} from '../contracts/helpers.js'
import {AS_OF, archiveSuite, collect, seed} from './archive-suite.js'

let catalog: Catalog
beforeAll(async () => {
  catalog = await loadCatalog()
})

const dirs: string[] = []
const stores: Store[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()))
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-'))
  dirs.push(dir)
  return dir
}

archiveSuite('in-process store', async () => ({store: new MemoryStore()}))
archiveSuite('SQLite file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-store-'))
  return {store: await createSqliteStore({path: path.join(dir, 'store.db')}), cleanup: async () => rmSync(dir, {recursive: true, force: true})}
})

describe('archive verify', () => {
  async function archived() {
    const store = new MemoryStore()
    stores.push(store)
    await seed(store)
    const dir = path.join(tempDir(), 'archive')
    await runArchive({store, catalog, dir, asOf: AS_OF})
    const first = readManifest(dir).files[0]
    return {dir, file: first.file, full: path.join(dir, first.file)}
  }

  it('a changed byte: checksum mismatch, naming the file', async () => {
    const {dir, file, full} = await archived()
    const bytes = readFileSync(full)
    bytes[bytes.length - 5] ^= 0xff
    writeFileSync(full, bytes)
    const result = await verifyArchive(dir)
    expect(result.ok).toBe(false)
    expect(result.problems[0]).toMatchObject({file, problem: expect.stringContaining('checksum mismatch')})
  })

  it('a file cut short, one with another count, one missing, one unlisted, a temp file, a torn manifest line', async () => {
    const {dir, full} = await archived()
    const files = readManifest(dir).files
    writeFileSync(full, readFileSync(full).subarray(0, 20))
    const second = path.join(dir, files[1].file)
    const lines = gunzipSync(readFileSync(second)).toString()
    writeFileSync(second, gzipSync(lines + lines))
    rmSync(path.join(dir, files[2].file))
    writeFileSync(path.join(dir, 'stray.ndjson.gz'), gzipSync('{}\n'))
    writeFileSync(path.join(dir, 'x.ndjson.gz.tmp'), 'half')
    appendFileSync(path.join(dir, 'manifest.ndjson'), '{"kind":"fi')
    const problems = (await verifyArchive(dir)).problems
    const about = (file: string) => problems.filter((p) => p.file === file).map((p) => p.problem).join('; ')
    expect(about(files[0].file)).toMatch(/not a readable gzip file/)
    expect(about(files[1].file)).toMatch(/holds 2 event\(s\), the manifest says 1/)
    expect(about(files[2].file)).toBe('missing')
    expect(about('stray.ndjson.gz')).toMatch(/not in the manifest/)
    expect(about('x.ndjson.gz.tmp')).toMatch(/temp file/)
    expect(about('manifest.ndjson')).toMatch(/unfinished/)
  })

  it('a run under way (its lock held by a live process): its temp and unlisted files are not problems', async () => {
    const {dir} = await archived()
    writeFileSync(path.join(dir, 'social', 'next.ndjson.gz.tmp'), 'half')
    writeFileSync(path.join(dir, '.lock'), String(process.pid))
    expect(await verifyArchive(dir)).toMatchObject({ok: true, running: process.pid})
    rmSync(path.join(dir, '.lock'))
    expect(await verifyArchive(dir)).toMatchObject({ok: false, running: null, problems: [{file: 'social/next.ndjson.gz.tmp'}]})
  })

  it('no archive folder: says so and what to run', async () => {
    const dir = path.join(tempDir(), 'nothing-here')
    await expect(verifyArchive(dir)).rejects.toMatchObject({code: 'ARCHIVE_NOT_FOUND', hint: expect.stringContaining('tektree archive run')})
    await expect(collect(queryArchive({dir}))).rejects.toMatchObject({code: 'ARCHIVE_NOT_FOUND'})
  })
})

describe('archive run: a type stored under its older name (an alias)', () => {
  it('is archived with its catalog type, in one file, and found by the type it carries', async () => {
    const store = new MemoryStore()
    stores.push(store)
    const timestamp = new Date(AS_OF - 400 * 86_400_000).toISOString()
    const canonical = makeEvent({event_type: 'social.content.liked', timestamp})
    const old = makeEvent({event_type: 'knowledge.content.liked', timestamp})
    await store.events.append([canonical, old])
    await store.outbox.markPublished([canonical.event_id, old.event_id])
    const dir = path.join(tempDir(), 'archive')
    const result = await runArchive({store, catalog, dir, asOf: AS_OF})
    expect(result.files).toEqual([expect.stringMatching(/^social\/social\.content\.liked\//)])
    // As the store's own query: a glob matches the type the event carries.
    for (const type of ['knowledge.content.liked', 'knowledge.*']) {
      expect((await collect(queryArchive({dir, filter: {types: [type]}}))).map((a) => a.record.event)).toEqual([old])
    }
    expect((await collect(queryArchive({dir, filter: {types: ['social.*']}}))).map((a) => a.record.event)).toEqual([canonical])
  })
})

describe('archive run: bad input', () => {
  it('a type glob that matches nothing names the closest types', async () => {
    const store = new MemoryStore()
    stores.push(store)
    const dir = path.join(tempDir(), 'archive')
    await expect(runArchive({store, catalog, dir, asOf: AS_OF, types: ['social.content.likd']})).rejects.toMatchObject({
      code: 'UNKNOWN_EVENT_TYPE',
      hint: expect.stringContaining('social.content.liked'),
    })
    await expect(runArchive({store, catalog, dir, asOf: AS_OF, types: ['socail.*']})).rejects.toMatchObject({hint: expect.stringContaining('social.*')})
  })
})

describe('the index of ids (a Bloom filter on each manifest line)', () => {
  it('never misses an id it holds, rarely claims one it does not, and stays small', () => {
    const held = new Set(Array.from({length: 10_000}, (_, i) => `user-${i}`))
    const filter = buildIdFilter(held)
    for (const id of held) expect(mayHold(filter, idHashes(id))).toBe(true)
    let false_positives = 0
    for (let i = 0; i < 10_000; i++) if (mayHold(filter, idHashes(`other-${i}`))) false_positives++
    expect(false_positives).toBeLessThan(300)
    expect(JSON.stringify(filter).length).toBeLessThan(20_000)
    expect(mayHold(buildIdFilter(new Set()), idHashes('x'))).toBe(false)
  })
})

describe('archive query on a terminal', () => {
  it('a line shows the control characters of an archived event (bytes on disk) escaped', () => {
    const event = makeEvent({event_type: 'user.\u001b]0;t\u0007', metadata: {aggregate_id: '\u001b[2J\u009b'}})
    const shown = line({file: 'f', record: {event, published_at: null, handled: []}} as unknown as ArchivedEvent)
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
    expect(shown).toContain('user.\\u001b]0;t\\u0007')
    expect(shown).toContain('\\u001b[2')
  })
})
