/**
 * One process of the SQLite store's multi-process tests (run with `node --import tsx`). It prints
 * `ready`, waits for a line on stdin (so that every child starts its work at the same moment), opens
 * the store, does the work named by CHILD_MODE, prints one JSON line with what it saw (and when it worked) and
 * exits 0.
 * Any error (a SQLITE_BUSY included) is printed as `{"error": ...}` and exits 1. Configuration comes
 * from the environment (see the reads below); the work is bounded by CHILD_MAX_RUN_MS.
 */
import {createSqliteStore, type SqliteStore} from '../../src/adapters/sqlite/index.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {CommitConflictError} from '../../src/core/errors.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback)

const file = env('CHILD_DB')
const mode = env('CHILD_MODE')
const name = env('CHILD_NAME')
const deadline = Date.now() + num('CHILD_MAX_RUN_MS', 30_000)

function event(id: string): EventEnvelope {
  return {
    event_id: id,
    event_type: 'knowledge.question.posted',
    event_version: '1.0.0',
    timestamp: '2025-01-01T00:00:00.000Z',
    source_service: 'sqlite-child',
    payload: {question_id: id},
    trace_id: 'trace',
    correlation_id: `corr-${id}`,
    causation_id: null,
    // A shared id is the same event appended by every child (a duplicate, not an id reused for
    // other content, which append reports as a conflict).
    producer_id: id.startsWith('shared-') ? 'sqlite-children' : name,
    metadata: {aggregate_id: id},
  }
}

function checkDeadline(): void {
  if (Date.now() > deadline) throw new Error(`${name} ran past CHILD_MAX_RUN_MS`)
}

/**
 * Halfway through its work each child waits here until all CHILD_COUNT children have arrived (a
 * counter in the store itself), so their second halves surely run at the same time, however the OS
 * happened to schedule the starts.
 */
async function barrier(store: SqliteStore, label: string): Promise<void> {
  const count = num('CHILD_COUNT', 1)
  await store.projections.update('barrier', label, {$inc: {n: 1}})
  while (((await store.projections.get('barrier', label))?.n as number) < count) {
    checkDeadline()
    await new Promise((done) => setTimeout(done, 1))
  }
}

async function main(): Promise<unknown> {
  const store = await createSqliteStore({path: file})
  try {
    switch (mode) {
      case 'open':
        return {migrationsRun: store.migrationsRun}

      case 'append-claim': {
        // Appends its events (ids shared-* are appended by every child), then drains the outbox
        // with the others until nothing is pending.
        const total = num('CHILD_EVENTS', 500)
        const shared = num('CHILD_SHARED', 50)
        const batch = num('CHILD_BATCH', 25)
        const ids = Array.from({length: total}, (_, k) => (k < shared ? `shared-${k}` : `${name}-${k}`))
        let inserted = 0
        const duplicates: string[] = []
        for (let i = 0; i < ids.length; i += batch) {
          checkDeadline()
          if (i === Math.floor(ids.length / batch / 2) * batch) await barrier(store, mode)
          const result = await store.events.append(ids.slice(i, i + batch).map(event))
          inserted += result.inserted
          duplicates.push(...result.duplicates)
        }
        const claimed: string[] = []
        while ((await store.outbox.pending()) > 0) {
          checkDeadline()
          const got = await store.outbox.claim({owner: name, limit: num('CHILD_CLAIM_LIMIT', 20), leaseMs: 60_000})
          claimed.push(...got.map((e) => e.event_id))
          if (got.length > 0) await store.outbox.markPublished(got.map((e) => e.event_id))
          else await new Promise((done) => setTimeout(done, 2))
        }
        return {inserted, duplicates, claimed}
      }

      case 'apply': {
        // Distinct event ids on one document; beside it, the same ids r-0.. on a second document
        // from every child (one event delivered to each process): each must apply once overall. That
        // document sees fewer than APPLIED_LIMIT ids, so its guard never forgets one.
        const total = num('CHILD_APPLIES', 250)
        const redelivered = num('CHILD_REDELIVERED', 30)
        let applied = 0
        let sharedApplied = 0
        for (let k = 0; k < total; k++) {
          checkDeadline()
          if (k === Math.floor(total / 2)) await barrier(store, mode)
          if (await store.projections.applyOnce('hot', 'doc', `${name}-${k}`, {$inc: {n: 1}, $max: {last: k}})) applied++
          if (k < redelivered && (await store.projections.applyOnce('hot', 'shared', `r-${k}`, {$inc: {n: 1}}))) sharedApplied++
        }
        return {applied, sharedApplied}
      }

      case 'commit': {
        // Units of work: its own (unit-<name>-k) and shared ones (unit-shared-k) that every child
        // commits too, as redelivered batches would be.
        const own = num('CHILD_UNITS', 100)
        const shared = num('CHILD_SHARED', 30)
        const units = [
          ...Array.from({length: own}, (_, k) => `unit-${name}-${k}`),
          ...Array.from({length: shared}, (_, k) => `unit-shared-${k}`),
        ]
        let inserted = 0
        let conflicts = 0
        for (const [i, unit] of units.entries()) {
          checkDeadline()
          if (i === Math.floor(units.length / 2)) await barrier(store, mode)
          const unitOfWork = {
            projections: [
              {collection: 'units', id: 'total', update: {$inc: {n: 1}}, eventId: unit},
              {collection: 'units', id: unit, update: {$inc: {n: 1}, $set: {by: name}}, eventId: unit},
              {collection: 'units', id: 'total', update: {$inc: {n: 1}}, eventId: unit}, // same unit again: skipped
            ],
            events: [event(`derived-${unit}`)],
            handled: [{group: 'g', event_id: unit, handled_at: new Date().toISOString(), attempts: 1}],
          }
          // Another process committed a shared unit first: refused whole, as the consumer's ledger sees it.
          const result = await store.commit(unitOfWork).catch((error: unknown) => {
            if (error instanceof CommitConflictError) return null
            throw error
          })
          if (result) inserted += result.inserted
          else conflicts++
        }
        return {inserted, conflicts, units: units.length}
      }

      default:
        throw new Error(`unknown CHILD_MODE ${mode}`)
    }
  } finally {
    await store.close()
  }
}

process.stdout.write('ready\n')
process.stdin.once('data', () => {
  process.stdin.pause()
  const startedAt = Date.now()
  main().then(
    (result) => {
      process.stdout.write(`${JSON.stringify({result, startedAt, finishedAt: Date.now()})}\n`)
      process.exit(0)
    },
    (error: unknown) => {
      const e = error as {code?: unknown; message?: unknown}
      process.stdout.write(`${JSON.stringify({error: {code: e?.code ?? null, message: String(e?.message ?? error)}})}\n`)
      process.exit(1)
    },
  )
})
