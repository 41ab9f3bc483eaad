/**
 * The archive operations on one store, as a suite every store runs (test/ops/archive.test.ts: the
 * in-process store and a SQLite file; test/ops/archive-mongo.int.test.ts: MongoDB). Run moves
 * exactly the published events past their catalog retention into gzip NDJSON files; query finds
 * them through the index; verify passes; restore brings them back byte for byte (as published,
 * never into the outbox), twice the same; a run stopped at each step of a file (a hook that throws
 * there, as kill -9 would stop it) resumes with nothing lost and nothing archived twice.
 */
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, beforeAll, describe, expect, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import type {Store} from '../../src/core/ports.js'
import {queryArchive, restoreArchive, runArchive, verifyArchive, type ArchiveScan} from '../../src/ops/archive/index.js'
import {readManifest} from '../../src/ops/archive/files.js'
import {makeEvent} from '../contracts/helpers.js'

const DAY = 86_400_000
export const AS_OF = Date.UTC(2026, 0, 1)
export const ago = (days: number) => new Date(AS_OF - days * DAY).toISOString()

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

export const bytesById = (events: readonly EventEnvelope[]) => new Map(events.map((e) => [e.event_id, JSON.stringify(e)]))

/** Events of several retention categories on both sides of their cutoff, published, some handled. */
export async function seed(store: Store) {
  const user = 'u-1'
  const make = (type: string, days: number, payload: Record<string, unknown>, aggregateId: string) =>
    makeEvent({event_type: type, timestamp: ago(days), payload, metadata: {aggregate_id: aggregateId}})
  const expired = [
    make('realtime.user.joined', 8, {user_id: user, room: 'r1'}, user), // 7 days
    make('notification.sent', 31, {user_id: 'u-2', channel: 'email'}, 'u-2'), // 30 days
    make('social.content.liked', 400, {content_id: 'c-1', user_id: user}, 'c-1'), // 1 year
    make('social.content.liked', 366, {content_id: 'c-2', user_id: 'u-3'}, 'c-2'),
    make('gamification.xp.earned', 800, {user_id: user, amount: 2}, user), // 2 years
  ]
  const kept = [
    make('realtime.user.joined', 6, {user_id: user, room: 'r2'}, user),
    make('social.content.liked', 300, {content_id: 'c-3', user_id: user}, 'c-3'),
    make('gamification.xp.earned', 700, {user_id: user, amount: 5}, user),
    make('payment.invoice.paid', 2000, {user_id: user, amount: 9}, user), // 7 years
    make('user.registered', 5000, {user_id: user}, user), // indefinite
  ]
  await store.events.append([...expired, ...kept])
  await store.outbox.markPublished([...expired, ...kept].map((e) => e.event_id))
  // Past retention, not yet published: it stays until the relay has sent it.
  const unpublished = make('notification.sent', 40, {user_id: 'u-4'}, 'u-4')
  await store.events.append([unpublished])
  await store.commit({handled: [{group: 'gamification', event_id: expired[2].event_id, handled_at: ago(400), attempts: 1}]})
  return {expired, kept, unpublished}
}

export function archiveSuite(name: string, open: () => Promise<{store: Store; cleanup?: () => Promise<void>}>): void {
  describe(`archive on the ${name}`, () => {
    let catalog: Catalog
    const cleanups: Array<() => Promise<void>> = []
    beforeAll(async () => {
      catalog = await loadCatalog()
    })
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    })
    async function fresh(): Promise<Store> {
      const {store, cleanup} = await open()
      cleanups.push(async () => {
        await store.close()
        await cleanup?.()
      })
      return store
    }
    function tempDir(): string {
      const dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-'))
      cleanups.push(async () => rmSync(dir, {recursive: true, force: true}))
      return dir
    }

    it('run moves exactly the published events past retention; query finds them; verify passes; restore gives them back byte for byte, twice the same', async () => {
      const store = await fresh()
      const {expired, kept, unpublished} = await seed(store)
      const before = bytesById(await collect(store.events.query({})))
      const dir = path.join(tempDir(), 'archive')

      const result = await runArchive({store, catalog, dir, asOf: AS_OF})
      expect(result.archived).toBe(expired.length)
      const left = await collect(store.events.query({}))
      expect(left.map((e) => e.event_id).sort()).toEqual([...kept, unpublished].map((e) => e.event_id).sort())
      expect(result.types.find((t) => t.type === 'notification.sent')).toMatchObject({archived: 1, unpublished: 1, retention: '1mo'})
      expect(result.kept.map((k) => k.category)).toEqual(['knowledge', 'user'])
      // The trace of an archived event leaves with it.
      expect(await store.handled.of([expired[2].event_id])).toEqual([])

      const archived = await collect(queryArchive({dir}))
      expect(archived.map((a) => a.record.event.event_id).sort()).toEqual(expired.map((e) => e.event_id).sort())
      expect(await verifyArchive(dir)).toMatchObject({ok: true, files: 4, events: 5, pending: 0, problems: []})

      const restored = await restoreArchive({store, catalog, dir})
      expect(restored).toMatchObject({read: 5, inserted: 5, duplicates: 0, conflicts: []})
      const after = bytesById(await collect(store.events.query({})))
      expect(after).toEqual(before)
      // Restored as published: nothing for the relay to send again.
      expect(await store.outbox.pending()).toBe(1)
      expect((await store.outbox.claim({owner: 'relay', limit: 100, leaseMs: 1000})).map((e) => e.event_id)).toEqual([unpublished.event_id])
      expect(await store.handled.of([expired[2].event_id])).toHaveLength(1)

      expect(await restoreArchive({store, catalog, dir})).toMatchObject({read: 5, inserted: 0, duplicates: 5})
      expect(bytesById(await collect(store.events.query({})))).toEqual(before)
    })

    it('--dry-run counts per type and writes nothing', async () => {
      const store = await fresh()
      await seed(store)
      const dir = path.join(tempDir(), 'archive')
      const result = await runArchive({store, catalog, dir, asOf: AS_OF, dryRun: true})
      expect(existsSync(dir)).toBe(false)
      expect(await store.events.count()).toBe(11)
      const past = Object.fromEntries(result.types.filter((t) => t.past > 0).map((t) => [t.type, t.past]))
      expect(past).toEqual({'realtime.user.joined': 1, 'notification.sent': 2, 'social.content.liked': 2, 'gamification.xp.earned': 1})
    })

    it('query goes through the index: by aggregate, user, type glob, time range, limit; files that cannot match are not read', async () => {
      const store = await fresh()
      const {expired} = await seed(store)
      const dir = path.join(tempDir(), 'archive')
      await runArchive({store, catalog, dir, asOf: AS_OF})
      const ids = async (filter: Parameters<typeof queryArchive>[0]['filter'], scan?: ArchiveScan, limit?: number) =>
        (await collect(queryArchive({dir, filter, scan, limit}))).map((a) => a.record.event.event_id).sort()
      const scan = {filesRead: 0, filesSkipped: 0}
      expect(await ids({aggregateId: 'c-1'}, scan)).toEqual([expired[2].event_id])
      expect(scan).toEqual({filesRead: 1, filesSkipped: 3})
      expect(await ids({userId: 'u-1'})).toEqual([expired[0], expired[2], expired[4]].map((e) => e.event_id).sort())
      expect(await ids({types: ['social.*']})).toEqual([expired[2], expired[3]].map((e) => e.event_id).sort())
      expect(await ids({from: Date.parse(ago(370)), to: Date.parse(ago(30))})).toEqual([expired[1], expired[3]].map((e) => e.event_id).sort())
      expect(await ids({}, undefined, 2)).toHaveLength(2)
      expect(await ids({userId: 'nobody'})).toEqual([])
    })

    it('restore by filter brings back only those', async () => {
      const store = await fresh()
      const {expired} = await seed(store)
      const dir = path.join(tempDir(), 'archive')
      await runArchive({store, catalog, dir, asOf: AS_OF})
      expect(await restoreArchive({store, catalog, dir, filter: {types: ['social.content.liked'], aggregateId: 'c-2'}})).toMatchObject({read: 1, inserted: 1})
      expect(await store.events.get(expired[3].event_id)).toEqual(expired[3])
      expect(await store.events.get(expired[2].event_id)).toBeNull()
    })

    describe.each([
      ['after the temp file is written, before its rename', 'beforeRename'],
      ['after the rename, before the manifest line', 'beforeManifest'],
      ['after the manifest line, before the events leave the store', 'beforeDelete'],
    ] as const)('a run stopped %s resumes: nothing lost, nothing archived twice, no file without its manifest line', (_when, hook) => {
      it('resumes', async () => {
        const store = await fresh()
        const {expired} = await seed(store)
        const before = bytesById(await collect(store.events.query({})))
        const dir = path.join(tempDir(), 'archive')
        let stopped = 0
        const crash = () => {
          // The second file: one file done before it, the rest after.
          if (++stopped === 2) throw new Error('killed')
        }
        await expect(runArchive({store, catalog, dir, asOf: AS_OF, hooks: {[hook]: crash}})).rejects.toThrow('killed')
        // Whatever the step, every expired event is in the store or in a verified, listed file.
        const listed = readManifest(dir).files.map((f) => f.file)
        const onDisk = readdirSync(dir, {recursive: true}).map(String).filter((f) => f.endsWith('.ndjson.gz'))
        if (hook === 'beforeManifest') expect(onDisk.length).toBe(listed.length + 1)
        else expect(onDisk.length).toBe(listed.length)

        const resumed = await runArchive({store, catalog, dir, asOf: AS_OF})
        const recovered = resumed.recovered
        if (hook === 'beforeRename') expect(recovered.removed_temps).toHaveLength(1)
        if (hook === 'beforeManifest') expect(recovered.adopted).toHaveLength(1)
        if (hook === 'beforeDelete') expect(recovered.completed).toHaveLength(1)

        const manifest = readManifest(dir)
        const archivedIds = (await collect(queryArchive({dir}))).map((a) => a.record.event.event_id)
        expect(archivedIds.sort()).toEqual(expired.map((e) => e.event_id).sort())
        // Nothing twice: the listed counts add up to the distinct events.
        expect(manifest.files.reduce((n, f) => n + f.count, 0)).toBe(expired.length)
        expect(manifest.files.every((f) => manifest.deleted.has(f.file))).toBe(true)
        expect(await verifyArchive(dir)).toMatchObject({ok: true, events: expired.length})
        for (const e of expired) expect(await store.events.get(e.event_id)).toBeNull()

        await restoreArchive({store, catalog, dir})
        expect(bytesById(await collect(store.events.query({})))).toEqual(before)
      })
    })
  })
}
