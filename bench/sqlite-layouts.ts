/**
 * Store layouts measured before building them: what the event log's writes would cost in another
 * table layout, on bare better-sqlite3 (WAL, synchronous=NORMAL, one connection), CPU time of this
 * process per event. Each variant runs on a fresh file, prefilled so that its B-trees have the depth
 * of a long run; variants alternate, `--rounds` times each.
 *
 *   npm run bench:one -- bench/sqlite-layouts.ts [--events 100000] [--prefill 300000] [--rounds 2] [--path DIR]
 *
 * - index/<name>: appending 1 KB events with the id and rowid only, then with one secondary index
 *   more (what each of the event log's indexes costs);
 * - outbox/row vs outbox/table: append + claim + mark published, the outbox as columns of the
 *   event's row (today) or as a narrow table of its own;
 * - handled/id vs handled/seq: a group's handled records (two per event, a few batches behind the
 *   appends) keyed by a random v4 event id or by the event's seq;
 * - index/ordered-id and handled/ordered-id: the same with the ids tektree makes since session 17
 *   (src/core/event-id.ts: v4-shaped, ordered by time).
 * --only NAME,NAME runs the variants whose names start with one of them.
 * No asserts: it measures. A table on stderr, one JSON line on stdout.
 */
import {randomUUID} from 'node:crypto'
import {newEventId} from '../src/core/event-id.js'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import Database from 'better-sqlite3'
import Table from 'cli-table3'

const {values} = parseArgs({
  options: {
    events: {type: 'string', default: '100000'},
    prefill: {type: 'string', default: '300000'},
    rounds: {type: 'string', default: '2'},
    path: {type: 'string'},
    only: {type: 'string'},
  },
})
const events = Number(values.events)
const prefill = Number(values.prefill)
const rounds = Number(values.rounds)
const BATCH = 200
const dir = mkdtempSync(path.join(values.path ?? tmpdir(), 'tektree-layouts-'))

const EVENTS = `CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL,
  ts_ms INTEGER NOT NULL, aggregate_id TEXT, correlation_id TEXT, envelope TEXT NOT NULL,
  published INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, published_at INTEGER);`
const INDEXES: Record<string, string> = {
  type: 'CREATE INDEX events_type ON events (event_type, seq);',
  time: 'CREATE INDEX events_ts ON events (ts_ms, seq);',
  aggregate: 'CREATE INDEX events_aggregate ON events (aggregate_id, seq);',
  correlation: 'CREATE INDEX events_correlation ON events (correlation_id, seq);',
}
const ALL_INDEXES = Object.values(INDEXES).join('\n')
const TYPES = Array.from({length: 40}, (_, i) => `domain${i % 8}.entity${i}.happened`)

interface Row {
  id: string
  type: string
  ts: number
  aggregate: string
  correlation: string
  json: string
}

/** A 1 KB event of one of 10,000 aggregates and 10,000 journeys, as the simulator writes them. */
let makeId: () => string = randomUUID
function row(): Row {
  const id = makeId()
  const aggregate = `user-${Math.floor(Math.random() * 10_000)}`
  const correlation = `journey-${Math.floor(Math.random() * 10_000)}`
  const envelope = {event_id: id, event_type: TYPES[Math.floor(Math.random() * TYPES.length)], payload: {text: 'x'.repeat(800)}, metadata: {aggregate_id: aggregate}, correlation_id: correlation}
  return {id, type: envelope.event_type, ts: Date.now(), aggregate, correlation, json: JSON.stringify(envelope)}
}

function open(name: string, schema: string): Database.Database {
  const db = new Database(path.join(dir, `${name}-${randomUUID()}.db`))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(schema)
  return db
}

function appender(db: Database.Database, onInsert?: (seq: number, r: Row) => void): (rows: Row[]) => number[] {
  const insert = db.prepare('INSERT INTO events (event_id, event_type, ts_ms, aggregate_id, correlation_id, envelope) VALUES (?, ?, ?, ?, ?, ?)')
  return db.transaction((rows: Row[]) =>
    rows.map((r) => {
      const seq = Number(insert.run(r.id, r.type, r.ts, r.aggregate, r.correlation, r.json).lastInsertRowid)
      onInsert?.(seq, r)
      return seq
    }),
  )
}

function fill(append: (rows: Row[]) => unknown, n: number): void {
  for (let i = 0; i < n; i += 1_000) append(Array.from({length: Math.min(1_000, n - i)}, row))
}

/** CPU microseconds per event of `step`, called once per batch of BATCH fresh rows. */
function cpuPerEvent(db: Database.Database, step: (rows: Row[], done: number) => void): number {
  db.pragma('wal_checkpoint(TRUNCATE)')
  const rows = Array.from({length: events}, row)
  const started = process.cpuUsage()
  for (let done = 0; done < events; done += BATCH) step(rows.slice(done, done + BATCH), done)
  const used = process.cpuUsage(started)
  db.close()
  return (used.user + used.system) / events
}

const variants: Record<string, () => number> = {
  'index/none': () => {
    const db = open('index', EVENTS)
    const append = appender(db)
    fill(append, prefill)
    return cpuPerEvent(db, (rows) => append(rows))
  },
  ...Object.fromEntries(
    Object.entries(INDEXES).map(([name, sql]) => [
      `index/${name}`,
      () => {
        const db = open('index', EVENTS + sql)
        const append = appender(db)
        fill(append, prefill)
        return cpuPerEvent(db, (rows) => append(rows))
      },
    ]),
  ),
  'outbox/row': () => {
    const db = open('outbox', EVENTS + ALL_INDEXES + 'CREATE INDEX events_outbox ON events (seq, lease_until) WHERE published = 0;')
    const append = appender(db)
    fill(append, prefill)
    db.exec('UPDATE events SET published = 1')
    const claim = db
      .prepare(
        `UPDATE events SET lease_until = @until, lease_owner = @owner WHERE seq IN (
           SELECT seq FROM events INDEXED BY events_outbox WHERE published = 0 AND lease_until <= @now ORDER BY seq LIMIT @limit)
         RETURNING seq, envelope`,
      )
      .raw()
    const mark = db.prepare('UPDATE events SET published = 1, published_at = ?, lease_until = 0, lease_owner = NULL WHERE event_id IN (SELECT value FROM json_each(?)) AND published = 0')
    const relay = () => {
      const now = Date.now()
      const claimed = db.transaction(() => claim.all({until: now + 30_000, owner: 'relay', now, limit: BATCH}) as Array<[number, string]>)()
      const ids = claimed.map(([, json]) => (JSON.parse(json) as {event_id: string}).event_id)
      db.transaction(() => mark.run(Date.now(), JSON.stringify(ids)))()
    }
    return cpuPerEvent(db, (rows) => {
      append(rows)
      relay()
    })
  },
  'outbox/table': () => {
    const db = open(
      'outbox',
      EVENTS + ALL_INDEXES + 'CREATE TABLE outbox (seq INTEGER PRIMARY KEY, lease_until INTEGER NOT NULL DEFAULT 0, lease_owner TEXT); CREATE TABLE published (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL);',
    )
    const queue = db.prepare('INSERT INTO outbox (seq) VALUES (?)')
    const append = appender(db, (seq) => queue.run(seq))
    fill(append, prefill)
    db.exec('INSERT INTO published SELECT seq, 0 FROM outbox; DELETE FROM outbox')
    const claim = db
      .prepare(
        `UPDATE outbox SET lease_until = @until, lease_owner = @owner WHERE seq IN (
           SELECT seq FROM outbox WHERE lease_until <= @now ORDER BY seq LIMIT @limit) RETURNING seq`,
      )
      .pluck()
    const envelopes = db.prepare('SELECT seq, envelope FROM events WHERE seq IN (SELECT value FROM json_each(?))').raw()
    const unqueue = db.prepare('DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?)) RETURNING seq').pluck()
    const record = db.prepare('INSERT INTO published (seq, at) VALUES (?, ?)')
    const relay = () => {
      const now = Date.now()
      const claimed = db.transaction(() => envelopes.all(JSON.stringify(claim.all({until: now + 30_000, owner: 'relay', now, limit: BATCH}))) as Array<[number, string]>)()
      for (const [, json] of claimed) JSON.parse(json)
      db.transaction(() => {
        const at = Date.now()
        for (const seq of unqueue.all(JSON.stringify(claimed.map(([seq]) => seq))) as number[]) record.run(seq, at)
      })()
    }
    return cpuPerEvent(db, (rows) => {
      append(rows)
      relay()
    })
  },
  'index/ordered-id': () => withIds(newEventId, variants['index/none']!),
  'handled/id': () => handled('event_id TEXT'),
  'handled/seq': () => handled('seq INTEGER'),
  'handled/ordered-id': () => withIds(newEventId, () => handled('event_id TEXT')),
}

function withIds(ids: () => string, run: () => number): number {
  makeId = ids
  try {
    return run()
  } finally {
    makeId = randomUUID
  }
}

const GROUPS = ['gamification', 'notification', 'search', 'analytics', 'realtime', 'user', 'payment', 'email', 'cache']

/** Two handled records per event, written a few batches behind the appends (the groups' lag). */
function handled(key: string): number {
  const byId = key.startsWith('event_id')
  const db = open('handled', `${EVENTS} CREATE TABLE handled (${key} NOT NULL, group_name TEXT NOT NULL, handled_at TEXT NOT NULL, attempts INTEGER NOT NULL, PRIMARY KEY (${key.split(' ')[0]}, group_name)) WITHOUT ROWID;`)
  const appended: Array<[string, number]> = []
  const append = appender(db, (seq, r) => appended.push([r.id, seq]))
  const insert = db.prepare('INSERT INTO handled VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
  const commit = db.transaction((records: Array<[string, number, string]>) => {
    const at = new Date().toISOString()
    for (const [id, seq, group] of records) insert.run(byId ? id : seq, group, at, 1)
  })
  const twoGroups = (batch: Array<[string, number]>, shift: number) =>
    batch.flatMap(([id, seq]): Array<[string, number, string]> => [
      [id, seq, GROUPS[(seq + shift) % 9]],
      [id, seq, GROUPS[(seq + shift + 4) % 9]],
    ])
  fill(append, prefill)
  for (let i = 0; i < appended.length; i += 2_000) commit(twoGroups(appended.slice(i, i + 2_000), 0))
  return cpuPerEvent(db, (rows, done) => {
    const from = appended.length
    append(rows)
    const behind = Math.max(0, from - 3 * BATCH)
    commit(twoGroups(appended.slice(behind, behind + BATCH), done))
  })
}

const results = new Map<string, number[]>()
try {
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      if (values.only && !values.only.split(',').some((prefix) => name.startsWith(prefix))) continue
      const us = run()
      results.set(name, [...(results.get(name) ?? []), us])
      process.stderr.write(`round ${round + 1}: ${name} ${us.toFixed(1)} us/event\n`)
    }
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const baseline: Record<string, string> = {index: 'index/none', outbox: 'outbox/row', handled: 'handled/id'}
const table = new Table({head: ['variant', 'cpu us/event (each round)', 'vs its baseline'], style: {head: [], border: []}})
for (const [name, runs] of results) {
  const base = results.get(baseline[name.split('/')[0]])!
  table.push([name, runs.map((us) => us.toFixed(1)).join(', '), `${(median(runs) / median(base)).toFixed(2)}x`])
}
process.stderr.write(`${table.toString()}\n`)
process.stdout.write(`${JSON.stringify({events, prefill, rounds, batch: BATCH, results: Object.fromEntries(results)})}\n`)
