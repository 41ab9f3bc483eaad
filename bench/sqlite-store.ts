/**
 * The SQLite store's hot paths on a temp file (WAL, synchronous=NORMAL), one process:
 *   append (batches of 1 and of 100), outbox claim + markPublished (100 at a time), applyOnce on one
 *   hot document and on many, commit of a consumer-sized unit, the ledger's completed(), query.
 * Prints a table on stderr and one JSON result line on stdout. No asserts: it measures.
 *
 *   npm run bench:one -- bench/sqlite-store.ts [--events 20000] [--path DIR]
 */
import {randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import type {EventEnvelope} from '../src/core/envelope.js'
import {createSqliteStore} from '../src/adapters/sqlite/index.js'

const {values} = parseArgs({options: {events: {type: 'string', default: '20000'}, path: {type: 'string'}}})
const n = Number(values.events)
const dir = mkdtempSync(path.join(values.path ?? tmpdir(), 'tektree-sqlite-bench-'))

function envelope(): EventEnvelope {
  const id = randomUUID()
  const user = `user-${Math.floor(Math.random() * 1_000)}`
  return {
    event_id: id,
    event_type: 'knowledge.question.posted',
    event_version: '1.0.0',
    timestamp: new Date().toISOString(),
    source_service: 'question-service',
    payload: {question_id: `q-${id}`, author_id: user, title: 'How do I shard a leaderboard?', tags: ['redis', 'scaling'], bounty: 50},
    trace_id: randomUUID().replace(/-/g, ''),
    correlation_id: randomUUID(),
    causation_id: null,
    producer_id: 'bench-1',
    metadata: {aggregate_id: `q-${id}`, aggregate_type: 'question', tenant: 't1'},
  }
}

const rows: Array<{what: string; ops: number; unit: string; perSecond: number}> = []
async function measure(what: string, unit: string, ops: number, fn: () => Promise<void>): Promise<void> {
  const started = performance.now()
  await fn()
  const seconds = (performance.now() - started) / 1_000
  rows.push({what, ops, unit, perSecond: Math.round(ops / seconds)})
}

const store = await createSqliteStore({path: path.join(dir, 'store.db')})
try {
  const single = Array.from({length: Math.min(n, 5_000)}, envelope)
  await measure('append, 1 event per call', 'events', single.length, async () => {
    for (const e of single) await store.events.append([e])
  })
  const batched = Array.from({length: n}, envelope)
  await measure('append, 100 events per call', 'events', n, async () => {
    for (let i = 0; i < n; i += 100) await store.events.append(batched.slice(i, i + 100))
  })
  const pending = await store.outbox.pending()
  await measure('outbox claim + markPublished, 100 per round', 'events', pending, async () => {
    for (;;) {
      const got = await store.outbox.claim({owner: 'bench', limit: 100, leaseMs: 30_000})
      if (got.length === 0) break
      await store.outbox.markPublished(got.map((e) => e.event_id))
    }
  })
  await measure('query, all events streamed', 'events', single.length + n, async () => {
    let seen = 0
    for await (const _ of store.events.query({})) seen++
    if (seen !== single.length + n) throw new Error(`query saw ${seen}`)
  })
  const applies = Math.min(n, 10_000)
  await measure('applyOnce, one hot document (full 256-id guard)', 'writes', applies, async () => {
    for (let i = 0; i < applies; i++) await store.projections.applyOnce('bench', 'hot', `e-${i}`, {$inc: {n: 1}, $max: {last: i}})
  })
  await measure('applyOnce, 1,000 documents', 'writes', applies, async () => {
    for (let i = 0; i < applies; i++) {
      await store.projections.applyOnce('bench', `user-${i % 1_000}`, `e-${i}`, {$inc: {xp: 5}, $push: {recent: {each: [i], slice: -20}}})
    }
  })
  // A consumer batch: 32 handled events, each one projection write, one derived event in four, the marks.
  const units = Math.max(1, Math.floor(applies / 32))
  await measure('commit, units of 32 writes + 8 events + 32 handled records', 'units', units, async () => {
    for (let u = 0; u < units; u++) {
      const ids = Array.from({length: 32}, (_, i) => `c-${u}-${i}`)
      await store.commit({
        projections: ids.map((id, i) => ({collection: 'bench', id: `user-${(u * 32 + i) % 1_000}`, update: {$inc: {xp: 1}}, eventId: id})),
        events: Array.from({length: 8}, envelope),
        handled: ids.map((id) => ({group: 'bench', event_id: id, handled_at: new Date().toISOString(), attempts: 1})),
      })
    }
  })
  // The group's ledger, read once per fetched batch: half of each batch's ids were handled above.
  await measure('handled.completed, 64 ids per call', 'ids', units * 64, async () => {
    for (let u = 0; u < units; u++) {
      const held = await store.handled.completed('bench', Array.from({length: 64}, (_, i) => `c-${u}-${i}`))
      if (held.size !== 32) throw new Error(`the ledger held ${held.size} of 32`)
    }
  })
} finally {
  await store.close()
  rmSync(dir, {recursive: true, force: true})
}

const width = Math.max(...rows.map((r) => r.what.length))
for (const r of rows) process.stderr.write(`${r.what.padEnd(width)}  ${String(r.perSecond).padStart(9)} ${r.unit}/s  (${r.ops})\n`)
process.stdout.write(`${JSON.stringify({bench: 'sqlite-store', node: process.version, results: rows})}\n`)
