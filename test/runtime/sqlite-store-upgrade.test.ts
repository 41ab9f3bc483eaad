/**
 * Store files written by earlier tektrees open migrated: a schema 1 file gets the outbox's
 * quarantine and published_at, a schema 4 file's applied lists become fingerprints, a schema 5
 * file loses its idempotency keys, a schema 6 file's outbox moves out of the events' rows, a
 * schema 7 file's documents get a version; what they hold otherwise is kept.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import Database from 'better-sqlite3'
import {afterAll, describe, expect, it} from 'vitest'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'
import {MIGRATIONS} from '../../src/adapters/sqlite/store.js'
import {makeEvent} from '../contracts/helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'tektree-sqlite-upgrade-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('SqliteStore: a schema 1 file', () => {
  it('migrates to the current schema keeping its events; old published events have no publish time (0)', async () => {
    const file = join(dir, 'store.db')
    const [published, waiting] = [makeEvent(), makeEvent()]
    const db = new Database(file)
    db.exec(MIGRATIONS[0])
    db.pragma('user_version = 1')
    const insert = db.prepare('INSERT INTO events (event_id, event_type, ts_ms, aggregate_id, correlation_id, envelope, published) VALUES (?, ?, ?, ?, ?, ?, ?)')
    for (const [event, flag] of [
      [published, 1],
      [waiting, 0],
    ] as const) {
      insert.run(event.event_id, event.event_type, Date.parse(event.timestamp), event.metadata.aggregate_id, event.correlation_id, JSON.stringify(event), flag)
    }
    db.close()

    const store = await createSqliteStore({path: file})
    try {
      expect(store.migrationsRun).toEqual(MIGRATIONS.slice(1).map((_, i) => i + 2))
      expect(await store.events.count()).toBe(2)
      expect(await store.outbox.pending()).toBe(1)
      const listed = []
      for await (const p of store.outbox.published()) listed.push(p)
      expect(listed).toEqual([{event: published, publishedAt: 0}])
      const at = new Date().toISOString()
      expect(await store.outbox.quarantine([{event_id: waiting.event_id, error: {error: {code: 'X', message: 'x', details: {}}}, attempts: 1, first_failure_at: at, last_failure_at: at}])).toBe(1)
      expect(await store.outbox.countQuarantined()).toBe(1)
    } finally {
      await store.close()
    }
  })
})

describe('SqliteStore: a schema 4 file', () => {
  it('keeps guarding the ids its applied lists held as JSON, and writes fingerprints from then on', async () => {
    const file = join(dir, 'store4.db')
    const db = new Database(file)
    for (const migration of MIGRATIONS.slice(0, 4)) db.exec(migration)
    db.pragma('user_version = 4')
    const insert = db.prepare('INSERT INTO projections (collection, id, doc, applied, applied_count) VALUES (?, ?, ?, ?, ?)')
    insert.run('c', 'held', JSON.stringify({_id: 'held', n: 2}), JSON.stringify(['e1', 'odd "id"']), 2)
    insert.run('c', 'fresh', JSON.stringify({_id: 'fresh', n: 0}), '[]', 0)
    db.close()

    const store = await createSqliteStore({path: file})
    try {
      expect(store.migrationsRun).toEqual([5, 6, 7, 8, 9])
      expect(await store.projections.isApplied('c', 'held', 'odd "id"')).toBe(true)
      expect(await store.projections.applyOnce('c', 'held', 'e1', {$inc: {n: 1}})).toBe(false)
      expect(await store.projections.applyOnce('c', 'held', 'e2', {$inc: {n: 1}})).toBe(true)
      expect(await store.projections.applyOnce('c', 'fresh', 'e1', {$inc: {n: 1}})).toBe(true)
      expect(await store.projections.applyOnce('c', 'fresh', 'e1', {$inc: {n: 1}})).toBe(false)
      expect(await store.projections.get('c', 'held')).toEqual({_id: 'held', n: 3})
      // A schema 4 tektree that still had the file open writes JSON lists: they are read as such.
      const old = new Database(file)
      const oldInsert = old.prepare('INSERT INTO projections (collection, id, doc, applied, applied_count) VALUES (?, ?, ?, ?, ?)')
      oldInsert.run('c', 'late', '{"_id":"late"}', '["e9"]', 1)
      // What it writes when it appends to a list of fingerprints: no JSON. Read as an empty list.
      oldInsert.run('c', 'mangled', '{"_id":"mangled"}', '\u0001\u0002,"e1"]', 2)
      old.close()
      expect(await store.projections.applyOnce('c', 'mangled', 'e1', {$inc: {n: 1}})).toBe(true)
      expect(await store.projections.applyOnce('c', 'mangled', 'e1', {$inc: {n: 1}})).toBe(false)
      expect(await store.projections.isApplied('c', 'late', 'e9')).toBe(true)
      expect(await store.projections.applyOnce('c', 'late', 'e9', {$inc: {n: 1}})).toBe(false)
      expect(await store.projections.applyOnce('c', 'late', 'e10', {$inc: {n: 1}})).toBe(true)
    } finally {
      await store.close()
    }
    const after = new Database(file, {readonly: true})
    const rows = after.prepare('SELECT id, applied, applied_count FROM projections ORDER BY id').all() as Array<{id: string; applied: unknown; applied_count: number}>
    after.close()
    expect(rows.map((r) => [r.id, Buffer.isBuffer(r.applied) ? (r.applied as Buffer).length : r.applied, r.applied_count])).toEqual([
      ['fresh', 8, 1],
      ['held', 24, 3],
      ['late', 16, 2],
      ['mangled', 8, 1],
    ])
  })
})

describe('SqliteStore: a schema 5 file', () => {
  it('drops the idempotency keys (the handled records are the ledger) and keeps the rest', async () => {
    const file = join(dir, 'store5.db')
    const event = makeEvent()
    const db = new Database(file)
    db.function('tektree_applied_fingerprints', (value: unknown) => value)
    for (const migration of MIGRATIONS.slice(0, 5)) db.exec(migration)
    db.pragma('user_version = 5')
    db.prepare("INSERT INTO idempotency (scope, key, expires_at) VALUES ('handled:g', 'k', NULL)").run()
    db.prepare("INSERT INTO handled (event_id, group_name, handled_at, attempts) VALUES (?, 'g', '2026-12-01T00:00:00.000Z', 1)").run(event.event_id)
    db.close()

    const store = await createSqliteStore({path: file})
    try {
      expect(store.migrationsRun).toEqual([6, 7, 8, 9])
      expect(await store.handled.completed('g', [event.event_id])).toEqual(new Set([event.event_id]))
    } finally {
      await store.close()
    }
    const after = new Database(file, {readonly: true})
    const tables = after.prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'idempotency%'").pluck().all()
    after.close()
    expect(tables).toEqual([])
  })
})

describe('SqliteStore: a schema 6 file', () => {
  it("moves each event's outbox state (to publish, leased, published at, quarantined) into the outbox tables", async () => {
    const file = join(dir, 'store6.db')
    const [published, quarantined, leased, waiting] = [makeEvent(), makeEvent(), makeEvent(), makeEvent()]
    const db = new Database(file)
    db.function('tektree_applied_fingerprints', (value: unknown) => value)
    for (const migration of MIGRATIONS.slice(0, 6)) db.exec(migration)
    db.pragma('user_version = 6')
    const insert = db.prepare(
      `INSERT INTO events (event_id, event_type, ts_ms, aggregate_id, correlation_id, envelope, published, published_at, lease_until, lease_owner, quarantine)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    const reason = {event_id: quarantined.event_id, error: {error: {code: 'X', message: 'x', details: {}}}, attempts: 3, first_failure_at: 'a', last_failure_at: 'b', quarantined_at: 'c'}
    const leaseUntil = Date.now() + 60_000
    for (const [event, state, at, until, owner, why] of [
      [published, 1, 1234, 0, null, null],
      [quarantined, 2, null, 0, null, JSON.stringify(reason)],
      [leased, 0, null, leaseUntil, 'other-relay', null],
      [waiting, 0, null, 0, null, null],
    ] as const) {
      insert.run(event.event_id, event.event_type, Date.parse(event.timestamp), event.metadata.aggregate_id, event.correlation_id, JSON.stringify(event), state, at, until, owner, why)
    }
    db.close()

    const store = await createSqliteStore({path: file})
    try {
      expect(store.migrationsRun).toEqual([7, 8, 9])
      expect(await store.events.count()).toBe(4)
      expect(await store.outbox.pending()).toBe(2)
      // The lease another relay held survives the move: only the free event is claimed.
      expect((await store.outbox.claim({owner: 'me', limit: 10, leaseMs: 1_000})).map((e) => e.event_id)).toEqual([waiting.event_id])
      const listed = []
      for await (const p of store.outbox.published()) listed.push(p)
      expect(listed).toEqual([{event: published, publishedAt: 1234}])
      expect(await store.outbox.quarantined()).toEqual([{...reason, event_type: quarantined.event_type, envelope: quarantined}])
      const records = await store.events.records([published.event_id, waiting.event_id])
      expect(records.map((r) => [r.event.event_id, r.published_at])).toEqual([
        [published.event_id, 1234],
        [waiting.event_id, null],
      ])
      expect(await store.outbox.release([quarantined.event_id])).toBe(1)
      expect(await store.outbox.pending()).toBe(3)
    } finally {
      await store.close()
    }
    const after = new Database(file, {readonly: true})
    const indexes = after.prepare("SELECT name FROM sqlite_schema WHERE name IN ('events_outbox', 'events_quarantined')").pluck().all()
    after.close()
    expect(indexes).toEqual([])
  })
})

describe('SqliteStore: a schema 7 file', () => {
  it('keeps its documents, each at version 0; the next write of one takes it to 1', async () => {
    const file = join(dir, 'store7.db')
    const db = new Database(file)
    db.function('tektree_applied_fingerprints', (value: unknown) => value)
    for (const migration of MIGRATIONS.slice(0, 7)) db.exec(migration)
    db.pragma('user_version = 7')
    db.prepare("INSERT INTO projections (collection, id, doc) VALUES ('profiles', 'u', ?)").run(JSON.stringify({_id: 'u', xp: 5}))
    db.close()

    const store = await createSqliteStore({path: file})
    try {
      expect(store.migrationsRun).toEqual([8, 9])
      expect(await store.projections.getVersioned!('profiles', 'u')).toEqual({doc: {_id: 'u', xp: 5}, version: 0})
      await store.commit({projections: [{collection: 'profiles', id: 'u', update: {$inc: {xp: 1}}}], expect: [{collection: 'profiles', id: 'u', version: 0}]})
      expect(await store.projections.getVersioned!('profiles', 'u')).toEqual({doc: {_id: 'u', xp: 6}, version: 1})
    } finally {
      await store.close()
    }
  })
})
