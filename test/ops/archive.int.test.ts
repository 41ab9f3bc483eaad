/**
 * Archive on real redis-server with the SQLite store (issue 13, "Done when": archive -> restore
 * byte for byte with the manifest checked). A simulated year and more of TekTree traffic (the
 * services running, on a virtual clock from 2025-01-01 at 90 days a second) is archived as
 * of a later date, with the run stopped once between a file's manifest line and the removal of its
 * events (a hook that throws, as kill -9 would stop it there) and run again.
 */
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import {Redis} from 'ioredis'
import {describe, expect, inject, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {VirtualClock} from '../../src/core/clock.js'
import {queryArchive, restoreArchive, runArchive, verifyArchive} from '../../src/ops/archive/index.js'
import {verifyProjections} from '../../src/services/verify.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {readManifest} from '../../src/ops/archive/files.js'
import {runSimulation} from '../../src/simulator/run.js'
import {parseScenario} from '../../src/simulator/scenario.js'

const redisUrl = inject('redisUrl')
const DAY = 86_400_000
const START = Date.UTC(2025, 0, 1)

/** The store's own bytes: event_id -> the envelope text in the SQLite file. */
function storedBytes(file: string): Map<string, string> {
  const db = new Database(file, {readonly: true})
  try {
    return new Map(db.prepare('SELECT event_id, envelope FROM events').raw().all() as Array<[string, string]>)
  } finally {
    db.close()
  }
}

describe.skipIf(!redisUrl)(`archive (${redisUrl ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  it('a simulated year: exactly the expired events leave the store; query, verify (and a changed byte), a resumed crash, restore byte for byte, twice', {timeout: 120_000}, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-int-'))
    const busUrl = `${redisUrl}/14`
    const admin = new Redis(busUrl)
    await admin.flushdb()
    admin.disconnect()
    const storeFile = path.join(dir, 'store.db')
    const clock = new VirtualClock({speed: 90 * DAY / 1000, start: START})
    const runtime = await openRuntime({busUrl, storeUrl: `sqlite:${storeFile}`, ephemeral: true, clock, log: () => undefined})
    try {
      const catalog = await loadCatalog()
      const scenario = parseScenario(
        {name: 'archive-year', seed: 13, population: {users: 60, areas: 3}, rate: {shape: 'step', stages: [{duration: '5s', target: 400}]}, events: 2000, clock: {speed: 90 * DAY / 1000}, services: 'all'},
        'archive-year.yaml',
      )
      const report = await runSimulation({scenario, runtime})
      expect(report.drained).toBe(true)
      const end = clock.now()
      expect(end - START).toBeGreaterThan(365 * DAY)

      // The services' events follow the virtual clock (a year and more from 2025); the simulator's
      // own drafts carry the wall clock (the publisher's default). A year and a fortnight past both:
      // realtime, notification and social events have expired, gamification's older part, no payment.
      const asOf = Math.max(end, Date.now()) + 380 * DAY
      const before = storedBytes(storeFile)
      const all = [...before.values()].map((json) => JSON.parse(json) as {event_id: string; event_type: string; timestamp: string})
      const expired = new Set(
        all
          .filter((e) => {
            const maxAge = catalog.get(e.event_type)?.retention?.maxAgeMs
            return typeof maxAge === 'number' && Date.parse(e.timestamp) < asOf - maxAge
          })
          .map((e) => e.event_id),
      )
      const types = new Set(all.filter((e) => expired.has(e.event_id)).map((e) => e.event_type.split('.')[0]))
      expect([...types].sort()).toEqual(expect.arrayContaining(['gamification', 'notification', 'realtime', 'social']))
      expect(types.has('payment')).toBe(false)
      expect(await runtime.store.outbox.pending()).toBe(0)
      const oracle = (archivedDir?: string) =>
        verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog, archived: archivedDir ? events(queryArchive({dir: archivedDir})) : undefined})
      expect((await oracle()).differences).toEqual([])
      const handledKey = (r: {event_id: string; group: string}) => `${r.event_id}/${r.group}`
      const handledBefore = (await runtime.store.handled.of([...expired])).sort((a, b) => handledKey(a).localeCompare(handledKey(b)))
      expect(handledBefore.length).toBeGreaterThan(0)

      // Stopped after the third file's manifest line, before its events left the store; then run again.
      const archiveDir = path.join(dir, 'archive')
      let files = 0
      const crash = () => {
        if (++files === 3) throw new Error('killed')
      }
      await expect(runArchive({store: runtime.store, catalog, dir: archiveDir, asOf, fileEvents: 100, hooks: {beforeDelete: crash}})).rejects.toThrow('killed')
      const resumed = await runArchive({store: runtime.store, catalog, dir: archiveDir, asOf, fileEvents: 100})
      expect(resumed.recovered.completed).toHaveLength(1)

      const after = storedBytes(storeFile)
      expect(new Set(before.keys()).size - after.size).toBe(expired.size)
      for (const id of after.keys()) expect(expired.has(id)).toBe(false)

      // Trace stays honest: the handled records left with their events (they are in the archive).
      expect(await runtime.store.handled.of([...expired])).toEqual([])
      const manifest = readManifest(archiveDir)
      expect(manifest.files.reduce((n, f) => n + f.count, 0)).toBe(expired.size)
      const archived = await collectIds(queryArchive({dir: archiveDir}))
      expect(new Set(archived)).toEqual(expired)
      expect(archived).toHaveLength(expired.size)
      // By user: every archived event naming one user, and only those.
      const someone = [...expired].map((id) => JSON.parse(before.get(id)!)).find((e) => typeof e.payload.user_id === 'string').payload.user_id as string
      const ofUser = await collectIds(queryArchive({dir: archiveDir, filter: {userId: someone}}))
      expect(ofUser.length).toBeGreaterThan(0)
      for (const id of ofUser) expect(before.get(id)).toContain(someone)

      // The projections keep the archived events' effects: the oracle counts the archive's events
      // (and without them finds those effects unexplained).
      const withArchive = await oracle(archiveDir)
      expect(withArchive.differences).toEqual([])
      expect(withArchive.archived).toBe(expired.size)
      expect((await oracle()).differences.length).toBeGreaterThan(0)

      const verified = await verifyArchive(archiveDir)
      expect(verified).toMatchObject({ok: true, events: expired.size, pending: 0})
      const victim = path.join(archiveDir, manifest.files[1].file)
      const original = readFileSync(victim)
      const changed = Buffer.from(original)
      changed[Math.floor(changed.length / 2)] ^= 0x01
      writeFileSync(victim, changed)
      const bad = await verifyArchive(archiveDir)
      expect(bad.ok).toBe(false)
      expect(new Set(bad.problems.map((p) => p.file))).toEqual(new Set([manifest.files[1].file]))
      expect(bad.problems[0].problem).toMatch(/checksum mismatch/)
      writeFileSync(victim, original)

      const restored = await restoreArchive({store: runtime.store, catalog, dir: archiveDir})
      expect(restored).toMatchObject({read: expired.size, inserted: expired.size, conflicts: []})
      expect(storedBytes(storeFile)).toEqual(before)
      expect(await runtime.store.outbox.pending()).toBe(0)
      expect((await runtime.store.handled.of([...expired])).sort((a, b) => handledKey(a).localeCompare(handledKey(b)))).toEqual(handledBefore)
      const again = await restoreArchive({store: runtime.store, catalog, dir: archiveDir})
      expect(again).toMatchObject({inserted: 0, duplicates: expired.size})
      expect(storedBytes(storeFile)).toEqual(before)
      // Restored and still archived: each event counts once.
      const both = await oracle(archiveDir)
      expect(both.differences).toEqual([])
      expect(both.events).toBe(before.size)
    } finally {
      await runtime.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

async function* events(archived: AsyncIterable<{record: {event: EventEnvelope}}>): AsyncGenerator<EventEnvelope> {
  for await (const {record} of archived) yield record.event
}

async function collectIds(events: AsyncIterable<{record: {event: {event_id: string}}}>): Promise<string[]> {
  const out: string[] = []
  for await (const {record} of events) out.push(record.event.event_id)
  return out
}
