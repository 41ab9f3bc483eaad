/**
 * The Store contract: every adapter (in-process, MongoDB) runs this suite unchanged.
 *
 * Wiring an adapter:
 *   storeContract('MongoStore', async () => {
 *     const dbName = uniqueName('t')
 *     const store = await createMongoStore({url, dbName})
 *     return {store, cleanup: () => dropDatabase(dbName)}
 *   })
 *
 * The factory is called once per test and must return a store whose data no other test sees (its
 * own database / prefix): the outbox and count() are store-wide. `cleanup` runs after the test.
 *
 * Semantics pinned down here (beyond the doc comments of src/core/ports.ts):
 * - event type globs follow src/core/glob.ts ("knowledge.*" = the domain and everything below;
 *   `*` one segment; `**` any number); adapters may use typeGlobsToRegExpSource() for a $regex;
 * - query() orders by append order; `from` inclusive, `to` exclusive, on the envelope timestamp,
 *   given as an ISO string or ms; aggregateId matches metadata.aggregate_id;
 * - projection docs returned by get/find never show the applyOnce bookkeeping field `_applied`;
 * - find() equality on a dotted path ("author.id") addresses nested fields;
 * - $push with `slice` keeps the last -slice items (negative) or the first slice items (positive);
 *   $max/$min/$inc on a missing field set it; $addToSet adds one value unless an equal one is there;
 * - dlq.list/count filter `type` is the exact event type.
 */
import {describe, it, expect, beforeEach, afterEach} from 'vitest'
import type {EventEnvelope} from '../../src/core/envelope.js'
import type {Store} from '../../src/core/ports.js'
import {makeDlqRecord, makeEvent, uniqueName, until} from './helpers.js'

export type StoreFactory = () => Promise<{store: Store; cleanup?: () => Promise<void>}>

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

const ids = (events: EventEnvelope[]) => events.map((e) => e.event_id)
const T0 = Date.parse('2025-03-01T00:00:00.000Z')
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString()

export function storeContract(name: string, factory: StoreFactory): void {
  describe(name, () => {
    let store: Store
    let cleanup: (() => Promise<void>) | undefined

    beforeEach(async () => {
      const made = await factory()
      store = made.store
      cleanup = made.cleanup
    })

    afterEach(async () => {
      await store.close().catch(() => undefined)
      await cleanup?.()
    })

    it('has a kind', () => {
      expect(typeof store.kind).toBe('string')
      expect(store.kind.length).toBeGreaterThan(0)
    })

    // ------------------------------------------------------------------------------- events
    describe('events', () => {
      it('append is idempotent by event_id and reports duplicates', async () => {
        const a = makeEvent()
        const b = makeEvent()
        expect(await store.events.append([a, b])).toEqual({inserted: 2, duplicates: [], conflicts: []})
        const c = makeEvent()
        const result = await store.events.append([b, c, a])
        expect(result.inserted).toBe(1)
        expect([...result.duplicates].sort()).toEqual([a.event_id, b.event_id].sort())
        expect(await store.events.count()).toBe(3)
        expect(ids(await collect(store.events.query({})))).toEqual([a.event_id, b.event_id, c.event_id])
      })

      it('a duplicate inside one batch is inserted once', async () => {
        const a = makeEvent()
        const result = await store.events.append([a, {...a}])
        expect(result.inserted).toBe(1)
        expect(result.duplicates).toEqual([a.event_id])
        expect(await store.events.count()).toBe(1)
      })

      it('an event_id appended again with other content is a conflict, not a duplicate, and the first stays', async () => {
        const a = makeEvent({payload: {question_id: 'q1', score: 1}})
        const b = makeEvent()
        await store.events.append([a, b])
        // Same content with its keys in another order is still a duplicate (canonical comparison).
        const reordered = Object.fromEntries(Object.entries(a).reverse()) as unknown as EventEnvelope
        const changed = {...a, payload: {question_id: 'q1', score: 2}}
        const result = await store.events.append([reordered, changed, {...b, timestamp: at(99)}])
        expect(result.inserted).toBe(0)
        expect(result.duplicates).toEqual([a.event_id])
        expect([...result.conflicts].sort()).toEqual([a.event_id, b.event_id].sort())
        expect(await store.events.get(a.event_id)).toEqual(a)
        expect(await store.events.count()).toBe(2)
      })

      it('inside one batch, a second use of an event_id with other content is a conflict', async () => {
        const a = makeEvent()
        const result = await store.events.append([a, {...a, source_service: 'someone-else'}])
        expect(result).toEqual({inserted: 1, duplicates: [], conflicts: [a.event_id]})
        expect(await store.events.get(a.event_id)).toEqual(a)
      })

      it('get returns the envelope as appended, or null', async () => {
        const e = makeEvent({
          payload: {question_id: 'q1', nested: {list: [1, 2, {x: 'y'}]}, unicode: 'ünï 🚀'},
          causation_id: 'cause-1',
          metadata: {aggregate_id: 'q1', sequence: 7, tenant: 't1'},
        })
        await store.events.append([e])
        expect(await store.events.get(e.event_id)).toEqual(e)
        expect(await store.events.get('missing-id')).toBeNull()
      })

      it('query filters by type globs', async () => {
        const q = makeEvent({event_type: 'knowledge.question.posted'})
        const ans = makeEvent({event_type: 'knowledge.answer.accepted'})
        const like = makeEvent({event_type: 'social.content.liked'})
        const kb = makeEvent({event_type: 'knowledgebase.article.created'})
        await store.events.append([q, ans, like, kb])
        expect(ids(await collect(store.events.query({types: ['knowledge.*']})))).toEqual([q.event_id, ans.event_id])
        expect(ids(await collect(store.events.query({types: ['social.content.liked']})))).toEqual([like.event_id])
        expect(ids(await collect(store.events.query({types: ['*.content.liked', 'knowledge.answer.*']})))).toEqual([
          ans.event_id,
          like.event_id,
        ])
        expect(ids(await collect(store.events.query({types: ['knowledge.*.posted']})))).toEqual([q.event_id])
        expect(await store.events.count({types: ['knowledge.*']})).toBe(2)
        expect(await store.events.count({types: ['nothing.here']})).toBe(0)
      })

      it('query filters by time range [from, to) given as ISO or ms', async () => {
        const events = Array.from({length: 10}, (_, i) => makeEvent({timestamp: at(i)}))
        await store.events.append(events)
        expect(ids(await collect(store.events.query({from: at(3), to: at(6)})))).toEqual(ids(events.slice(3, 6)))
        expect(ids(await collect(store.events.query({from: T0 + 3000, to: T0 + 6000})))).toEqual(ids(events.slice(3, 6)))
        expect(ids(await collect(store.events.query({from: at(8)})))).toEqual(ids(events.slice(8)))
        expect(ids(await collect(store.events.query({to: at(2)})))).toEqual(ids(events.slice(0, 2)))
        expect(await store.events.count({from: at(3), to: at(6)})).toBe(3)
      })

      it('query filters by aggregateId and correlationId', async () => {
        const a1 = makeEvent({aggregateId: 'agg-a'})
        const b1 = makeEvent({aggregateId: 'agg-b', correlation_id: 'corr-1'})
        const a2 = makeEvent({aggregateId: 'agg-a', correlation_id: 'corr-1'})
        await store.events.append([a1, b1, a2])
        expect(ids(await collect(store.events.query({aggregateId: 'agg-a'})))).toEqual([a1.event_id, a2.event_id])
        expect(ids(await collect(store.events.query({correlationId: 'corr-1'})))).toEqual([b1.event_id, a2.event_id])
        expect(ids(await collect(store.events.query({correlationId: 'corr-1', aggregateId: 'agg-b'})))).toEqual([b1.event_id])
        expect(await store.events.count({aggregateId: 'agg-a'})).toBe(2)
      })

      it('query honours limit and order', async () => {
        const events = Array.from({length: 8}, () => makeEvent())
        await store.events.append(events)
        expect(ids(await collect(store.events.query({limit: 3})))).toEqual(ids(events.slice(0, 3)))
        expect(ids(await collect(store.events.query({order: 'desc'})))).toEqual(ids(events).reverse())
        expect(ids(await collect(store.events.query({order: 'desc', limit: 2})))).toEqual(ids(events.slice(6)).reverse())
      })

      it('query streams large results as an async iterable', async () => {
        const total = 2_500
        for (let i = 0; i < total; i += 500) {
          await store.events.append(Array.from({length: 500}, (_, j) => makeEvent({timestamp: at(i + j)})))
        }
        const result = store.events.query({order: 'asc'})
        expect(typeof result[Symbol.asyncIterator]).toBe('function')
        let n = 0
        let previous = ''
        for await (const e of result) {
          expect(e.timestamp > previous).toBe(true)
          previous = e.timestamp
          n++
        }
        expect(n).toBe(total)
        // Stopping early is allowed (the cursor is released).
        let seen = 0
        for await (const _ of store.events.query({})) {
          if (++seen === 10) break
        }
        expect(seen).toBe(10)
        expect(await store.events.count()).toBe(total)
      })
    })

    // ------------------------------------------------------------------------------- outbox
    describe('outbox', () => {
      it('appended events are pending; claim leases them in append order', async () => {
        const events = Array.from({length: 10}, () => makeEvent())
        await store.events.append(events)
        await store.events.append([events[0]]) // a duplicate does not re-enter the outbox
        expect(await store.outbox.pending()).toBe(10)
        const first = await store.outbox.claim({owner: 'relay-a', limit: 4, leaseMs: 60_000})
        expect(ids(first)).toEqual(ids(events.slice(0, 4)))
        expect(first[0]).toEqual(events[0])
        const second = await store.outbox.claim({owner: 'relay-b', limit: 100, leaseMs: 60_000})
        expect(ids(second)).toEqual(ids(events.slice(4)))
        expect(await store.outbox.claim({owner: 'relay-c', limit: 100, leaseMs: 60_000})).toEqual([])
        expect(await store.outbox.pending()).toBe(10)
      })

      it('quarantine takes events out of the outbox with why; list, count, and release puts them back', async () => {
        const events = Array.from({length: 4}, () => makeEvent())
        await store.events.append(events)
        const claimed = await store.outbox.claim({owner: 'relay', limit: 10, leaseMs: 60_000})
        await store.outbox.markPublished([events[0].event_id])
        const why = (event: EventEnvelope, attempts: number) => ({
          event_id: event.event_id,
          error: {error: {code: 'BUS_REFUSED', message: `Unknown topic for ${event.event_type}`, details: {topic: 'tektree.nowhere'}}},
          attempts,
          first_failure_at: at(1),
          last_failure_at: at(2),
        })
        // An already published event and an unknown id are skipped.
        const n = await store.outbox.quarantine([why(events[2], 5), why(events[1], 3), why(events[0], 1), why(makeEvent(), 1)])
        expect(n).toBe(2)
        expect(await store.outbox.pending()).toBe(1)
        expect(await store.outbox.countQuarantined()).toBe(2)
        expect(ids(claimed)).toEqual(ids(events))
        // Out of the outbox: even once the lease has gone, no claim returns them.
        await store.outbox.release([]) // a no-op
        const list = await store.outbox.quarantined()
        expect(list.map((r) => r.event_id)).toEqual([events[1].event_id, events[2].event_id]) // append order
        expect(list[1]).toMatchObject({
          event_type: events[2].event_type,
          attempts: 5,
          first_failure_at: at(1),
          last_failure_at: at(2),
          error: {error: {code: 'BUS_REFUSED', details: {topic: 'tektree.nowhere'}}},
          envelope: events[2],
        })
        expect(typeof list[1].quarantined_at).toBe('string')
        expect(await store.outbox.quarantined({limit: 1})).toHaveLength(1)
        // Still events of the log.
        expect(await store.events.get(events[1].event_id)).toEqual(events[1])

        expect(await store.outbox.release([events[2].event_id, events[3].event_id])).toBe(1)
        expect(await store.outbox.countQuarantined()).toBe(1)
        expect(await store.outbox.pending()).toBe(2)
        await store.outbox.markPublished([events[3].event_id])
        expect(ids(await store.outbox.claim({owner: 'console', limit: 10, leaseMs: 60_000}))).toEqual([events[2].event_id])
        // A quarantined event is never claimed, however many claims come.
        expect(await store.outbox.claim({owner: 'console-2', limit: 10, leaseMs: 60_000})).toEqual([])
      })

      it('published() lists the events marked published, in append order, with when, from a time on', async () => {
        const events = Array.from({length: 6}, () => makeEvent())
        await store.events.append(events)
        expect(await collect(store.outbox.published())).toEqual([])
        const before = Date.now()
        await store.outbox.markPublished([events[3].event_id, events[0].event_id])
        const after = Date.now()
        await until(() => Date.now() > after + 2)
        await store.outbox.markPublished([events[1].event_id, events[0].event_id]) // events[0] keeps its time
        await store.outbox.quarantine([
          {event_id: events[2].event_id, error: {error: {code: 'X', message: 'x', details: {}}}, attempts: 1, first_failure_at: at(0), last_failure_at: at(0)},
        ])
        const all = await collect(store.outbox.published())
        expect(all.map((p) => p.event.event_id)).toEqual([events[0], events[1], events[3]].map((e) => e.event_id))
        expect(all[0].event).toEqual(events[0])
        expect(all[0].publishedAt).toBeGreaterThanOrEqual(before)
        expect(all[0].publishedAt).toBeLessThanOrEqual(after)
        expect(all[1].publishedAt).toBeGreaterThan(after)
        const recent = await collect(store.outbox.published({sinceMs: after + 1}))
        expect(recent.map((p) => p.event.event_id)).toEqual([events[1].event_id])
      })

      it('markPublished removes events from pending', async () => {
        const events = Array.from({length: 5}, () => makeEvent())
        await store.events.append(events)
        const claimed = await store.outbox.claim({owner: 'relay', limit: 3, leaseMs: 60_000})
        await store.outbox.markPublished(ids(claimed))
        expect(await store.outbox.pending()).toBe(2)
        await store.outbox.markPublished(ids(claimed)) // idempotent
        expect(await store.outbox.pending()).toBe(2)
        // Unclaimed events can be marked too (another relay published them).
        await store.outbox.markPublished([events[4].event_id])
        expect(await store.outbox.pending()).toBe(1)
        expect(ids(await store.outbox.claim({owner: 'relay', limit: 10, leaseMs: 60_000}))).toEqual([events[3].event_id])
        // Published events stay in the event log.
        expect(await store.events.count()).toBe(5)
      })

      it('a lease expires: another claimer then gets the events', async () => {
        const events = Array.from({length: 3}, () => makeEvent())
        await store.events.append(events)
        expect(ids(await store.outbox.claim({owner: 'relay-a', limit: 10, leaseMs: 300}))).toEqual(ids(events))
        const reclaimed = await until(
          async () => {
            const got = await store.outbox.claim({owner: 'relay-b', limit: 10, leaseMs: 60_000})
            return got.length > 0 ? got : null
          },
          {message: 'the expired lease is claimable'},
        )
        expect(ids(reclaimed)).toEqual(ids(events))
      })

      it("claim skips an aggregate another claimer holds a live lease on, until that claimer has published", async () => {
        const x1 = makeEvent({aggregateId: 'agg-x'})
        const y1 = makeEvent({aggregateId: 'agg-y'})
        const x2 = makeEvent({aggregateId: 'agg-x'})
        await store.events.append([x1, y1, x2])
        expect(ids(await store.outbox.claim({owner: 'relay-a', limit: 1, leaseMs: 60_000}))).toEqual([x1.event_id])
        // x2 would overtake x1, which relay-a is publishing
        expect(ids(await store.outbox.claim({owner: 'relay-b', limit: 10, leaseMs: 60_000}))).toEqual([y1.event_id])
        // the holder itself goes on in order
        expect(ids(await store.outbox.claim({owner: 'relay-a', limit: 10, leaseMs: 60_000}))).toEqual([x2.event_id])
        await store.outbox.markPublished([x1.event_id, x2.event_id, y1.event_id])
        const x3 = makeEvent({aggregateId: 'agg-x'})
        await store.events.append([x3])
        expect(ids(await store.outbox.claim({owner: 'relay-b', limit: 10, leaseMs: 60_000}))).toEqual([x3.event_id])
      })

      it('concurrent claimers never get the same event', async () => {
        await store.events.append(Array.from({length: 50}, () => makeEvent()))
        const batches = await Promise.all(
          Array.from({length: 5}, (_, i) => store.outbox.claim({owner: `relay-${i}`, limit: 20, leaseMs: 60_000})),
        )
        const all = batches.flatMap(ids)
        expect(new Set(all).size).toBe(all.length)
        expect(all.length).toBe(50)
      })
    })

    // -------------------------------------------------------------------------- projections
    describe('projections', () => {
      it('update upserts; get returns the document or null', async () => {
        const c = uniqueName('coll')
        expect(await store.projections.get(c, 'u1')).toBeNull()
        await store.projections.update(c, 'u1', {$set: {name: 'Ada', 'profile.city': 'Paris'}})
        expect(await store.projections.get(c, 'u1')).toEqual({_id: 'u1', name: 'Ada', profile: {city: 'Paris'}})
        await store.projections.update(c, 'u1', {$set: {'profile.lang': 'fr'}})
        expect(await store.projections.get(c, 'u1')).toEqual({_id: 'u1', name: 'Ada', profile: {city: 'Paris', lang: 'fr'}})
      })

      it('$setOnInsert applies only when the document is created', async () => {
        const c = uniqueName('coll')
        await store.projections.update(c, 'd', {$setOnInsert: {created: 'first', n: 1}, $set: {seen: 1}})
        await store.projections.update(c, 'd', {$setOnInsert: {created: 'second', n: 2}, $set: {seen: 2}})
        expect(await store.projections.get(c, 'd')).toEqual({_id: 'd', created: 'first', n: 1, seen: 2})
      })

      it('$inc, $max, $min (missing fields are set)', async () => {
        const c = uniqueName('coll')
        await store.projections.update(c, 'd', {$inc: {count: 2, 'stats.views': 5}, $max: {best: 10}, $min: {low: 10}})
        await store.projections.update(c, 'd', {$inc: {count: 3, 'stats.views': -1}, $max: {best: 7}, $min: {low: 3}})
        await store.projections.update(c, 'd', {$max: {best: 12, last: '2025-01-02'}, $min: {low: 4}})
        await store.projections.update(c, 'd', {$max: {last: '2025-01-01'}})
        expect(await store.projections.get(c, 'd')).toEqual({
          _id: 'd',
          count: 5,
          stats: {views: 4},
          best: 12,
          low: 3,
          last: '2025-01-02',
        })
      })

      it('$addToSet adds a value once (objects compared by value)', async () => {
        const c = uniqueName('coll')
        await store.projections.update(c, 'd', {$addToSet: {tags: 'a'}})
        await store.projections.update(c, 'd', {$addToSet: {tags: 'b'}})
        await store.projections.update(c, 'd', {$addToSet: {tags: 'a', 'meta.refs': {id: 1}}})
        await store.projections.update(c, 'd', {$addToSet: {'meta.refs': {id: 1}}})
        expect(await store.projections.get(c, 'd')).toEqual({_id: 'd', tags: ['a', 'b'], meta: {refs: [{id: 1}]}})
      })

      it('$push appends each value and keeps a slice', async () => {
        const c = uniqueName('coll')
        await store.projections.update(c, 'd', {$push: {recent: {each: [1, 2, 3]}}})
        await store.projections.update(c, 'd', {$push: {recent: {each: [4, 5], slice: -4}}})
        expect((await store.projections.get(c, 'd'))!.recent).toEqual([2, 3, 4, 5])
        await store.projections.update(c, 'd', {$push: {recent: {each: [6], slice: 2}, 'x.log': {each: [{a: 1}]}}})
        expect(await store.projections.get(c, 'd')).toEqual({_id: 'd', recent: [2, 3], x: {log: [{a: 1}]}})
      })

      it('$unset removes fields, including dotted ones', async () => {
        const c = uniqueName('coll')
        await store.projections.update(c, 'd', {$set: {a: 1, b: 2, nested: {x: 1, y: 2}}})
        await store.projections.update(c, 'd', {$unset: {a: true, 'nested.x': true, 'missing.path': true}})
        expect(await store.projections.get(c, 'd')).toEqual({_id: 'd', b: 2, nested: {y: 2}})
      })

      it('concurrent updates are atomic per document', async () => {
        const c = uniqueName('coll')
        await Promise.all(Array.from({length: 20}, () => store.projections.update(c, 'd', {$inc: {n: 1}})))
        expect((await store.projections.get(c, 'd'))!.n).toBe(20)
      })

      it('applyOnce applies an event once; a second apply changes nothing and returns false', async () => {
        const c = uniqueName('coll')
        expect(await store.projections.applyOnce(c, 'd', 'evt-1', {$inc: {n: 1}, $push: {log: {each: ['evt-1']}}})).toBe(true)
        expect(await store.projections.applyOnce(c, 'd', 'evt-1', {$inc: {n: 1}, $push: {log: {each: ['evt-1']}}})).toBe(false)
        expect(await store.projections.applyOnce(c, 'd', 'evt-2', {$inc: {n: 1}, $push: {log: {each: ['evt-2']}}})).toBe(true)
        const doc = await store.projections.get(c, 'd')
        expect(doc).toEqual({_id: 'd', n: 2, log: ['evt-1', 'evt-2']})
        expect(doc).not.toHaveProperty('_applied')
        // The guard is per document: the same event may change another document once.
        expect(await store.projections.applyOnce(c, 'other', 'evt-1', {$inc: {n: 1}})).toBe(true)
        expect(await store.projections.applyOnce(c, 'other', 'evt-1', {$inc: {n: 1}})).toBe(false)
      })

      it('isApplied answers whether applyOnce or a commit applied an event id to a document', async () => {
        expect(await store.projections.isApplied('c_applied', 'd1', 'e1')).toBe(false)
        await store.projections.applyOnce('c_applied', 'd1', 'e1', {$inc: {n: 1}})
        await store.commit({projections: [{collection: 'c_applied', id: 'd1', update: {$inc: {n: 1}}, eventId: 'e2'}]})
        await store.projections.update('c_applied', 'd1', {$inc: {n: 1}})
        expect(await store.projections.isApplied('c_applied', 'd1', 'e1')).toBe(true)
        expect(await store.projections.isApplied('c_applied', 'd1', 'e2')).toBe(true)
        expect(await store.projections.isApplied('c_applied', 'd2', 'e1')).toBe(false)
        expect(await store.projections.isApplied('c_other', 'd1', 'e1')).toBe(false)
      })

      it('concurrent applyOnce of one eventId applies exactly once; of distinct ids, each once', async () => {
        const c = uniqueName('coll')
        const same = await Promise.all(
          Array.from({length: 10}, () => store.projections.applyOnce(c, 'd', 'evt-same', {$inc: {n: 1}})),
        )
        expect(same.filter(Boolean)).toHaveLength(1)
        expect((await store.projections.get(c, 'd'))!.n).toBe(1)
        const distinct = await Promise.all(
          Array.from({length: 10}, (_, i) => store.projections.applyOnce(c, 'e', `evt-${i}`, {$inc: {n: 1}})),
        )
        expect(distinct.every(Boolean)).toBe(true)
        expect((await store.projections.get(c, 'e'))!.n).toBe(10)
      })

      it('find filters by equality (dotted paths too), sorts and limits; count filters', async () => {
        const c = uniqueName('coll')
        const people = [
          {id: 'p1', name: 'Ada', team: 'red', score: 30, author: {id: 'u1'}},
          {id: 'p2', name: 'Bob', team: 'blue', score: 10, author: {id: 'u2'}},
          {id: 'p3', name: 'Cy', team: 'red', score: 20, author: {id: 'u1'}},
          {id: 'p4', name: 'Di', team: 'red', score: 40, author: {id: 'u3'}},
        ]
        for (const {id, ...rest} of people) await store.projections.update(c, id, {$set: rest})
        const red = await store.projections.find(c, {team: 'red'}, {sort: {field: 'score', order: 'asc'}})
        expect(red.map((d) => d._id)).toEqual(['p3', 'p1', 'p4'])
        const byAuthor = await store.projections.find(c, {'author.id': 'u1'}, {sort: {field: 'score', order: 'desc'}})
        expect(byAuthor.map((d) => d._id)).toEqual(['p1', 'p3'])
        const top2 = await store.projections.find(c, {}, {sort: {field: 'score', order: 'desc'}, limit: 2})
        expect(top2.map((d) => d._id)).toEqual(['p4', 'p1'])
        expect(top2[0]).toEqual({_id: 'p4', name: 'Di', team: 'red', score: 40, author: {id: 'u3'}})
        expect((await store.projections.find(c)).map((d) => d._id).sort()).toEqual(['p1', 'p2', 'p3', 'p4'])
        expect(await store.projections.find(c, {team: 'red', name: 'Bob'})).toEqual([])
        expect(await store.projections.find(c, {_id: 'p2'})).toHaveLength(1)
        expect(await store.projections.count(c)).toBe(4)
        expect(await store.projections.count(c, {team: 'red'})).toBe(3)
        expect(await store.projections.count(c, {'author.id': 'u9'})).toBe(0)
        expect(await store.projections.count(uniqueName('empty'))).toBe(0)
      })

      it('find never shows the _applied bookkeeping', async () => {
        const c = uniqueName('coll')
        await store.projections.applyOnce(c, 'd', 'evt-1', {$set: {k: 'v'}})
        const [doc] = await store.projections.find(c, {k: 'v'})
        expect(doc).toEqual({_id: 'd', k: 'v'})
      })

      it('drop removes every document of one collection only', async () => {
        const c = uniqueName('coll')
        const keep = uniqueName('coll')
        await store.projections.update(c, 'a', {$set: {x: 1}})
        await store.projections.applyOnce(c, 'b', 'evt-1', {$set: {x: 2}})
        await store.projections.update(keep, 'a', {$set: {x: 1}})
        await store.projections.drop(c)
        expect(await store.projections.count(c)).toBe(0)
        expect(await store.projections.get(c, 'a')).toBeNull()
        expect(await store.projections.count(keep)).toBe(1)
        // After a drop, an event applies again (a replay from scratch).
        expect(await store.projections.applyOnce(c, 'b', 'evt-1', {$set: {x: 3}})).toBe(true)
        await store.projections.drop(uniqueName('never-existed'))
      })
    })

    // --------------------------------------------------------------------------------- dlq
    describe('commit (a unit of work)', () => {
      it('applies projections (applyOnce where an eventId is given), appends events into the outbox, keeps the handled records', async () => {
        const derived = [makeEvent(), makeEvent()]
        const result = await store.commit({
          projections: [
            {collection: 'c_commit', id: 'u1', update: {$inc: {xp: 5}}, eventId: 'e1'},
            {collection: 'c_commit', id: 'u1', update: {$inc: {xp: 7}}, eventId: 'e2'},
            {collection: 'c_commit', id: 'u2', update: {$set: {name: 'Ada'}}},
          ],
          events: derived,
          handled: [
            {group: 'g', event_id: 'e1', handled_at: at(1), attempts: 1},
            {group: 'g', event_id: 'e2', handled_at: at(1), attempts: 1},
          ],
        })
        expect(result.inserted).toBe(2)
        expect(await store.projections.get('c_commit', 'u1')).toEqual({_id: 'u1', xp: 12})
        expect(await store.projections.get('c_commit', 'u2')).toEqual({_id: 'u2', name: 'Ada'})
        expect(await store.events.get(derived[1].event_id)).toEqual(derived[1])
        expect(await store.outbox.pending()).toBe(2)
        expect(await store.handled.completed('g', ['e1', 'e2', 'e3'])).toEqual(new Set(['e1', 'e2']))
      })

      it('a second commit of the same unit changes nothing: guarded writes skip, events are duplicates', async () => {
        const derived = makeEvent()
        const unit = {
          projections: [{collection: 'c_commit', id: 'u1', update: {$inc: {xp: 5}}, eventId: 'e1'}],
          events: [derived],
        }
        expect((await store.commit(unit)).inserted).toBe(1)
        expect((await store.commit(unit)).inserted).toBe(0)
        expect(await store.projections.get('c_commit', 'u1')).toEqual({_id: 'u1', xp: 5})
        expect(await store.events.count()).toBe(1)
        // The guard is shared with applyOnce: one path cannot apply what the other did.
        expect(await store.projections.applyOnce('c_commit', 'u1', 'e1', {$inc: {xp: 5}})).toBe(false)
      })

      it('keeps which group handled which event, when and after how many attempts, for trace', async () => {
        await store.commit({
          handled: [
            {group: 'g1', event_id: 'e1', handled_at: '2026-11-30T10:00:00.000Z', attempts: 1},
            {group: 'g1', event_id: 'e2', handled_at: '2026-11-30T10:00:01.000Z', attempts: 3},
          ],
        })
        await store.commit({handled: [{group: 'g2', event_id: 'e1', handled_at: '2026-11-30T10:00:02.000Z', attempts: 2}]})
        const sorted = (records: Awaited<ReturnType<typeof store.handled.of>>) => [...records].sort((a, b) => (a.event_id + a.group).localeCompare(b.event_id + b.group))
        expect(sorted(await store.handled.of(['e1', 'e2', 'e9']))).toEqual([
          {group: 'g1', event_id: 'e1', handled_at: '2026-11-30T10:00:00.000Z', attempts: 1},
          {group: 'g2', event_id: 'e1', handled_at: '2026-11-30T10:00:02.000Z', attempts: 2},
          {group: 'g1', event_id: 'e2', handled_at: '2026-11-30T10:00:01.000Z', attempts: 3},
        ])
        expect(await store.handled.of([])).toEqual([])
      })

      it("handled records are the group's ledger: completed() says which of some events a group holds", async () => {
        await store.commit({handled: [{group: 'g1', event_id: 'e1', handled_at: at(1), attempts: 1}]})
        await store.commit({handled: [{group: 'g2', event_id: 'e2', handled_at: at(2), attempts: 1}]})
        expect(await store.handled.completed('g1', ['e1', 'e2', 'e3'])).toEqual(new Set(['e1']))
        expect(await store.handled.completed('g2', ['e1', 'e2'])).toEqual(new Set(['e2']))
        expect(await store.handled.completed('g3', ['e1', 'e2'])).toEqual(new Set())
        expect(await store.handled.completed('g1', [])).toEqual(new Set())
      })

      it('a handled record the group already holds: the commit applies nothing and says ALREADY_HANDLED; one handled `again` replaces it', async () => {
        await store.commit({handled: [{group: 'g', event_id: 'e1', handled_at: at(1), attempts: 1}]})
        const derived = makeEvent()
        const error = await store
          .commit({
            projections: [{collection: 'c_commit', id: 'u1', update: {$inc: {xp: 5}}}],
            events: [derived],
            handled: [
              {group: 'g', event_id: 'e2', handled_at: at(2), attempts: 1},
              {group: 'g', event_id: 'e1', handled_at: at(2), attempts: 1},
            ],
          })
          .then(
            () => null,
            (e: unknown) => e,
          )
        expect(error).toMatchObject({code: 'ALREADY_HANDLED', details: {scope: 'handled:g', keys: ['e1']}})
        expect(await store.projections.get('c_commit', 'u1')).toBeNull()
        expect(await store.events.get(derived.event_id)).toBeNull()
        expect(await store.handled.completed('g', ['e1', 'e2'])).toEqual(new Set(['e1']))
        // Another group handling the same event is no conflict.
        await store.commit({handled: [{group: 'other', event_id: 'e1', handled_at: at(2), attempts: 1}]})
        // A replay handles it again on purpose: its record replaces the first, no conflict.
        await store.commit({handled: [{group: 'g', event_id: 'e1', handled_at: at(3), attempts: 2, again: true}]})
        expect(await store.handled.of(['e1'])).toEqual(
          expect.arrayContaining([
            {group: 'g', event_id: 'e1', handled_at: at(3), attempts: 2},
            {group: 'other', event_id: 'e1', handled_at: at(2), attempts: 1},
          ]),
        )
        expect(await store.handled.of(['e1'])).toHaveLength(2)
      })

      it('an empty commit is a no-op', async () => {
        expect(await store.commit({})).toEqual({inserted: 0})
      })

      it('getVersioned: a document is at 0 until written; every write that names it adds one, a guarded skip too', async (context) => {
        const versioned = store.projections.getVersioned?.bind(store.projections)
        if (!versioned) return context.skip('this store offers no versioned reads (commit() does not check expect)')
        expect(await versioned('c_version', 'u')).toEqual({doc: null, version: 0})
        await store.projections.update('c_version', 'u', {$set: {xp: 1}})
        expect(await versioned('c_version', 'u')).toEqual({doc: {_id: 'u', xp: 1}, version: 1})
        await store.projections.applyOnce('c_version', 'u', 'e1', {$inc: {xp: 1}})
        expect(await store.projections.applyOnce('c_version', 'u', 'e1', {$inc: {xp: 1}})).toBe(false)
        expect((await versioned('c_version', 'u')).version).toBe(3)
        // One commit is one more for each document it names, however many writes, applied or skipped.
        await store.commit({
          projections: [
            {collection: 'c_version', id: 'u', update: {$inc: {xp: 1}}, eventId: 'e2'},
            {collection: 'c_version', id: 'u', update: {$inc: {xp: 1}}, eventId: 'e1'},
            {collection: 'c_version', id: 'v', update: {$set: {xp: 9}}},
          ],
        })
        expect(await versioned('c_version', 'u')).toEqual({doc: {_id: 'u', xp: 3}, version: 4})
        expect((await versioned('c_version', 'v')).version).toBe(1)
        await store.commit({projections: [{collection: 'c_version', id: 'u', update: {$inc: {xp: 1}}, eventId: 'e1'}]})
        expect((await versioned('c_version', 'u')).version).toBe(5)
        await store.projections.drop('c_version')
        expect(await versioned('c_version', 'u')).toEqual({doc: null, version: 0})
      })

      it('a commit expecting a version a document is no longer at applies nothing and says STALE_READ', async (context) => {
        const versioned = store.projections.getVersioned?.bind(store.projections)
        if (!versioned) return context.skip('this store offers no versioned reads (commit() does not check expect)')
        await store.projections.update('c_stale', 'u', {$set: {likes: 9}})
        const {version} = await versioned('c_stale', 'u')
        // given another process wrote the document after this unit read it
        await store.projections.update('c_stale', 'u', {$inc: {likes: 1}})
        const derived = makeEvent()
        const unit = {
          projections: [
            {collection: 'c_stale', id: 'u', update: {$inc: {likes: 1}}, eventId: 'e1'},
            {collection: 'c_stale', id: 'w', update: {$set: {n: 1}}},
          ],
          events: [derived],
          handled: [{group: 'g', event_id: 'e1', handled_at: at(1), attempts: 1}],
          expect: [
            {collection: 'c_stale', id: 'u', version},
            {collection: 'c_stale', id: 'never', version: 0},
          ],
        }
        const error = await store.commit(unit).then(
          () => null,
          (e: unknown) => e,
        )
        expect(error).toMatchObject({code: 'STALE_READ', details: {documents: [{collection: 'c_stale', id: 'u', expected: version, found: version + 1}]}})
        expect(await store.projections.get('c_stale', 'u')).toEqual({_id: 'u', likes: 10})
        expect(await store.projections.get('c_stale', 'w')).toBeNull()
        expect(await store.events.get(derived.event_id)).toBeNull()
        expect(await store.handled.completed('g', ['e1'])).toEqual(new Set())
        // expecting the version it is at now, the same unit goes in (a missing document is at 0)
        const now = await versioned('c_stale', 'u')
        expect(await store.commit({...unit, expect: [{collection: 'c_stale', id: 'u', version: now.version}, {collection: 'c_stale', id: 'never', version: 0}]})).toEqual({inserted: 1})
        expect(await store.projections.get('c_stale', 'u')).toEqual({_id: 'u', likes: 11})
      })

      it('when transactional, a unit with one failing write applies none of it', async (context) => {
        if (!store.transactional) return context.skip('this store commits write by write (transactional = false)')
        await store.projections.update('c_commit', 'u1', {$set: {xp: 1}})
        const derived = makeEvent()
        await expect(
          store.commit({
            projections: [
              {collection: 'c_commit', id: 'u1', update: {$inc: {xp: 5}}, eventId: 'e1'},
              {collection: 'c_commit', id: 'u2', update: {$set: {_applied: ['x']}}},
            ],
            events: [derived],
            handled: [{group: 'g', event_id: 'e1', handled_at: at(1), attempts: 1}],
          }),
        ).rejects.toThrow()
        expect(await store.projections.get('c_commit', 'u1')).toEqual({_id: 'u1', xp: 1})
        expect(await store.projections.get('c_commit', 'u2')).toBeNull()
        expect(await store.events.get(derived.event_id)).toBeNull()
        expect(await store.handled.completed('g', ['e1'])).toEqual(new Set())
        // Not applied, so not guarded either: the same event applies once later.
        expect(await store.projections.applyOnce('c_commit', 'u1', 'e1', {$inc: {xp: 5}})).toBe(true)
      })
    })

    // ------------------------------------------------------------------ archive (remove / restore)
    describe('archive: records, remove, restore', () => {
      const handled = (event: EventEnvelope, group: string) => ({group, event_id: event.event_id, handled_at: at(5), attempts: 2})

      it('records gives each held event with when it was published and its handled records', async () => {
        const [a, b, c] = Array.from({length: 3}, (_, i) => makeEvent({timestamp: at(i)}))
        await store.events.append([a, b, c])
        await store.outbox.markPublished([a.event_id])
        await store.commit({handled: [handled(a, 'g1'), handled(a, 'g2'), handled(b, 'g1')]})
        const records = await store.events.records([c.event_id, a.event_id, b.event_id, 'missing'])
        const byId = new Map(records.map((r) => [r.event.event_id, r]))
        expect(records).toHaveLength(3)
        expect(byId.get(a.event_id)!.event).toEqual(a)
        expect(byId.get(a.event_id)!.published_at).toEqual(expect.any(Number))
        expect(byId.get(a.event_id)!.handled.map((h) => h.group).sort()).toEqual(['g1', 'g2'])
        expect(byId.get(b.event_id)).toMatchObject({published_at: null, handled: [handled(b, 'g1')]})
        expect(byId.get(c.event_id)).toMatchObject({published_at: null, handled: []})
        expect(await store.events.records([])).toEqual([])
      })

      it('remove takes events out of every read: get, query, count, the outbox, the quarantine, published(), handled', async () => {
        const events = Array.from({length: 6}, (_, i) => makeEvent({timestamp: at(i), aggregateId: 'agg-r', correlation_id: 'corr-r'}))
        await store.events.append(events)
        const [published, pending, quarantined, kept] = [events[0], events[1], events[2], events[3]]
        await store.outbox.markPublished([published.event_id, kept.event_id])
        await store.outbox.quarantine([{event_id: quarantined.event_id, error: {error: {code: 'X', message: 'x', details: {}}}, attempts: 1, first_failure_at: at(0), last_failure_at: at(0)}])
        await store.commit({handled: [handled(published, 'g1'), handled(kept, 'g1')]})
        const gone = [published, pending, quarantined]
        expect(await store.events.remove([...ids(gone), 'missing'])).toBe(3)
        expect(await store.events.remove(ids(gone))).toBe(0) // again: nothing left to remove
        for (const e of gone) expect(await store.events.get(e.event_id)).toBeNull()
        const left = ids(events.slice(3))
        expect(ids(await collect(store.events.query({})))).toEqual(left)
        expect(ids(await collect(store.events.query({aggregateId: 'agg-r'})))).toEqual(left)
        expect(ids(await collect(store.events.query({correlationId: 'corr-r', order: 'desc'})))).toEqual([...left].reverse())
        expect(ids(await collect(store.events.query({to: at(4)})))).toEqual([kept.event_id])
        expect(await store.events.count()).toBe(3)
        expect(await store.events.count({aggregateId: 'agg-r'})).toBe(3)
        expect(await store.outbox.pending()).toBe(2)
        expect(await store.outbox.countQuarantined()).toBe(0)
        expect(ids(await store.outbox.claim({owner: 'relay', limit: 10, leaseMs: 60_000}))).toEqual(ids(events.slice(4)))
        expect((await collect(store.outbox.published())).map((p) => p.event.event_id)).toEqual([kept.event_id])
        expect(await store.handled.of(ids(events))).toEqual([handled(kept, 'g1')])
        expect(await store.events.records(ids(gone))).toEqual([])
      })

      it('restore puts events back as published (never in the outbox), with their handled records, byte for byte', async () => {
        const events = Array.from({length: 4}, (_, i) =>
          makeEvent({timestamp: at(i), payload: {question_id: `q${i}`, n: i, nested: {x: [1, 'ü', null]}}, metadata: {aggregate_id: `q${i}`, z: 1, a: 2}}),
        )
        await store.events.append(events)
        await store.outbox.markPublished(ids(events))
        await store.commit({handled: [handled(events[0], 'g1'), handled(events[1], 'g2')]})
        const records = await store.events.records(ids(events))
        const bytes = JSON.stringify(await collect(store.events.query({})))
        await store.events.remove(ids(events))
        expect(await store.events.count()).toBe(0)

        // Through JSON, as an archive file carries them.
        const fromFile = JSON.parse(JSON.stringify(records)) as typeof records
        expect(await store.events.restore(fromFile)).toEqual({inserted: 4, duplicates: [], conflicts: []})
        expect(await store.outbox.pending()).toBe(0)
        expect(await store.outbox.claim({owner: 'relay', limit: 10, leaseMs: 60_000})).toEqual([])
        const back = await collect(store.events.query({}))
        expect(JSON.stringify(back)).toBe(bytes)
        for (const e of events) expect(JSON.stringify(await store.events.get(e.event_id))).toBe(JSON.stringify(e))
        const byId = (list: typeof records) => [...list].sort((x, y) => x.event.event_id.localeCompare(y.event.event_id))
        expect(byId(await store.events.records(ids(events)))).toEqual(byId(records))
        const published = await collect(store.outbox.published())
        const publishedAt = new Map(records.map((r) => [r.event.event_id, r.published_at]))
        expect(published.map((p) => [p.event.event_id, p.publishedAt])).toEqual(events.map((e) => [e.event_id, publishedAt.get(e.event_id)]))

        // Again: the same store, every event a duplicate; another content under one id: a conflict.
        const changed = {...fromFile[0], event: {...fromFile[0].event, source_service: 'someone-else'}}
        expect(await store.events.restore([...fromFile.slice(1), changed])).toEqual({inserted: 0, duplicates: ids(events.slice(1)), conflicts: [events[0].event_id]})
        expect(JSON.stringify(await collect(store.events.query({})))).toBe(bytes)
        expect(await store.handled.of(ids(events))).toHaveLength(2)
      })

      it("a removed event's id stays known: appended again (alone or in a commit) it is a duplicate; restore brings the event back", async () => {
        const [kept, archived] = [makeEvent({timestamp: at(0)}), makeEvent({timestamp: at(1)})]
        await store.events.append([kept, archived])
        await store.outbox.markPublished(ids([kept, archived]))
        const records = await store.events.records([archived.event_id])
        expect(await store.events.remove([archived.event_id])).toBe(1)
        // A threshold event announced again (its id is its identity) after the first was archived.
        const again = {...archived, timestamp: at(50), causation_id: 'another-cause'}
        const fresh = makeEvent({timestamp: at(51)})
        expect(await store.events.append([again, fresh])).toEqual({inserted: 1, duplicates: [archived.event_id], conflicts: []})
        expect(await store.commit({events: [again]})).toEqual({inserted: 0})
        expect(await store.events.get(archived.event_id)).toBeNull()
        expect(ids(await store.outbox.claim({owner: 'relay', limit: 10, leaseMs: 60_000}))).toEqual([fresh.event_id])
        expect(await store.events.count()).toBe(2)
        expect(await store.events.restore(records)).toEqual({inserted: 1, duplicates: [], conflicts: []})
        expect(await store.events.get(archived.event_id)).toEqual(archived)
        expect(await store.events.append([archived])).toEqual({inserted: 0, duplicates: [archived.event_id], conflicts: []})
      })

      it('a restored event without a publish time is marked published now; it comes after newer events in append order', async () => {
        const old = makeEvent({timestamp: at(0)})
        const newer = makeEvent({timestamp: at(100)})
        await store.events.append([newer])
        const before = Date.now()
        expect((await store.events.restore([{event: old, published_at: null, handled: []}])).inserted).toBe(1)
        const [record] = await store.events.records([old.event_id])
        expect(record.published_at).toBeGreaterThanOrEqual(before)
        expect(ids(await collect(store.events.query({})))).toEqual([newer.event_id, old.event_id])
        expect(await store.outbox.pending()).toBe(1) // newer only
        expect(await store.events.restore([])).toEqual({inserted: 0, duplicates: [], conflicts: []})
        expect(await store.events.remove([])).toBe(0)
      })
    })

    describe('dlq', () => {
      it('add is idempotent by id and replaces; get; count', async () => {
        const record = makeDlqRecord({group: 'g1'})
        await store.dlq.add(record)
        await store.dlq.add({...record, attempts: 5, last_failure_at: '2025-01-02T00:00:00.000Z'})
        expect(await store.dlq.count()).toBe(1)
        expect(await store.dlq.get(record.id)).toEqual({...record, attempts: 5, last_failure_at: '2025-01-02T00:00:00.000Z'})
        expect(await store.dlq.get('nope')).toBeNull()
      })

      it('keeps poison pills exactly (raw bytes, null envelope) and parsed envelopes', async () => {
        const poison = makeDlqRecord({event_id: null, event_type: null, raw: '{not json ünï', envelope: null})
        const envelope = makeEvent()
        const parsed = makeDlqRecord({event_id: envelope.event_id, envelope, raw: JSON.stringify(envelope)})
        await store.dlq.add(poison)
        await store.dlq.add(parsed)
        expect(await store.dlq.get(poison.id)).toEqual(poison)
        expect(await store.dlq.get(parsed.id)).toEqual(parsed)
      })

      it('list filters by group and exact type, with a limit; count filters; remove', async () => {
        const records = [
          makeDlqRecord({group: 'g1', event_type: 'knowledge.question.posted'}),
          makeDlqRecord({group: 'g1', event_type: 'social.content.liked'}),
          makeDlqRecord({group: 'g2', event_type: 'knowledge.question.posted'}),
          makeDlqRecord({group: 'g2', event_type: 'knowledge.question.posted'}),
        ]
        for (const r of records) await store.dlq.add(r)
        const list = await store.dlq.list()
        expect(list.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort())
        expect((await store.dlq.list({group: 'g1'})).map((r) => r.id).sort()).toEqual([records[0].id, records[1].id].sort())
        expect((await store.dlq.list({type: 'knowledge.question.posted'})).length).toBe(3)
        expect((await store.dlq.list({group: 'g2', type: 'knowledge.question.posted'})).length).toBe(2)
        expect(await store.dlq.list({limit: 2})).toHaveLength(2)
        expect(await store.dlq.count({group: 'g2'})).toBe(2)
        expect(await store.dlq.count({type: 'social.content.liked'})).toBe(1)
        expect(await store.dlq.count()).toBe(4)
        expect(await store.dlq.remove([records[0].id, records[2].id, 'missing'])).toBe(2)
        expect(await store.dlq.count()).toBe(2)
        expect(await store.dlq.get(records[0].id)).toBeNull()
      })
    })
  })
}
