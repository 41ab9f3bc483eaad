/**
 * SQLite-only tests. The contract suite (sqlite-store.test.ts) runs inside one process; what makes
 * SQLite the embedded store is that several processes share one file, so here real processes
 * (test/support/sqlite-store-child.ts) append, claim, apply and commit on one file at the same
 * moment. Also what only a file has: it survives close and reopen, it carries a schema version, and
 * it can be garbage, from a newer tektree, not a file at all, or locked by someone else.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile, mkdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import Database from 'better-sqlite3'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {createSqliteStore, SQLITE_SCHEMA_VERSION, type SqliteStore} from '../../src/adapters/sqlite/index.js'
import {UserError} from '../../src/errors.js'
import {CommitConflictError} from '../../src/core/errors.js'
import {makeDlqRecord, makeEvent, until} from '../contracts/helpers.js'

let dir: string
const children: ChildProcess[] = []
const stores: SqliteStore[] = []
const handles: Database.Database[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tektree-sqlite-backend-'))
})

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const store of stores.splice(0)) await store.close().catch(() => undefined)
  for (const db of handles.splice(0)) if (db.open) db.close()
  await rm(dir, {recursive: true, force: true})
})

async function open(options: {path?: string; busyTimeoutMs?: number} = {}): Promise<SqliteStore> {
  const store = await createSqliteStore({path: options.path ?? join(dir, 'store.db'), busyTimeoutMs: options.busyTimeoutMs})
  stores.push(store)
  return store
}

function rawDb(path: string, options?: Database.Options): Database.Database {
  const db = new Database(path, options)
  handles.push(db)
  return db
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<UserError> {
  const outcome = await promise.then(
    (value) => ({ok: true as const, value}),
    (error: unknown) => ({ok: false as const, error}),
  )
  if (outcome.ok) throw new Error(`expected a rejection, got ${String(outcome.value)}`)
  expect(outcome.error).toBeInstanceOf(UserError)
  return outcome.error as UserError
}

// ------------------------------------------------------------------------------ child processes

interface ChildResult<T> {
  name: string
  result?: T
  startedAt?: number
  finishedAt?: number
  error?: {code: string | null; message: string}
  exitCode: number | null
  stderr: string
}

/**
 * Starts `count` children, waits until each has loaded and printed `ready`, then releases them all
 * at once (one stdin line each) and collects their results.
 */
async function runChildren<T>(count: number, mode: string, extraEnv: Record<string, string> = {}, file = join(dir, 'store.db')): Promise<Array<ChildResult<T>>> {
  const started = Array.from({length: count}, (_, i) => {
    const name = `child${i}`
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'support', 'sqlite-store-child.ts')], {
      cwd: process.cwd(),
      env: {...process.env, CHILD_DB: file, CHILD_MODE: mode, CHILD_NAME: name, CHILD_COUNT: String(count), CHILD_MAX_RUN_MS: '30000', ...extraEnv},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
    return {name, child, exited, stdout: () => stdout, stderr: () => stderr}
  })
  await until(() => started.every((c) => c.stdout().startsWith('ready\n') || c.child.exitCode !== null), {
    timeoutMs: 30_000,
    message: 'every child is loaded',
  })
  for (const c of started) c.child.stdin!.end('go\n')
  return Promise.all(
    started.map(async (c) => {
      const exitCode = await c.exited
      const line = c
        .stdout()
        .split('\n')
        .find((l) => l.startsWith('{'))
      const parsed = line ? (JSON.parse(line) as Omit<ChildResult<T>, 'name' | 'exitCode' | 'stderr'>) : {}
      return {name: c.name, ...parsed, exitCode, stderr: c.stderr()}
    }),
  )
}

function expectAllSucceeded(results: Array<ChildResult<unknown>>): void {
  for (const r of results) {
    expect(r.error, `${r.name}: ${JSON.stringify(r.error)} ${r.stderr.slice(-500)}`).toBeUndefined()
    expect(r.exitCode, `${r.name} exit code (stderr: ${r.stderr.slice(-500)})`).toBe(0)
    expect(r.stderr).not.toMatch(/SQLITE_BUSY|database is locked/)
  }
}

/**
 * The children's work really overlapped in time (else the test would prove nothing about
 * concurrency). The child's halfway barrier makes this hold by construction; checked all the same.
 */
function expectOverlap(results: Array<ChildResult<unknown>>): void {
  const lastStart = Math.max(...results.map((r) => r.startedAt!))
  const firstEnd = Math.min(...results.map((r) => r.finishedAt!))
  expect(lastStart, 'every child started before the first one finished').toBeLessThan(firstEnd)
}

describe('SqliteStore: several processes on one file', () => {
  it('appends (shared ids inserted once overall) while claiming and marking the outbox: every event claimed by one process, all published', async () => {
    const store = await open() // creates the schema, so the children race on the data, not the migration
    const perChild = 400
    const shared = 50
    const results = await runChildren<{inserted: number; duplicates: string[]; claimed: string[]}>(4, 'append-claim', {
      CHILD_EVENTS: String(perChild),
      CHILD_SHARED: String(shared),
    })
    expectAllSucceeded(results)
    expectOverlap(results)
    const unique = 4 * (perChild - shared) + shared
    expect(results.reduce((n, r) => n + r.result!.inserted, 0)).toBe(unique)
    expect(results.reduce((n, r) => n + r.result!.duplicates.length, 0)).toBe(3 * shared)
    expect(await store.events.count()).toBe(unique)
    for (let k = 0; k < shared; k++) expect(await store.events.count({aggregateId: `shared-${k}`})).toBe(1)

    const claimed = results.flatMap((r) => r.result!.claimed)
    expect(claimed).toHaveLength(unique)
    expect(new Set(claimed).size).toBe(unique)
    expect(await store.outbox.pending()).toBe(0)
    // The work was shared (each process claimed some) and claims came in append order per process.
    expect(results.filter((r) => r.result!.claimed.length > 0).length).toBeGreaterThan(1)
  }, 60_000)

  it('8 processes x 250 applyOnce $inc on one document with distinct ids: exactly 2000; one event delivered to every process applies once', async () => {
    const store = await open()
    const results = await runChildren<{applied: number; sharedApplied: number}>(8, 'apply', {CHILD_APPLIES: '250', CHILD_REDELIVERED: '30'})
    expectAllSucceeded(results)
    expectOverlap(results)
    for (const r of results) expect(r.result!.applied).toBe(250)
    const doc = await store.projections.get('hot', 'doc')
    expect(doc!.n).toBe(2_000)
    expect(doc!.last).toBe(249)
    expect(doc).not.toHaveProperty('_applied')
    expect(results.reduce((n, r) => n + r.result!.sharedApplied, 0)).toBe(30)
    expect((await store.projections.get('hot', 'shared'))!.n).toBe(30)
  }, 60_000)

  it('units of work committed from several processes: every effect exactly once, shared units included', async () => {
    const store = await open()
    // 4 x 50 + 30 = 230 distinct units reach the 'total' document: fewer than APPLIED_LIMIT, so its
    // guard remembers every one of them; the units' handled records (the group's ledger) refuse a
    // shared unit another process committed first, inside the file's write lock.
    const own = 50
    const shared = 30
    const results = await runChildren<{inserted: number; conflicts: number; units: number}>(4, 'commit', {CHILD_UNITS: String(own), CHILD_SHARED: String(shared)})
    expectAllSucceeded(results)
    expectOverlap(results)
    const distinct = 4 * own + shared
    expect((await store.projections.get('units', 'total'))!.n).toBe(distinct)
    expect(await store.projections.count('units')).toBe(distinct + 1) // + the 'total' document
    for (const doc of await store.projections.find('units')) if (doc._id !== 'total') expect(doc.n).toBe(1)
    expect(results.reduce((n, r) => n + r.result!.inserted, 0)).toBe(distinct)
    expect(results.reduce((n, r) => n + r.result!.conflicts, 0)).toBe(3 * shared)
    expect(await store.events.count()).toBe(distinct)
    expect(await store.outbox.pending()).toBe(distinct)
    const keys = [...Array.from({length: 4 * own}, (_, i) => `unit-child${Math.floor(i / own)}-${i % own}`), ...Array.from({length: shared}, (_, k) => `unit-shared-${k}`)]
    expect((await store.handled.completed('g', keys)).size).toBe(distinct)
  }, 60_000)

  it('processes opening a fresh file together (4 at once): the schema migrates once', async () => {
    const file = join(dir, 'fresh.db')
    const results = await runChildren<{migrationsRun: number[]}>(4, 'open', {}, file)
    expectAllSucceeded(results)
    const runs = results.flatMap((r) => r.result!.migrationsRun)
    expect(runs.sort()).toEqual(Array.from({length: SQLITE_SCHEMA_VERSION}, (_, i) => i + 1))
    const db = rawDb(file, {readonly: true})
    expect(db.pragma('user_version', {simple: true})).toBe(SQLITE_SCHEMA_VERSION)
    expect(db.pragma('journal_mode', {simple: true})).toBe('wal')
  }, 60_000)
})

describe('SqliteStore: the file', () => {
  it('keeps everything across close and reopen (events, outbox leases, handled records, projections and their guards, dlq)', async () => {
    const events = Array.from({length: 5}, () => makeEvent())
    const first = await open()
    expect(first.migrationsRun).toEqual(Array.from({length: SQLITE_SCHEMA_VERSION}, (_, i) => i + 1))
    await first.events.append(events)
    await first.outbox.markPublished([events[0].event_id])
    expect((await first.outbox.claim({owner: 'a', limit: 2, leaseMs: 60_000})).map((e) => e.event_id)).toEqual([events[1].event_id, events[2].event_id])
    const handledAt = new Date().toISOString()
    await first.commit({handled: [events[0], events[1]].map((e) => ({group: 'g', event_id: e.event_id, handled_at: handledAt, attempts: 1}))})
    await first.projections.applyOnce('c', 'd', 'e1', {$inc: {n: 1}})
    const record = makeDlqRecord()
    await first.dlq.add(record)
    await first.close()

    const second = await open()
    expect(second.migrationsRun).toEqual([])
    expect(await second.events.get(events[3].event_id)).toEqual(events[3])
    expect(await second.events.count()).toBe(5)
    expect(await second.outbox.pending()).toBe(4)
    // The lease outlived the process that took it.
    expect((await second.outbox.claim({owner: 'b', limit: 10, leaseMs: 60_000})).map((e) => e.event_id)).toEqual([events[3].event_id, events[4].event_id])
    expect(await second.handled.completed('g', events.slice(0, 3).map((e) => e.event_id))).toEqual(new Set([events[0].event_id, events[1].event_id]))
    expect(await second.projections.applyOnce('c', 'd', 'e1', {$inc: {n: 1}})).toBe(false)
    expect(await second.projections.get('c', 'd')).toEqual({_id: 'd', n: 1})
    expect(await second.dlq.get(record.id)).toEqual(record)
  })

  it("an event removed from the end of the log takes its outbox state along: the seq SQLite gives the next append starts clean", async () => {
    const store = await open()
    const [kept, published, waiting] = [makeEvent(), makeEvent(), makeEvent()]
    await store.events.append([kept, published])
    await store.outbox.markPublished([published.event_id])
    expect(await store.events.remove([published.event_id])).toBe(1)
    await store.events.append([waiting])
    const listed = []
    for await (const p of store.outbox.published()) listed.push(p.event.event_id)
    expect(listed).toEqual([])
    expect((await store.outbox.claim({owner: 'a', limit: 10, leaseMs: 60_000})).map((e) => e.event_id)).toEqual([kept.event_id, waiting.event_id])
    expect(await store.events.remove([waiting.event_id])).toBe(1)
    // A removed id stays known (a duplicate); a new event takes the freed seq.
    expect((await store.events.append([published, makeEvent()])).inserted).toBe(1)
    expect(await store.outbox.pending()).toBe(2)
  })

  it('a ":memory:" store is private to itself', async () => {
    const a = await open({path: ':memory:'})
    const b = await open({path: ':memory:'})
    await a.events.append([makeEvent()])
    expect(await a.events.count()).toBe(1)
    expect(await b.events.count()).toBe(0)
  })

  it('the applied list keeps the last APPLIED_LIMIT ids exactly, whatever characters they hold', async () => {
    const store = await open()
    // The first id has escapes (the trimming must skip them); "," would match between two quoted ids.
    const odd = 'odd "quoted" \\ id'
    expect(await store.projections.applyOnce('c', 'd', odd, {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', 'x', {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', 'y', {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', ',', {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', odd, {$inc: {n: 1}})).toBe(false)
    for (let i = 0; i < 253; i++) await store.projections.applyOnce('c', 'd', `e${i}`, {$inc: {n: 1}})
    // 257 applied: the oldest (odd) is forgotten, as the other adapters forget it; the rest are held.
    expect(await store.projections.applyOnce('c', 'd', 'x', {$inc: {n: 1}})).toBe(false)
    expect(await store.projections.applyOnce('c', 'd', 'e252', {$inc: {n: 1}})).toBe(false)
    expect(await store.projections.applyOnce('c', 'd', odd, {$inc: {n: 1}})).toBe(true)
    // That pushed 'x' out; 'y' is now the oldest held, and each new id pushes out the oldest.
    expect(await store.projections.applyOnce('c', 'd', 'y', {$inc: {n: 1}})).toBe(false)
    expect(await store.projections.applyOnce('c', 'd', 'z', {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', 'y', {$inc: {n: 1}})).toBe(true)
    expect(await store.projections.applyOnce('c', 'd', ',', {$inc: {n: 1}})).toBe(true)
    await store.close()
    const db = rawDb(join(dir, 'store.db'), {readonly: true})
    const row = db.prepare("SELECT applied, applied_count FROM projections WHERE collection = 'c' AND id = 'd'").get() as {applied: Buffer; applied_count: number}
    // Kept as 8-byte fingerprints, oldest first.
    const applied = Array.from({length: row.applied.length / 8}, (_, i) => row.applied.subarray(i * 8, i * 8 + 8).toString('hex'))
    const print = (id: string) => createHash('sha256').update(id).digest().subarray(0, 8).toString('hex')
    expect(applied).toHaveLength(256)
    expect(row.applied_count).toBe(256)
    expect(applied.slice(-4)).toEqual([odd, 'z', 'y', ','].map(print))
    expect(applied[0]).toBe(print('e1'))
    expect(new Set(applied).size).toBe(256)
  })

})

describe('SqliteStore: bad files give one clear UserError', () => {
  it('garbage in the file: STORE_CORRUPT naming the file', async () => {
    const file = join(dir, 'garbage.db')
    await writeFile(file, 'this is not a database, just some bytes that happen to be here\n'.repeat(100))
    const error = await rejection(createSqliteStore({path: file}))
    expect(error.code).toBe('STORE_CORRUPT')
    expect(error.message).toContain(file)
    expect(error.hint).toMatch(/move it aside or delete it/i)
  })

  it('a schema newer than this code: STORE_SCHEMA_NEWER, and the file is left untouched', async () => {
    const file = join(dir, 'newer.db')
    const db = new Database(file)
    db.exec('CREATE TABLE future (x)')
    db.pragma('user_version = 999')
    db.close()
    const before = await readFile(file)
    const error = await rejection(createSqliteStore({path: file}))
    expect(error.code).toBe('STORE_SCHEMA_NEWER')
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain(file)
    expect(error.message).toContain('999')
    expect(error.hint).toMatch(/upgrade tektree|another data directory/i)
    expect((await readFile(file)).equals(before)).toBe(true)
  })

  it("another program's SQLite database (tables, no tektree schema version): STORE_CORRUPT, and the file is left untouched", async () => {
    const file = join(dir, 'someone-else.db')
    const db = new Database(file)
    db.exec("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT); INSERT INTO events (what) VALUES ('theirs')")
    db.close()
    const before = await readFile(file)
    const error = await rejection(createSqliteStore({path: file}))
    expect(error.code).toBe('STORE_CORRUPT')
    expect(error.message).toContain(file)
    expect(error.message).toMatch(/not a tektree store/)
    expect((await readFile(file)).equals(before)).toBe(true)
  })

  it('a path under a regular file, a directory, a missing directory: STORE_UNWRITABLE', async () => {
    const plain = join(dir, 'plain-file')
    await writeFile(plain, 'x')
    const sub = join(dir, 'a-directory')
    await mkdir(sub)
    for (const path of [join(plain, 'store.db'), join(plain, 'deeper', 'store.db'), sub, join(dir, 'missing', 'store.db')]) {
      const error = await rejection(createSqliteStore({path}))
      expect(error.code, path).toBe('STORE_UNWRITABLE')
      expect(error.message).toContain(path)
    }
    // A read-only file or directory cannot be tested honestly here: the tests run as root, for whom
    // chmod does not make anything read-only. SQLITE_READONLY* / SQLITE_CANTOPEN / EACCES map to the
    // same STORE_UNWRITABLE (see isUnwritable in store.ts).
  })

  it('a file another connection holds exclusively beyond the busy timeout: STORE_LOCKED at open', async () => {
    const file = join(dir, 'locked.db')
    await (await createSqliteStore({path: file})).close()
    const holder = rawDb(file)
    // Back to a rollback journal, where EXCLUSIVE keeps readers out too (in WAL it only stops writers).
    holder.pragma('journal_mode = DELETE')
    holder.exec('BEGIN EXCLUSIVE')
    holder.exec("INSERT INTO dlq (id, group_name, record) VALUES ('x', 'g', '{}')")
    const error = await rejection(createSqliteStore({path: file, busyTimeoutMs: 100}))
    expect(error.code).toBe('STORE_LOCKED')
    expect(error.message).toContain(file)
    holder.exec('ROLLBACK')
    const store = await open({path: file, busyTimeoutMs: 100})
    expect(await store.dlq.count()).toBe(0)
  })

  it('a write lock held by another connection beyond the busy timeout: a clear STORE_BUSY, and the store works once it is released', async () => {
    const store = await open({busyTimeoutMs: 100})
    const holder = rawDb(join(dir, 'store.db'))
    holder.exec('BEGIN EXCLUSIVE') // in WAL mode: the write lock (readers still read)
    expect(await store.events.count()).toBe(0)
    const error = await rejection(store.events.append([makeEvent()]))
    expect(error.code).toBe('STORE_BUSY')
    expect(error.message).toContain(join(dir, 'store.db'))
    holder.exec('COMMIT')
    expect((await store.events.append([makeEvent()])).inserted).toBe(1)
  })

  it('busy_timeout running out once is not an error: the write is retried and goes through when the lock is released', async () => {
    const store = await open({busyTimeoutMs: 200})
    const holder = rawDb(join(dir, 'store.db'))
    holder.exec('BEGIN IMMEDIATE')
    // The holder lives on this thread, so it can only let go between the store's attempts: the first
    // attempt waits out busy_timeout inside SQLite, the timer then commits, and the retry succeeds.
    setTimeout(() => holder.exec('COMMIT'), 50)
    expect((await store.events.append([makeEvent()])).inserted).toBe(1)
    expect(holder.inTransaction).toBe(false)
  })

  it('units committed in one turn go in together, and one a unit refuses fails alone', async () => {
    const store = await open()
    await store.projections.update('docs', 'text', {$set: {n: 'not a number'}})
    await store.commit({handled: [{group: 'g', event_id: 'taken', handled_at: '2026-12-01T00:00:00.000Z', attempts: 1}]})
    // A handled record for group "boom" fails after the unit's documents are written.
    rawDb(join(dir, 'store.db')).exec(`CREATE TRIGGER boom BEFORE INSERT ON handled WHEN NEW.group_name = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`)
    const derived = makeEvent()
    // given five units committed at once: two fine, one whose event the group's ledger already holds,
    // one whose update cannot apply, one the file refuses half-way
    const outcomes = await Promise.allSettled([
      store.commit({projections: [{collection: 'docs', id: 'a', update: {$inc: {n: 1}}, eventId: 'e1'}], events: [derived], handled: [{group: 'g', event_id: 'e1', handled_at: '2026-12-01T00:00:00.000Z', attempts: 1}]}),
      store.commit({projections: [{collection: 'docs', id: 'b', update: {$inc: {n: 1}}, eventId: 'e2'}], handled: [{group: 'g', event_id: 'taken', handled_at: '2026-12-01T00:00:00.000Z', attempts: 1}]}),
      store.commit({projections: [{collection: 'docs', id: 'text', update: {$inc: {n: 1}}, eventId: 'e3'}, {collection: 'docs', id: 'c', update: {$set: {n: 3}}}]}),
      store.commit({projections: [{collection: 'docs', id: 'a', update: {$inc: {n: 10}}, eventId: 'e4'}], handled: [{group: 'g', event_id: 'e4', handled_at: '2026-12-01T00:00:00.000Z', attempts: 1}]}),
      store.commit({projections: [{collection: 'docs', id: 'd', update: {$set: {n: 4}}}], handled: [{group: 'boom', event_id: 'e5', handled_at: '2026-12-01T00:00:00.000Z', attempts: 1}]}),
    ])
    // then the fine ones are in, each refused one failed with its own error and left nothing behind
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected'])
    expect(outcomes[0]).toEqual({status: 'fulfilled', value: {inserted: 1}})
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(CommitConflictError)
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toContain('$inc on non-numeric field')
    expect(await store.projections.get('docs', 'a')).toMatchObject({n: 11})
    expect(await store.projections.get('docs', 'b')).toBeNull()
    expect(await store.projections.get('docs', 'c')).toBeNull()
    expect(String((outcomes[4] as PromiseRejectedResult).reason)).toContain('boom')
    expect(await store.projections.get('docs', 'd')).toBeNull()
    expect(await store.projections.get('docs', 'text')).toMatchObject({n: 'not a number'})
    expect(await store.handled.completed('g', ['e1', 'e2', 'e4', 'taken'])).toEqual(new Set(['e1', 'e4', 'taken']))
    expect(await store.events.get(derived.event_id)).toEqual(derived)
    expect((await store.handled.of(['e4'])).map((r) => r.group)).toEqual(['g'])
  })
})
