/**
 * A store file written by the tektree before the outbox's quarantine and published_at (schema 1)
 * opens with them added: its events, outbox and published marks are kept as they were.
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
