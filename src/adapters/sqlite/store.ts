/**
 * The SQLite Store (better-sqlite3 12): the embedded runtime's store, one file shared by every
 * command and process in a data directory (see ARCHITECTURE.md "Stores, and why SQLite is the
 * embedded one").
 *
 * Concurrency. The file is in WAL mode: readers never block the writer nor each other. Every write
 * is one `BEGIN IMMEDIATE` transaction, which takes the write lock before it reads anything: a
 * deferred transaction that reads and then upgrades to a write fails with SQLITE_BUSY(_SNAPSHOT) at
 * once when another process committed in between, and no busy timeout helps it. Waiting for another
 * thread's or process's lock is waitWhileBusy (flat short sleeps, not SQLite's busy handler); should
 * that run out under heavy contention, the call is retried for as long again (with an async
 * backoff) before a clear STORE_BUSY error.
 * better-sqlite3 is synchronous, so within one process nothing interleaves inside a transaction.
 * The hot writes (units of work, appends, outbox claims and marks) are group-committed: those asked
 * for in one turn of the event loop share one transaction, each in its own savepoint (queued()).
 *
 * Tables (schema version in `PRAGMA user_version`, migrations below):
 * - `events`: one row per event. `seq` (INTEGER PRIMARY KEY) is the append order across every
 *   process (the write lock serializes appends). Its columns published, lease_until, lease_owner,
 *   published_at and quarantine are schema 6's outbox, unused since schema 7.
 * - `outbox`: (seq, aggregate_id, lease) of each event still to publish, inserted with the event in
 *   the same transaction; `published`: seq -> when it was marked published (ms); `quarantine`: seq
 *   -> why the relay gave up on it (JSON). An event is in exactly one of the three.
 * - `projections`: (collection, id) -> the document as JSON, and beside it (never in it) the last
 *   APPLIED_LIMIT event ids applyOnce applied to it, as 8-byte fingerprints in a BLOB (applied.ts),
 *   and its version (the writes that named it: a commit's expected versions are checked on it).
 * - `dlq`: records by id, in dead-letter order.
 * - `handled`: (event_id, group) -> when the group completed the event and after how many attempts;
 *   also the group's ledger (an event it holds is a duplicate for that group), kept with the event.
 * - `archived_ids`: the ids of events archive removed; appending one is a duplicate.
 */
import {statSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import Database from 'better-sqlite3'
import {sameEnvelope, type EventEnvelope} from '../../core/envelope.js'
import type {
  AppendResult,
  CommitResult,
  DlqRecord,
  DlqStore,
  HandledLog,
  HandledRecord,
  HandledWrite,
  EventQuery,
  EventStore,
  Outbox,
  ProjectionDoc,
  ProjectionStore,
  ProjectionUpdate,
  PublishedEvent,
  QuarantineRecord,
  Store,
  StoredEventRecord,
  StoreWrites,
} from '../../core/ports.js'
import {typeGlobToRegExpSource} from '../../core/glob.js'
import {appliedCount, appliedList, fingerprint, holds, MIGRATION_FUNCTION, NO_APPLIED, withApplied, type Fingerprint} from './applied.js'
import {APPLIED_FIELD, APPLIED_LIMIT, compareValues, DocDraft, getPath, matchesFilter, type Doc} from '../../core/projection-update.js'
import {UserError} from '../../errors.js'
import {handledConflict, StaleReadError} from '../../core/errors.js'

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' (private to this store). The directory must exist. */
  path: string
  /** Wall clock for leases and ttls (tests inject one). */
  now?: () => number
  /** How long a writer waits for another process's lock (default 5000). */
  busyTimeoutMs?: number
  /** Rows per page of query() (default 500). */
  queryChunkSize?: number
}

type Db = Database.Database
type Statement = Database.Statement

// ---------------------------------------------------------------------------------- schema

/** Ordered: migration n takes user_version from n - 1 to n. Never edit one that has shipped; add one. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    ts_ms          INTEGER NOT NULL,
    aggregate_id   TEXT,
    correlation_id TEXT,
    envelope       TEXT    NOT NULL,
    published      INTEGER NOT NULL DEFAULT 0,
    lease_until    INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT
  );
  CREATE INDEX events_type ON events (event_type, seq);
  CREATE INDEX events_aggregate ON events (aggregate_id, seq);
  CREATE INDEX events_correlation ON events (correlation_id, seq);
  CREATE INDEX events_ts ON events (ts_ms, seq);
  -- The outbox: only unpublished rows are indexed, so it stays as small as the backlog; lease_until
  -- is in it so that claim's search never reads the table.
  CREATE INDEX events_outbox ON events (seq, lease_until) WHERE published = 0;

  CREATE TABLE idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (scope, key)
  ) WITHOUT ROWID;
  CREATE INDEX idempotency_expiry ON idempotency (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE projections (
    collection    TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    doc           TEXT    NOT NULL,
    applied       TEXT    NOT NULL DEFAULT '[]',
    applied_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (collection, id)
  );

  CREATE TABLE dlq (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    group_name TEXT NOT NULL,
    event_type TEXT,
    record     TEXT NOT NULL
  );
  CREATE INDEX dlq_group ON dlq (group_name, seq);
  CREATE INDEX dlq_type ON dlq (event_type, seq);
  `,
  // 2: the outbox's quarantine. published = 2 marks an event the relay gave up on (out of the
  // outbox's partial index, so claims and pending() never see it); `quarantine` holds why (JSON).
  `
  ALTER TABLE events ADD COLUMN quarantine TEXT;
  CREATE INDEX events_quarantined ON events (seq) WHERE published = 2;
  `,
  // 3: when an event was marked published (ms), for reconcile (null: marked before this column).
  `
  ALTER TABLE events ADD COLUMN published_at INTEGER;
  `,
  // 4: which group handled which event, when and after how many attempts (trace), kept with the event.
  `
  CREATE TABLE handled (
    event_id   TEXT NOT NULL,
    group_name TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    PRIMARY KEY (event_id, group_name)
  ) WITHOUT ROWID;
  `,
  // 5: the applied lists as 8-byte fingerprints instead of JSON arrays of ids (applied.ts).
  `
  UPDATE projections SET applied = ${MIGRATION_FUNCTION}(applied);
  `,
  // 6: the idempotency keys go: the handled records became the groups' ledger (schema 5's code
  // no longer wrote them), and nothing else used them.
  `
  DROP TABLE idempotency;
  `,
  // 7: the outbox leaves the event's row for narrow tables of its own. Claiming and marking an
  // event rewrote its ~1 KB row twice (WAL frames for a page per few events); now they touch a
  // small row in a table as small as the backlog. events.published, lease_until, lease_owner,
  // published_at and quarantine are no longer read or written (dropping them would rewrite the log).
  `
  CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,
    aggregate_id TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT
  );
  CREATE TABLE published (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL);
  CREATE TABLE quarantine (seq INTEGER PRIMARY KEY, reason TEXT NOT NULL);
  INSERT INTO outbox SELECT seq, aggregate_id, lease_until, lease_owner FROM events WHERE published = 0;
  INSERT INTO published SELECT seq, ifnull(published_at, 0) FROM events WHERE published = 1;
  INSERT INTO quarantine SELECT seq, ifnull(quarantine, '{}') FROM events WHERE published = 2;
  DROP INDEX events_outbox;
  DROP INDEX events_quarantined;
  `,
  // 8: each document's version, for the expected versions of a commit (StoreWrites.expect).
  `
  ALTER TABLE projections ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
  `,
  // 9: the ids of archived events, still known to append (EventStore.remove): a threshold event's
  // id is its identity, announced again whenever it is seen again, and got in twice once archived.
  `
  CREATE TABLE archived_ids (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
  `,
]

/** The user_version this code writes and understands. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length

/** Dynamic statements (query shapes) kept prepared. */
const STATEMENT_CACHE_LIMIT = 200

// ---------------------------------------------------------------------------------- open

export async function createSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const file = options.path
  if (typeof file !== 'string' || file.trim() === '') throw new Error('createSqliteStore: `path` must be a file path or ":memory:"')
  const busyTimeoutMs = Math.max(0, Math.round(options.busyTimeoutMs ?? 5_000))
  const memory = file === ':memory:'
  if (!memory) preflight(file)
  let db: Db
  try {
    // No busy handler in SQLite: waitWhileBusy waits instead.
    db = new Database(file, {timeout: 0})
  } catch (error) {
    throw openError(file, error, 0)
  }
  // Outside the retried open: a try that ran some migrations and then met the lock keeps them.
  const migrated: number[] = []
  const started = Date.now()
  try {
    await retryWhileBusy(() => openSchema(db, file, memory, migrated), busyTimeoutMs, () => false)
  } catch (error) {
    db.close()
    throw openError(file, error, Date.now() - started)
  }
  return new SqliteStore(db, file, {...options, busyTimeoutMs}, migrated)
}

/** The checks SQLite would answer with a bare "unable to open database file". */
function preflight(file: string): void {
  const dir = dirname(resolve(file))
  let dirStat
  try {
    dirStat = statSync(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? `the directory ${dir} does not exist` : code === 'ENOTDIR' ? `a part of ${dir} is a file, not a directory` : String(error)
    throw unwritable(file, reason, error)
  }
  if (!dirStat.isDirectory()) throw unwritable(file, `${dir} is a file, not a directory`)
  try {
    if (statSync(file).isDirectory()) throw unwritable(file, 'it is a directory')
  } catch (error) {
    if (error instanceof UserError) throw error
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unwritable(file, String(error), error)
  }
}

/**
 * Reads the version before anything writes to the file: a file from a newer tektree, or another
 * application's database, is left exactly as it was. Then WAL (persistent in the file) and the
 * migrations, each in its own IMMEDIATE transaction that re-reads the version, so two processes
 * opening a fresh file never both migrate.
 */
/** Opens the schema, migrating it where it is behind; each migration it runs goes into `migrated`. */
function openSchema(db: Db, file: string, memory: boolean, migrated: number[]): void {
  // One read transaction: the version and the tables must come from the same snapshot (another
  // process may commit the first migration in between two separate reads).
  const version = db
    .transaction(() => {
      const found = userVersion(db)
      if (found > SQLITE_SCHEMA_VERSION) throw schemaNewer(file, found)
      if (found === 0) rejectForeign(db, file)
      return found
    })
    .deferred()
  if (!memory) db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.function(MIGRATION_FUNCTION, {deterministic: true}, (applied: unknown) => appliedList(applied))
  // The savepoints of a group commit keep their statement journals in memory, not in temp files.
  db.pragma('temp_store = MEMORY')
  if (version === SQLITE_SCHEMA_VERSION) return
  for (let target = 1; target <= SQLITE_SCHEMA_VERSION; target++) {
    const ran = db
      .transaction(() => {
        const current = userVersion(db)
        if (current > SQLITE_SCHEMA_VERSION) throw schemaNewer(file, current)
        if (current >= target) return false
        if (current === 0) rejectForeign(db, file)
        db.exec(MIGRATIONS[target - 1])
        db.pragma(`user_version = ${target}`)
        return true
      })
      .immediate()
    if (ran) migrated.push(target)
  }
}

function userVersion(db: Db): number {
  return db.pragma('user_version', {simple: true}) as number
}

/** Version 0 with tables in it: some other program's SQLite database, which we must not write into. */
function rejectForeign(db: Db, file: string): void {
  const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number
  if (tables === 0) return
  throw new UserError(`The file ${file} is a SQLite database, but not a tektree store (it has tables and no tektree schema version).`, {
    code: 'STORE_CORRUPT',
    hint: 'Point tektree at another data directory, or move that file aside if it is not needed.',
    details: {path: file},
  })
}

// ---------------------------------------------------------------------------------- errors

const sqliteCode = (error: unknown): string => {
  const code = (error as {code?: unknown} | null)?.code
  return typeof code === 'string' ? code : ''
}
const isBusy = (error: unknown) => sqliteCode(error).startsWith('SQLITE_BUSY')
const isCorrupt = (error: unknown) => /^SQLITE_(NOTADB|CORRUPT)/.test(sqliteCode(error))
const isUnwritable = (error: unknown) =>
  /^(SQLITE_(READONLY|CANTOPEN|PERM|FULL)|EACCES|EPERM|ENOTDIR|EISDIR|EROFS)/.test(sqliteCode(error))
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

function unwritable(file: string, reason: string, cause?: unknown): UserError {
  return new UserError(`Cannot open or write the store file ${file}: ${reason}.`, {
    code: 'STORE_UNWRITABLE',
    hint: 'Make sure the data directory exists, is a directory and is writable by this user (and has space left), or use another data directory.',
    details: {path: file},
    cause,
  })
}

function corrupt(file: string, cause: unknown): UserError {
  return new UserError(`The store file ${file} is not a SQLite database, or is damaged (${messageOf(cause)}).`, {
    code: 'STORE_CORRUPT',
    hint: 'Move it aside or delete it (`tektree down --purge` removes the whole data directory), or use another data directory.',
    details: {path: file},
    cause,
  })
}

function schemaNewer(file: string, version: number): UserError {
  return new UserError(
    `The store file ${file} was written by a newer tektree (schema version ${version}; this one knows up to ${SQLITE_SCHEMA_VERSION}).`,
    {code: 'STORE_SCHEMA_NEWER', hint: 'Upgrade tektree, or use another data directory.', exitCode: 2, details: {path: file, version}},
  )
}

function locked(file: string, waitedMs: number, atOpen: boolean, cause: unknown): UserError {
  return new UserError(`The store file ${file} stayed locked by another process for ${waitedMs} ms${atOpen ? ' while opening it' : ''}.`, {
    code: atOpen ? 'STORE_LOCKED' : 'STORE_BUSY',
    hint:
      'Another process holds a long write transaction on it (a stuck tektree process, or a sqlite3 shell inside BEGIN): ' +
      'let it finish or stop it, then try again; or use another data directory.',
    exitCode: 3,
    details: {path: file, waitedMs},
    cause,
  })
}

function openError(file: string, error: unknown, waitedMs: number): unknown {
  if (error instanceof UserError) return error
  if (isCorrupt(error)) return corrupt(file, error)
  if (isUnwritable(error)) return unwritable(file, messageOf(error), error)
  if (isBusy(error)) return locked(file, waitedMs, true, error)
  if (error instanceof TypeError && /directory does not exist/.test(error.message)) return unwritable(file, 'its directory does not exist', error)
  return error
}

/** How long a thread sleeps between two tries of a lock another connection holds. */
const BUSY_SLEEP_MS = 0.5
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/**
 * Runs `op` (synchronous) until it does not fail with SQLITE_BUSY or busyTimeoutMs has passed,
 * sleeping BUSY_SLEEP_MS (blocking the thread, as SQLite's busy handler would) between tries.
 * SQLite's own handler sleeps 1, 2, 5, 10 ... up to 100 ms per try: with the write lock held most
 * of the time under load, a writer that lost a few tries slept for tens of milliseconds while the
 * others took the lock again and again (publish p95 of 60-150 ms at 1,000 events/s).
 */
function waitWhileBusy<T>(op: () => T, busyTimeoutMs: number): T {
  const deadline = Date.now() + busyTimeoutMs
  for (;;) {
    try {
      return op()
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error
    }
    Atomics.wait(sleeper, 0, 0, BUSY_SLEEP_MS)
  }
}

/**
 * Runs `op` (synchronous) under waitWhileBusy; when that runs out, again while it fails with
 * SQLITE_BUSY, at least once more and until busyTimeoutMs has passed again. A short randomized
 * async pause between these attempts lets the event loop run and de-synchronizes waiters.
 */
async function retryWhileBusy<T>(op: () => T, busyTimeoutMs: number, closed: () => boolean): Promise<T> {
  try {
    return waitWhileBusy(op, busyTimeoutMs)
  } catch (error) {
    if (!isBusy(error) || closed()) throw error
  }
  const started = Date.now()
  for (let attempt = 0; ; attempt++) {
    try {
      return op()
    } catch (error) {
      if (!isBusy(error) || closed() || (attempt > 0 && Date.now() - started > busyTimeoutMs)) throw error
    }
    await new Promise<void>((done) => setTimeout(done, 1 + Math.random() * Math.min(50, 2 ** attempt)))
  }
}

// ---------------------------------------------------------------------------------- the store

const yieldToLoop = () => new Promise<void>((done) => setImmediate(done))

interface HandledRow {
  event_id: string
  group_name: string
  handled_at: string
  attempts: number
}

const handledRecord = (r: HandledRow): HandledRecord => ({group: r.group_name, event_id: r.event_id, handled_at: r.handled_at, attempts: r.attempts})

interface EventRow {
  id: string
  type: string
  ts: number
  aggregate: string | null
  correlation: string | null
  json: string
}

/** A projection document as loaded inside a write transaction (a unit of work stages several). */
interface StagedDoc {
  collection: string
  id: string
  exists: boolean
  /** The document as the unit's writes so far leave it (null: none yet). */
  draft: DocDraft
  /** Fingerprints of the last applied event ids (applied.ts). */
  applied: Buffer
  dirty: boolean
}

/** One commit() call's writes, as they go into the file. */
interface UnitRows {
  projections: NonNullable<StoreWrites['projections']>
  rows: readonly EventRow[]
  handled: readonly HandledWrite[]
  expect: NonNullable<StoreWrites['expect']>
}

type WriteOutcome = {result: unknown} | {error: unknown}

interface QueuedWrite {
  op: () => unknown
  resolve: (result: unknown) => void
  reject: (error: unknown) => void
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly transactional = true
  readonly events: EventStore
  readonly outbox: Outbox
  readonly projections: ProjectionStore
  readonly dlq: DlqStore
  readonly handled: HandledLog
  private readonly recordHandled: Statement
  private readonly insertHandled: Statement
  /** The migrations this open applied (empty when the file was already current): tests and logs. */
  readonly migrationsRun: readonly number[]

  private closed = false
  private readonly now: () => number
  private readonly chunkSize: number
  private readonly busyTimeoutMs: number
  private readonly statements = new Map<string, Statement>()
  private readonly regexps = new Map<string, RegExp>()

  // Prepared once: these are the hot paths.
  private readonly insertEvent: Statement
  private readonly selectEnvelope: Statement
  private readonly isArchived: Statement
  private readonly maxSeq: Statement
  private readonly queueEvent: Statement
  private readonly claimEvents: Statement
  private readonly selectClaimed: Statement
  private readonly unqueue: Statement
  private readonly recordPublished: Statement
  private readonly countPending: Statement
  private readonly recordQuarantine: Statement
  private readonly selectQuarantined: Statement
  private readonly countQuarantined: Statement
  private readonly unquarantine: Statement
  private readonly requeue: Statement
  private readonly selectProjection: Statement
  private readonly selectDoc: Statement
  private readonly selectVersioned: Statement
  private readonly selectVersion: Statement
  private readonly bumpVersion: Statement
  private readonly selectApplied: Statement
  private readonly selectDocs: Statement
  private readonly countDocs: Statement
  private readonly insertProjection: Statement
  private readonly updateProjection: Statement
  private readonly dropCollection: Statement
  private readonly upsertDlq: Statement
  private readonly selectDlq: Statement
  private readonly deleteDlq: Statement

  // Write transactions, each run as BEGIN IMMEDIATE.
  private readonly restoreTx: (rows: ReadonlyArray<{row: EventRow; published_at: number | null; handled: readonly HandledRecord[]}>) => AppendResult
  private readonly writeTx: <T>(fn: () => T) => T
  // Bodies of the writes that go through the write queue (see queued()).
  private readonly appendRows: (rows: readonly EventRow[]) => AppendResult
  private readonly claimRows: (owner: string, limit: number, leaseMs: number) => EventEnvelope[]
  private readonly commitUnit: (unit: UnitRows) => CommitResult
  /** Several writes in one IMMEDIATE transaction, each in a savepoint of its own. */
  private readonly groupWriteTx: (writes: readonly QueuedWrite[]) => WriteOutcome[]
  /** Writes asked for in this turn of the event loop: they go into the file together. */
  private writeQueue: QueuedWrite[] = []
  private lastPrint: {eventId: string; print: Fingerprint} | null = null

  constructor(
    private readonly db: Db,
    readonly path: string,
    options: Omit<SqliteStoreOptions, 'path'>,
    migrationsRun: readonly number[],
  ) {
    this.now = options.now ?? Date.now
    this.chunkSize = Math.max(1, options.queryChunkSize ?? 500)
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5_000
    this.migrationsRun = migrationsRun

    // X REGEXP Y calls regexp(Y, X). Patterns come from glob.ts, as the MongoDB adapter's $regex do.
    db.function('regexp', {deterministic: true}, (pattern: string, value: unknown) => {
      let regexp = this.regexps.get(pattern)
      if (!regexp) {
        if (this.regexps.size > STATEMENT_CACHE_LIMIT) this.regexps.clear()
        this.regexps.set(pattern, (regexp = new RegExp(pattern)))
      }
      return typeof value === 'string' && regexp.test(value) ? 1 : 0
    })

    // ON CONFLICT (event_id) DO NOTHING rather than INSERT OR IGNORE: OR IGNORE would also swallow a
    // NOT NULL violation and report a malformed event as a "duplicate".
    this.insertEvent = db.prepare(
      'INSERT INTO events (event_id, event_type, ts_ms, aggregate_id, correlation_id, envelope) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING',
    )
    this.selectEnvelope = db.prepare('SELECT envelope FROM events WHERE event_id = ?').pluck()
    this.isArchived = db.prepare('SELECT 1 FROM archived_ids WHERE event_id = ?').pluck()
    this.maxSeq = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck()
    // One statement picks and leases; RETURNING order is unspecified, so the envelopes are read
    // by seq after (selectClaimed). An aggregate another relay holds a live lease on is skipped
    // whole: its later events must not reach the bus before the earlier ones that relay is
    // publishing. Both scans read only `outbox`, which is as small as the backlog.
    this.queueEvent = db.prepare('INSERT INTO outbox (seq, aggregate_id) VALUES (?, ?)')
    this.claimEvents = db
      .prepare(
        `UPDATE outbox SET lease_until = @until, lease_owner = @owner
         WHERE seq IN (
           SELECT seq FROM outbox WHERE lease_until <= @now
             AND (aggregate_id IS NULL OR aggregate_id NOT IN (
               SELECT aggregate_id FROM outbox
               WHERE lease_until > @now AND lease_owner IS NOT @owner AND aggregate_id IS NOT NULL))
           ORDER BY seq LIMIT @limit)
         RETURNING seq`,
      )
      .pluck()
    // json_each takes a whole list as one parameter: no variable limit, one prepared statement.
    this.selectClaimed = db.prepare('SELECT envelope FROM events WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq').pluck()
    const seqsOf = 'SELECT seq FROM events WHERE event_id IN (SELECT value FROM json_each(?))'
    this.unqueue = db.prepare(`DELETE FROM outbox WHERE seq IN (${seqsOf}) RETURNING seq`).pluck()
    this.recordPublished = db.prepare('INSERT INTO published (seq, at) SELECT value, ? FROM json_each(?)')
    this.countPending = db.prepare('SELECT count(*) FROM outbox').pluck()
    this.recordQuarantine = db.prepare('INSERT INTO quarantine (seq, reason) VALUES (?, ?)')
    this.selectQuarantined = db.prepare('SELECT e.envelope, q.reason FROM quarantine q JOIN events e ON e.seq = q.seq ORDER BY q.seq LIMIT ?').raw()
    this.countQuarantined = db.prepare('SELECT count(*) FROM quarantine').pluck()
    this.unquarantine = db.prepare(`DELETE FROM quarantine WHERE seq IN (${seqsOf}) RETURNING seq`).pluck()
    this.requeue = db.prepare('INSERT INTO outbox (seq, aggregate_id) SELECT seq, aggregate_id FROM events WHERE seq IN (SELECT value FROM json_each(?))')

    this.selectProjection = db.prepare('SELECT doc, applied FROM projections WHERE collection = ? AND id = ?').raw()
    this.selectDoc = db.prepare('SELECT doc FROM projections WHERE collection = ? AND id = ?').pluck()
    this.selectVersioned = db.prepare('SELECT doc, version FROM projections WHERE collection = ? AND id = ?').raw()
    this.selectVersion = db.prepare('SELECT version FROM projections WHERE collection = ? AND id = ?').pluck()
    this.bumpVersion = db.prepare('UPDATE projections SET version = version + 1 WHERE collection = ? AND id = ?')
    this.selectApplied = db.prepare('SELECT applied FROM projections WHERE collection = ? AND id = ?').pluck()
    this.selectDocs = db.prepare('SELECT doc FROM projections WHERE collection = ?').pluck()
    this.countDocs = db.prepare('SELECT count(*) FROM projections WHERE collection = ?').pluck()
    this.insertProjection = db.prepare('INSERT INTO projections (collection, id, doc, applied, applied_count, version) VALUES (?, ?, ?, ?, ?, 1)')
    this.updateProjection = db.prepare('UPDATE projections SET doc = ?, applied = ?, applied_count = ?, version = version + 1 WHERE collection = ? AND id = ?')
    this.dropCollection = db.prepare('DELETE FROM projections WHERE collection = ?')

    // A replaced record keeps its seq, so list() stays in dead-letter order.
    this.upsertDlq = db.prepare(
      `INSERT INTO dlq (id, group_name, event_type, record) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET group_name = excluded.group_name, event_type = excluded.event_type, record = excluded.record`,
    )
    this.selectDlq = db.prepare('SELECT record FROM dlq WHERE id = ?').pluck()
    this.deleteDlq = db.prepare('DELETE FROM dlq WHERE id IN (SELECT value FROM json_each(?))')

    this.appendRows = (rows: readonly EventRow[]) => {
      let inserted = 0
      const duplicates: string[] = []
      const conflicts: string[] = []
      for (const row of rows) {
        if (this.insertRow(row)) inserted++
        else if (this.sameAsStored(row)) duplicates.push(row.id)
        else conflicts.push(row.id)
      }
      return {inserted, duplicates, conflicts}
    }
    this.claimRows = (owner: string, limit: number, leaseMs: number) => {
      const now = this.now()
      const seqs = this.claimEvents.all({until: now + leaseMs, owner, now, limit}) as number[]
      if (seqs.length === 0) return []
      return (this.selectClaimed.all(JSON.stringify(seqs)) as string[]).map((json) => JSON.parse(json) as EventEnvelope)
    }
    this.writeTx = immediate(db, <T>(fn: () => T): T => fn()) as <T>(fn: () => T) => T
    this.recordHandled = db.prepare('INSERT OR REPLACE INTO handled (event_id, group_name, handled_at, attempts) VALUES (?, ?, ?, ?)')
    this.insertHandled = db.prepare('INSERT INTO handled (event_id, group_name, handled_at, attempts) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
    this.commitUnit = ({projections, rows, handled, expect}: UnitRows): CommitResult => {
      // Inside the write lock: no other process writes between this check and the unit's writes.
      this.checkVersions(expect)
      // The group's ledger, inside the write lock: a record already there is another consumer's
      // completion (the throw rolls this unit back), unless this is a replay, which replaces it.
      const taken: HandledWrite[] = []
      for (const r of handled) {
        if (r.again) this.recordHandled.run(r.event_id, r.group, r.handled_at, r.attempts)
        else if (this.insertHandled.run(r.event_id, r.group, r.handled_at, r.attempts).changes === 0) taken.push(r)
      }
      if (taken.length > 0) throw handledConflict(taken)
      const staged = new Map<string, StagedDoc>()
      for (const {collection, id, update, eventId} of projections) this.stage(staged, collection, id, update, eventId ?? null)
      this.flush(staged)
      let inserted = 0
      for (const row of rows) if (this.insertRow(row)) inserted++
      return {inserted}
    }
    // Inside a transaction, better-sqlite3 runs a transaction function as a SAVEPOINT: a write that
    // throws rolls back alone and the others still go in.
    const inSavepoint = db.transaction((op: () => unknown) => op())
    this.groupWriteTx = immediate(db, (writes: readonly QueuedWrite[]): WriteOutcome[] =>
      writes.map(({op}) => {
        try {
          return {result: inSavepoint(op)}
        } catch (error) {
          // The file or the connection failed, not this write: the whole group is retried or refused.
          if (isSqliteFailure(error)) throw error
          return {error}
        }
      }),
    )

    const selectHandled = db.prepare('SELECT event_id, group_name, handled_at, attempts FROM handled WHERE event_id IN (SELECT value FROM json_each(?))')
    const selectCompleted = db.prepare('SELECT event_id FROM handled WHERE group_name = ? AND event_id IN (SELECT value FROM json_each(?))').pluck()
    const selectRecords = db
      .prepare(
        'SELECT e.event_id, e.envelope, p.at FROM events e LEFT JOIN published p ON p.seq = e.seq WHERE e.event_id IN (SELECT value FROM json_each(?)) ORDER BY e.seq',
      )
      .raw()
    const deleteEvents = db.prepare('DELETE FROM events WHERE event_id IN (SELECT value FROM json_each(?))')
    const keepArchivedIds = db.prepare('INSERT OR IGNORE INTO archived_ids (event_id) SELECT event_id FROM events WHERE event_id IN (SELECT value FROM json_each(?))')
    const forgetArchivedId = db.prepare('DELETE FROM archived_ids WHERE event_id = ?')
    const deleteHandled = db.prepare('DELETE FROM handled WHERE event_id IN (SELECT value FROM json_each(?))')
    // Before the events go: a seq freed at the end of the log is given to the next append.
    const deleteStates = ['outbox', 'published', 'quarantine'].map((table) =>
      db.prepare(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM events WHERE event_id IN (SELECT value FROM json_each(?)))`),
    )
    const insertPublishedAt = db.prepare('INSERT INTO published (seq, at) VALUES (?, ?)')
    this.restoreTx = immediate(db, (rows: ReadonlyArray<{row: EventRow; published_at: number | null; handled: readonly HandledRecord[]}>) => {
      let inserted = 0
      const duplicates: string[] = []
      const conflicts: string[] = []
      const now = this.now()
      for (const {row, published_at, handled} of rows) {
        forgetArchivedId.run(row.id)
        // Published from the start: a restored event never enters the outbox.
        const insert = this.insertEvent.run(row.id, row.type, row.ts, row.aggregate, row.correlation, row.json)
        if (insert.changes > 0) {
          insertPublishedAt.run(insert.lastInsertRowid, published_at ?? now)
          inserted++
          for (const r of handled) this.recordHandled.run(r.event_id, r.group, r.handled_at, r.attempts)
        } else if (sameEnvelope(JSON.parse(this.selectEnvelope.get(row.id) as string), JSON.parse(row.json))) duplicates.push(row.id)
        else conflicts.push(row.id)
      }
      return {inserted, duplicates, conflicts}
    })

    this.events = {
      append: async (events) => {
        if (events.length === 0) {
          this.check()
          return {inserted: 0, duplicates: [], conflicts: []}
        }
        // Serialized before the transaction: the write lock is held for the inserts only.
        const rows = events.map(eventRow)
        return this.queued(() => this.appendRows(rows))
      },
      get: (eventId) =>
        this.run(() => {
          const json = this.selectEnvelope.get(eventId) as string | undefined
          return json === undefined ? null : (JSON.parse(json) as EventEnvelope)
        }),
      query: (query) => this.query(query),
      count: (query = {}) => this.run(() => this.count(query)),
      records: async (eventIds) => {
        if (eventIds.length === 0) return this.check(), []
        const list = JSON.stringify(eventIds)
        return this.run(() =>
          // One read transaction: the events and their handled records from the same snapshot.
          this.db
            .transaction(() => {
              const out = new Map<string, StoredEventRecord>()
              for (const [id, json, at] of selectRecords.all(list) as Array<[string, string, number | null]>) {
                out.set(id, {event: JSON.parse(json) as EventEnvelope, published_at: at, handled: []})
              }
              for (const r of selectHandled.all(list) as HandledRow[]) out.get(r.event_id)?.handled.push(handledRecord(r))
              return [...out.values()]
            })
            .deferred(),
        )
      },
      remove: async (eventIds) => {
        if (eventIds.length === 0) return this.check(), 0
        const list = JSON.stringify(eventIds)
        return this.run(() =>
          this.writeTx(() => {
            deleteHandled.run(list)
            for (const statement of deleteStates) statement.run(list)
            keepArchivedIds.run(list)
            return deleteEvents.run(list).changes
          }),
        )
      },
      restore: async (records) => {
        if (records.length === 0) return this.check(), {inserted: 0, duplicates: [], conflicts: []}
        const rows = records.map((r) => ({row: eventRow(r.event), published_at: r.published_at, handled: r.handled}))
        return this.run(() => this.restoreTx(rows))
      },
    }
    this.outbox = {
      claim: async ({owner, limit, leaseMs}) => {
        if (limit <= 0) {
          this.check()
          return []
        }
        return this.queued(() => this.claimRows(owner, limit, leaseMs))
      },
      markPublished: async (eventIds) => {
        if (eventIds.length === 0) return this.check()
        const ids = JSON.stringify(eventIds)
        await this.queued(() => {
          const seqs = this.unqueue.all(ids) as number[]
          if (seqs.length > 0) this.recordPublished.run(this.now(), JSON.stringify(seqs))
        })
      },
      published: (options = {}) => this.published(options.sinceMs ?? 0),
      pending: () => this.run(() => this.countPending.get() as number),
      quarantine: async (entries) => {
        if (entries.length === 0) {
          this.check()
          return 0
        }
        const at = new Date(this.now()).toISOString()
        const rows = entries.map((entry) => [JSON.stringify({...entry, quarantined_at: at}), JSON.stringify([entry.event_id])] as const)
        return this.run(() =>
          this.writeTx(() =>
            rows.reduce((n, [json, ids]) => {
              // Only an event still in the outbox: a published or already quarantined one stays.
              for (const seq of this.unqueue.all(ids) as number[]) n += this.recordQuarantine.run(seq, json).changes
              return n
            }, 0),
          ),
        )
      },
      quarantined: (filter = {}) =>
        this.run(() => {
          const rows = this.selectQuarantined.all(filter.limit ?? -1) as Array<[string, string]>
          return rows.map(([envelope, reason]) => {
            const event = JSON.parse(envelope) as EventEnvelope
            return {...(JSON.parse(reason) as Omit<QuarantineRecord, 'envelope' | 'event_type'>), event_type: event.event_type, envelope: event}
          })
        }),
      countQuarantined: () => this.run(() => this.countQuarantined.get() as number),
      release: async (eventIds) => {
        if (eventIds.length === 0) {
          this.check()
          return 0
        }
        const ids = JSON.stringify(eventIds)
        return this.run(() =>
          this.writeTx(() => {
            const seqs = this.unquarantine.all(ids) as number[]
            return seqs.length === 0 ? 0 : this.requeue.run(JSON.stringify(seqs)).changes
          }),
        )
      },
    }
    this.projections = {
      get: (collection, id) =>
        this.run(() => {
          const json = this.selectDoc.get(collection, id) as string | undefined
          return json === undefined ? null : (JSON.parse(json) as ProjectionDoc)
        }),
      getVersioned: (collection, id) =>
        this.run(() => {
          const row = this.selectVersioned.get(collection, id) as [string, number] | undefined
          return row === undefined ? {doc: null, version: 0} : {doc: JSON.parse(row[0]) as ProjectionDoc, version: row[1]}
        }),
      find: (collection, filter, findOptions) => this.run(() => this.find(collection, filter, findOptions)),
      count: (collection, filter) =>
        this.run(() => {
          if (!filter || Object.keys(filter).length === 0) return this.countDocs.get(collection) as number
          let n = 0
          this.scanDocs(collection, filter, () => {
            n++
            return true
          })
          return n
        }),
      update: async (collection, id, update) => {
        rejectBookkeeping(update)
        await this.run(() => this.writeTx(() => this.writeOne(collection, id, update, null)))
      },
      applyOnce: async (collection, id, eventId, update) => {
        rejectBookkeeping(update)
        return this.run(() => this.writeTx(() => this.writeOne(collection, id, update, eventId)))
      },
      isApplied: (collection, id, eventId) =>
        this.run(() => {
          const applied = this.selectApplied.get(collection, id) as unknown
          return applied !== undefined && holds(appliedList(applied), this.fingerprintOf(eventId))
        }),
      drop: async (collection) => {
        await this.run(() => this.writeTx(() => this.dropCollection.run(collection)))
      },
    }
    this.handled = {
      of: (eventIds) => this.run(() => (selectHandled.all(JSON.stringify(eventIds)) as HandledRow[]).map(handledRecord)),
      completed: async (group, eventIds) => {
        if (eventIds.length === 0) return this.check(), new Set()
        return this.run(() => new Set(selectCompleted.all(group, JSON.stringify(eventIds)) as string[]))
      },
    }
    this.dlq = {
      add: async (record) => {
        const json = JSON.stringify(record)
        await this.run(() => this.writeTx(() => this.upsertDlq.run(record.id, record.group, record.event_type, json)))
      },
      list: (filter = {}) =>
        this.run(() => {
          const {where, params} = dlqWhere(filter)
          const limited = filter.limit !== undefined
          const sql = `SELECT record FROM dlq${where} ORDER BY seq${limited ? ' LIMIT ?' : ''}`
          const rows = this.statement(sql, 'pluck').all(...params, ...(limited ? [filter.limit] : [])) as string[]
          return rows.map((json) => JSON.parse(json) as DlqRecord)
        }),
      get: (id) =>
        this.run(() => {
          const json = this.selectDlq.get(id) as string | undefined
          return json === undefined ? null : (JSON.parse(json) as DlqRecord)
        }),
      remove: async (ids) => {
        if (ids.length === 0) {
          this.check()
          return 0
        }
        const list = JSON.stringify(ids)
        return this.run(() => this.writeTx(() => this.deleteDlq.run(list).changes))
      },
      count: (filter = {}) =>
        this.run(() => {
          const {where, params} = dlqWhere(filter)
          return this.statement(`SELECT count(*) FROM dlq${where}`, 'pluck').get(...params) as number
        }),
    }
  }

  /**
   * One IMMEDIATE transaction: the handled records (the group's ledger, refusing a unit another
   * consumer completed first), projections in order (applyOnce where an eventId is given, seeing
   * what earlier writes of the unit applied), then the events into the outbox. Any throw rolls the
   * whole unit back.
   */
  async commit(writes: StoreWrites): Promise<CommitResult> {
    const projections = writes.projections ?? []
    for (const {update} of projections) rejectBookkeeping(update)
    const rows = writes.events?.length ? writes.events.map(eventRow) : []
    const handled = writes.handled ?? []
    const expect = writes.expect ?? []
    if (projections.length === 0 && rows.length === 0 && handled.length === 0 && expect.length === 0) {
      this.check()
      return {inserted: 0}
    }
    const unit = {projections, rows, handled, expect}
    return this.queued(() => this.commitUnit(unit))
  }

  /**
   * Group commit: the hot writes (units of work, appends, outbox claims and marks) asked for in one
   * turn of the event loop share one IMMEDIATE transaction, each in a savepoint of its own. A
   * worker's consumer groups each commit once per turn, and the relay claims and marks beside
   * them: together they take the file's one write lock once, COMMIT once, and write the B-tree
   * pages they have in common (the outbox, the ledger, the indexes) once instead of once each.
   */
  private queued<T>(op: () => T): Promise<T> {
    this.check()
    return new Promise<T>((resolve, reject) => {
      this.writeQueue.push({op, resolve: resolve as (result: unknown) => void, reject})
      if (this.writeQueue.length === 1) setImmediate(() => void this.writeQueued())
    })
  }

  private async writeQueued(): Promise<void> {
    const queued = this.writeQueue
    this.writeQueue = []
    const alone = (write: QueuedWrite) => this.run(() => this.writeTx(write.op)).then(write.resolve, write.reject)
    if (queued.length === 1) return alone(queued[0]!)
    let outcomes: WriteOutcome[]
    try {
      outcomes = await this.run(() => this.groupWriteTx(queued))
    } catch (error) {
      if (this.closed || error instanceof UserError) {
        for (const write of queued) write.reject(error)
        return
      }
      // The file failed under the group (I/O, full; a write's own refusals, a constraint or a row
      // too big, stay in its savepoint): each on its own, so that only what still fails fails.
      for (const write of queued) await alone(write)
      return
    }
    outcomes.forEach((outcome, i) => {
      if ('result' in outcome) queued[i]!.resolve(outcome.result)
      else queued[i]!.reject(outcome.error)
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      // Cheap, and keeps the planner's statistics fresh for whoever opens the file next.
      this.db.pragma('optimize')
    } catch {
      // Busy or read-only: not worth failing a close for.
    }
    this.db.close()
  }

  // ---------------------------------------------------------------------------------- plumbing

  private check(): void {
    if (this.closed) throw new Error(`The SQLite store ${this.path} is closed`)
  }

  /** Runs a synchronous database operation: busy retries, and file problems as UserErrors. */
  private async run<T>(op: () => T): Promise<T> {
    this.check()
    const started = Date.now()
    try {
      return await retryWhileBusy(op, this.busyTimeoutMs, () => this.closed)
    } catch (error) {
      if (this.closed && !(error instanceof UserError)) this.check()
      if (isBusy(error)) throw locked(this.path, Date.now() - started, false, error)
      if (isCorrupt(error)) throw corrupt(this.path, error)
      if (isUnwritable(error)) throw unwritable(this.path, messageOf(error), error)
      throw error
    }
  }

  /** A prepared statement for a dynamic query shape, prepared once per shape. */
  private statement(sql: string, mode: 'plain' | 'raw' | 'pluck' = 'plain'): Statement {
    const key = `${mode}\u0000${sql}`
    let stmt = this.statements.get(key)
    if (!stmt) {
      if (this.statements.size >= STATEMENT_CACHE_LIMIT) this.statements.clear()
      stmt = this.db.prepare(sql)
      if (mode === 'raw') stmt.raw()
      else if (mode === 'pluck') stmt.pluck()
      this.statements.set(key, stmt)
    }
    return stmt
  }

  // ---------------------------------------------------------------------------------- events

  /** An event and its outbox entry; false when its id is already in the log, or was archived. */
  private insertRow(row: EventRow): boolean {
    if (this.isArchived.get(row.id) !== undefined) return false
    const insert = this.insertEvent.run(row.id, row.type, row.ts, row.aggregate, row.correlation, row.json)
    if (insert.changes === 0) return false
    this.queueEvent.run(insert.lastInsertRowid, row.aggregate)
    return true
  }

  /** Whether a row not inserted holds this content (an archived id's content is not here: a duplicate). */
  private sameAsStored(row: EventRow): boolean {
    const stored = this.selectEnvelope.get(row.id) as string | undefined
    return stored === undefined || sameEnvelope(JSON.parse(stored), JSON.parse(row.json))
  }

  /**
   * Pages by seq (keyset), each page one `.all()`: a better-sqlite3 iterator left open across an
   * await would keep the connection busy for every other call. The first page fixes the upper seq,
   * so events appended while the cursor runs are not seen (as in the in-process store).
   */
  private async *query(query: EventQuery): AsyncGenerator<EventEnvelope> {
    this.check()
    const {where, params} = eventWhere(query, true)
    const desc = query.order === 'desc'
    let remaining = query.limit ?? Number.POSITIVE_INFINITY
    if (!(remaining > 0)) return
    const sql =
      `SELECT seq, envelope FROM events WHERE ${where} AND ` +
      (desc ? 'seq < ? ORDER BY seq DESC LIMIT ?' : 'seq > ? AND seq <= ? ORDER BY seq LIMIT ?')
    const page = this.statement(sql, 'raw')
    const max = await this.run(() => this.maxSeq.get() as number)
    let cursor = desc ? max + 1 : 0
    while (remaining > 0) {
      const size = Math.min(this.chunkSize, remaining)
      const rows = await this.run(() => (desc ? page.all(...params, cursor, size) : page.all(...params, cursor, max, size)) as Array<[number, string]>)
      for (const [, json] of rows) yield JSON.parse(json) as EventEnvelope
      remaining -= rows.length
      if (rows.length < size) return
      cursor = rows[rows.length - 1][0]
      await yieldToLoop()
    }
  }

  /** Published events by seq, a page per `.all()` (as query() pages), up to the seq at the start. */
  private async *published(sinceMs: number): AsyncGenerator<PublishedEvent> {
    this.check()
    const page = this.statement(
      'SELECT p.seq, e.envelope, p.at FROM published p JOIN events e ON e.seq = p.seq WHERE p.at >= ? AND p.seq > ? AND p.seq <= ? ORDER BY p.seq LIMIT ?',
      'raw',
    )
    const max = await this.run(() => this.maxSeq.get() as number)
    let cursor = 0
    for (;;) {
      const rows = await this.run(() => page.all(sinceMs, cursor, max, this.chunkSize) as Array<[number, string, number]>)
      for (const [, json, at] of rows) yield {event: JSON.parse(json) as EventEnvelope, publishedAt: at}
      if (rows.length < this.chunkSize) return
      cursor = rows[rows.length - 1][0]
      await yieldToLoop()
    }
  }

  private count(query: EventQuery): number {
    const {where, params} = eventWhere(query, false)
    // SQLite reads a negative LIMIT as "no limit".
    if (query.limit !== undefined && !(query.limit > 0)) return 0
    if (query.limit === undefined) return this.statement(`SELECT count(*) FROM events WHERE ${where}`, 'pluck').get(...params) as number
    return this.statement(`SELECT count(*) FROM (SELECT 1 FROM events WHERE ${where} LIMIT ?)`, 'pluck').get(...params, query.limit) as number
  }

  // ----------------------------------------------------------------------------- projections

  /** Inside a write transaction: one document, read-modify-write. */
  private writeOne(collection: string, id: string, update: ProjectionUpdate, eventId: string | null): boolean {
    const staged = new Map<string, StagedDoc>()
    const applied = this.stage(staged, collection, id, update, eventId)
    this.flush(staged)
    return applied
  }

  /** Applies one write to the staged copy of its document (loaded on first use); false when guarded. */
  private stage(staged: Map<string, StagedDoc>, collection: string, id: string, update: ProjectionUpdate, eventId: string | null): boolean {
    const key = `${collection}\u0000${id}`
    let entry = staged.get(key)
    if (!entry) {
      const row = this.selectProjection.get(collection, id) as [string, unknown] | undefined
      // Parsed here, the document is the draft's own: changed in place, never copied.
      entry = row
        ? {collection, id, exists: true, draft: new DocDraft(JSON.parse(row[0]) as Doc, {owned: true}), applied: appliedList(row[1]), dirty: false}
        : {collection, id, exists: false, draft: new DocDraft(null, {owned: true}), applied: NO_APPLIED, dirty: false}
      staged.set(key, entry)
    }
    const print = eventId === null ? null : this.fingerprintOf(eventId)
    if (print && holds(entry.applied, print)) return false
    entry.draft.apply(update)
    entry.draft.doc!._id = id
    entry.dirty = true
    // After applyUpdate: an update that throws must not count as applied.
    if (print) entry.applied = withApplied(entry.applied, print, APPLIED_LIMIT)
    return true
  }

  /** Inside a write transaction: refuses the unit (StaleReadError) when a document moved on. */
  private checkVersions(expect: NonNullable<StoreWrites['expect']>): void {
    let stale: Array<{collection: string; id: string; expected: number; found: number}> | null = null
    for (const {collection, id, version} of expect) {
      const found = (this.selectVersion.get(collection, id) as number | undefined) ?? 0
      if (found !== version) (stale ??= []).push({collection, id, expected: version, found})
    }
    if (stale) throw new StaleReadError(stale)
  }

  /** An event's guard is read before its handler writes and again for each document it writes: one hash. */
  private fingerprintOf(eventId: string): Fingerprint {
    if (this.lastPrint?.eventId !== eventId) this.lastPrint = {eventId, print: fingerprint(eventId)}
    return this.lastPrint.print
  }

  /** Every staged document gets one version more, changed or not (a guard may have skipped it). */
  private flush(staged: Map<string, StagedDoc>): void {
    for (const entry of staged.values()) {
      if (!entry.dirty) {
        if (entry.exists) this.bumpVersion.run(entry.collection, entry.id)
        continue
      }
      const json = JSON.stringify(entry.draft.doc)
      // Derivable from the list, and still written: a tektree of schema 4 that has the file open
      // reads it.
      const count = appliedCount(entry.applied)
      if (entry.exists) this.updateProjection.run(json, entry.applied, count, entry.collection, entry.id)
      else this.insertProjection.run(entry.collection, entry.id, json, entry.applied, count)
    }
  }

  /**
   * Equality filters are checked in JS (matchesFilter, the reference semantics) over the collection's
   * documents: projections are read by id on the hot paths, find() serves operators and views. An
   * `_id` filter reads one row. The scan is synchronous, so it is one consistent read.
   */
  private find(
    collection: string,
    filter?: Record<string, unknown>,
    options: {limit?: number; sort?: {field: string; order: 'asc' | 'desc'}} = {},
  ): ProjectionDoc[] {
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    if (!(limit > 0)) return []
    const matched: ProjectionDoc[] = []
    this.scanDocs(collection, filter, (doc) => {
      matched.push(doc)
      return options.sort !== undefined || matched.length < limit
    })
    if (options.sort) {
      const {field, order} = options.sort
      const sign = order === 'desc' ? -1 : 1
      matched.sort((a, b) => sign * compareValues(getPath(a, field), getPath(b, field)) || compareValues(a._id, b._id))
    }
    return matched.length > limit ? matched.slice(0, limit) : matched
  }

  /** Calls `take` with each matching document until it returns false. */
  private scanDocs(collection: string, filter: Record<string, unknown> | undefined, take: (doc: ProjectionDoc) => boolean): void {
    for (const path of Object.keys(filter ?? {})) {
      if (path.startsWith('$')) throw new Error(`Projection filters are equality only: "${path}" is not a field`)
    }
    const byId = filter?._id
    if (typeof byId === 'string') {
      const json = this.selectDoc.get(collection, byId) as string | undefined
      if (json === undefined) return
      const doc = JSON.parse(json) as ProjectionDoc
      if (matchesFilter(doc, filter)) take(doc)
      return
    }
    for (const json of this.selectDocs.iterate(collection) as IterableIterator<string>) {
      const doc = JSON.parse(json) as ProjectionDoc
      // Breaking out of for...of closes the statement.
      if (matchesFilter(doc, filter) && !take(doc)) break
    }
  }
}

// ---------------------------------------------------------------------------------- helpers

/** SQLite refused to read or write (busy, I/O, full, corrupt...), as opposed to a unit's own error. */
function isSqliteFailure(error: unknown): boolean {
  return error instanceof Database.SqliteError && !String(error.code).startsWith('SQLITE_CONSTRAINT') && error.code !== 'SQLITE_TOOBIG'
}

/** A better-sqlite3 transaction run as BEGIN IMMEDIATE. */
function immediate<F extends (...args: never[]) => unknown>(db: Db, fn: F): F {
  const tx = db.transaction(fn as unknown as (...args: unknown[]) => unknown)
  return ((...args: unknown[]) => tx.immediate(...args)) as unknown as F
}

function eventRow(event: EventEnvelope): EventRow {
  const ts = Date.parse(event.timestamp)
  if (Number.isNaN(ts)) throw new Error(`Event ${event.event_id} has an invalid timestamp "${event.timestamp}"`)
  const aggregate = event.metadata?.aggregate_id
  return {
    id: event.event_id,
    type: event.event_type,
    ts,
    aggregate: typeof aggregate === 'string' ? aggregate : null,
    correlation: typeof event.correlation_id === 'string' ? event.correlation_id : null,
    json: JSON.stringify(event),
  }
}

function toMs(value: string | number): number {
  const ms = typeof value === 'number' ? value : Date.parse(value)
  if (Number.isNaN(ms)) throw new Error(`Invalid time bound "${value}"`)
  return ms
}

/**
 * The WHERE clause of an event query (never empty: "1" when nothing filters). Type globs become
 * `event_type REGEXP <glob.ts pattern>`, behind an index range on the glob's literal prefix.
 *
 * `paged`: for query(), which pages in seq order, only equality terms may use an index (an
 * (x, seq) index then yields rows already in seq order). A range or an OR of types on an index
 * would make SQLite sort every match for every page, so those terms are written `+column`, which
 * keeps them off the index: the page then streams in seq order and stops at its LIMIT.
 */
function eventWhere(query: EventQuery, paged: boolean): {where: string; params: unknown[]} {
  const terms: string[] = []
  const params: unknown[] = []
  const noIndex = paged ? '+' : ''
  const types = query.types ?? []
  if (types.length > 0) {
    const exact: string[] = []
    const globs: string[] = []
    for (const type of types) {
      if (type.trim() === '') throw new Error('An event type glob cannot be empty')
      if (/[*?]/.test(type)) globs.push(type)
      else exact.push(type.trim())
    }
    if (exact.length === 1 && globs.length === 0) {
      terms.push('event_type = ?')
      params.push(exact[0])
    } else {
      const alternatives: string[] = []
      if (exact.length > 0) {
        alternatives.push(`${noIndex}event_type IN (${exact.map(() => '?').join(', ')})`)
        params.push(...exact)
      }
      for (const glob of globs) {
        const prefix = literalPrefix(glob)
        if (prefix === '') {
          alternatives.push(`${noIndex}event_type REGEXP ?`)
          params.push(typeGlobToRegExpSource(glob))
        } else {
          alternatives.push(`(${noIndex}event_type >= ? AND ${noIndex}event_type < ? AND event_type REGEXP ?)`)
          params.push(prefix, prefixEnd(prefix), typeGlobToRegExpSource(glob))
        }
      }
      terms.push(`(${alternatives.join(' OR ')})`)
    }
  }
  if (query.from !== undefined) {
    terms.push(`${noIndex}ts_ms >= ?`)
    params.push(toMs(query.from))
  }
  if (query.to !== undefined) {
    terms.push(`${noIndex}ts_ms < ?`)
    params.push(toMs(query.to))
  }
  if (query.aggregateId !== undefined) {
    terms.push('aggregate_id = ?')
    params.push(query.aggregateId)
  }
  if (query.correlationId !== undefined) {
    terms.push('correlation_id = ?')
    params.push(query.correlationId)
  }
  return {where: terms.length === 0 ? '1' : terms.join(' AND '), params}
}

/** The glob's text before its first wildcard (what every match starts with). */
function literalPrefix(glob: string): string {
  const trimmed = glob.trim()
  const wildcard = trimmed.search(/[*?]/)
  return wildcard < 0 ? trimmed : trimmed.slice(0, wildcard)
}

/** The smallest string greater than every string starting with `prefix` (BINARY collation). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

function dlqWhere(filter: {group?: string; type?: string}): {where: string; params: unknown[]} {
  const terms: string[] = []
  const params: unknown[] = []
  if (filter.group !== undefined) {
    terms.push('group_name = ?')
    params.push(filter.group)
  }
  if (filter.type !== undefined) {
    terms.push('event_type = ?')
    params.push(filter.type)
  }
  return {where: terms.length === 0 ? '' : ` WHERE ${terms.join(' AND ')}`, params}
}

function rejectBookkeeping(update: ProjectionUpdate): void {
  for (const operator of Object.values(update)) {
    for (const path of Object.keys(operator ?? {})) {
      if (path === APPLIED_FIELD || path.startsWith(`${APPLIED_FIELD}.`)) throw new Error(`"${APPLIED_FIELD}" is reserved for applyOnce bookkeeping`)
    }
  }
}
