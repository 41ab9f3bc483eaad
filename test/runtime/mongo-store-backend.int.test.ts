/**
 * MongoDB-only checks of the Store, beside the portable contract (mongo-store.int.test.ts): they look
 * at things only this backend has (indexes, separate client connections racing for the outbox,
 * connection errors, a client owned by the caller).
 *
 * Where these run against mongo-java-server instead of a real mongod (see the report line printed by
 * global-setup), the known differences from mongod that the adapter works around are:
 * - it reports wire version 8 even as "5.0"; the launcher makes it report 4.4 / wire 9, the lowest
 *   the driver 7 accepts (test/support/mongo-java-server/MongoServerLauncher.java);
 * - it has no `hello` command (the driver falls back to the legacy handshake; do not call hello);
 * - with duplicate-key write errors in an unordered insertMany its inserted count is wrong, so
 *   append() counts inserted = sent - duplicates instead of trusting it;
 * - no sessions, so no retryable writes and no transactions (the Store needs neither);
 */
import {randomUUID} from 'node:crypto'
import {createServer} from 'node:net'
import {MongoClient} from 'mongodb'
import {afterAll, afterEach, beforeAll, describe, expect, inject, it} from 'vitest'
import {createMongoStore, type MongoStore} from '../../src/adapters/mongo/store.js'
import {UserError} from '../../src/errors.js'
import {makeEvent, settlesWithin} from '../contracts/helpers.js'

const url = inject('mongoUrl')

async function closedPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1))
    })
  })
}

describe.skipIf(url === null)(`MongoStore backend-only (${inject('mongoServer') ?? inject('mongoUnavailable')})`, () => {
  let admin: MongoClient
  const databases: string[] = []
  const stores: MongoStore[] = []

  const newDatabase = () => {
    const name = `t-${randomUUID()}`
    databases.push(name)
    return name
  }

  beforeAll(async () => {
    admin = new MongoClient(url!, {serverSelectionTimeoutMS: 5_000})
    await admin.connect()
  })
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((s) => s.close()))
    await Promise.allSettled(databases.splice(0).map((d) => admin.db(d).dropDatabase()))
  })
  afterAll(async () => {
    await admin?.close()
  })

  it('creates the indexes its queries use, including the partial outbox index', async () => {
    const database = newDatabase()
    stores.push(await createMongoStore({url: url!, database}))
    const db = admin.db(database)
    const events = await db.collection('events').listIndexes().toArray()
    const byName = new Map(events.map((index) => [index.name as string, index]))
    expect(byName.get('seq')?.key).toEqual({seq: 1})
    expect(byName.get('event_type_seq')?.key).toEqual({event_type: 1, seq: 1})
    expect(byName.get('ts_seq')?.key).toEqual({ts_ms: 1, seq: 1})
    expect(byName.get('aggregate_seq')?.key).toEqual({'metadata.aggregate_id': 1, seq: 1})
    expect(byName.get('correlation_seq')?.key).toEqual({correlation_id: 1, seq: 1})
    expect(byName.get('outbox')?.key).toEqual({published: 1, seq: 1})
    expect(byName.get('outbox')?.partialFilterExpression).toEqual({published: false})
    const dlq = (await db.collection('dlq').listIndexes().toArray()).map((index) => index.name).sort()
    expect(dlq).toEqual(['_id_', 'group_seq', 'seq', 'type_seq'])
    // Creating a second store on the same database is fine (same index definitions).
    stores.push(await createMongoStore({url: url!, database}))
  })

  it('stores the event with its outbox state and returns exactly the envelope', async () => {
    const database = newDatabase()
    const store = await createMongoStore({url: url!, database})
    stores.push(store)
    const event = makeEvent({timestamp: '2025-03-01T10:00:00.123Z'})
    await store.events.append([event])
    const raw = await admin.db(database).collection('events').findOne({_id: event.event_id as never})
    expect(raw).toMatchObject({published: false, lease_until: 0, ts_ms: Date.parse(event.timestamp)})
    expect(typeof raw!.seq).toBe('number')
    expect(await store.events.get(event.event_id)).toEqual(event)
    const [claimed] = await store.outbox.claim({owner: 'r', limit: 1, leaseMs: 60_000})
    expect(claimed).toEqual(event)
    await store.outbox.markPublished([event.event_id])
    expect(await admin.db(database).collection('events').findOne({_id: event.event_id as never})).toMatchObject({published: true})
  })

  it('three relays on separate connections drain the outbox without ever sharing an event', async () => {
    const database = newDatabase()
    const relayA = await createMongoStore({url: url!, database})
    const relayB = await createMongoStore({url: url!, database})
    const relayC = await createMongoStore({url: url!, database})
    stores.push(relayA, relayB, relayC)
    const events = Array.from({length: 400}, () => makeEvent())
    for (let i = 0; i < events.length; i += 100) await relayA.events.append(events.slice(i, i + 100))

    // Different batch sizes make the candidate sets overlap partly, the case a naive claim gets wrong.
    const drain = async (store: MongoStore, owner: string, limit: number) => {
      const got: string[] = []
      for (let round = 0; round < 500; round++) {
        const batch = await store.outbox.claim({owner, limit, leaseMs: 60_000})
        if (batch.length === 0 && (await store.outbox.pending()) === 0) break
        got.push(...batch.map((e) => e.event_id))
        await store.outbox.markPublished(batch.map((e) => e.event_id))
      }
      return got
    }
    const got = await Promise.all([drain(relayA, 'relay-a', 7), drain(relayB, 'relay-b', 11), drain(relayC, 'relay-c', 3)])
    const all = got.flat()
    expect(new Set(all).size).toBe(all.length)
    expect(new Set(all)).toEqual(new Set(events.map((e) => e.event_id)))
    expect(await relayA.outbox.pending()).toBe(0)
  })

  it('an unreachable URL fails with a UserError naming the URL with the password masked', async () => {
    const port = await closedPort()
    const attempt = createMongoStore({url: `mongodb://tektree:s3cr3t-pw@127.0.0.1:${port}/`, database: 'x'}, {connectTimeoutMs: 1_000})
    const result = await settlesWithin(attempt, 30_000, 'connecting to an unreachable MongoDB')
    expect(result.status).toBe('rejected')
    const error = (result as PromiseRejectedResult).reason as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.code).toBe('MONGO_UNREACHABLE')
    expect(error.message).toContain(`127.0.0.1:${port}`)
    expect(error.message).toContain('****')
    expect(error.message).not.toContain('s3cr3t-pw')
    expect(JSON.stringify(error.toContract())).not.toContain('s3cr3t-pw')
    expect(error.hint).toMatch(/mongod/)
  })

  it('does not close a client it was handed', async () => {
    const database = newDatabase()
    const client = new MongoClient(url!, {serverSelectionTimeoutMS: 5_000})
    await client.connect()
    try {
      const store = await createMongoStore({client, database})
      await store.events.append([makeEvent()])
      await store.close()
      expect(await client.db(database).collection('events').countDocuments()).toBe(1)
    } finally {
      await client.close()
    }
  })

  it('rethrows append errors other than duplicate keys', async () => {
    const database = newDatabase()
    const store = await createMongoStore({url: url!, database})
    stores.push(store)
    const existing = makeEvent()
    await store.events.append([existing])
    // Over the 16 MiB document limit: not a duplicate, so it must not be reported as one.
    const huge = makeEvent({payload: {blob: 'x'.repeat(17 * 1024 * 1024)}})
    await expect(store.events.append([existing, huge])).rejects.toThrow()
    expect(await store.events.get(huge.event_id)).toBeNull()
  })

  it('rejects a projection update that touches the applyOnce bookkeeping', async () => {
    const database = newDatabase()
    const store = await createMongoStore({url: url!, database})
    stores.push(store)
    await expect(store.projections.update('c', 'd', {$set: {_applied: []}})).rejects.toThrow(/reserved/)
    await expect(store.projections.applyOnce('c', 'd', 'e1', {$push: {_applied: {each: ['x']}}})).rejects.toThrow(/reserved/)
    expect(await store.projections.count('c')).toBe(0)
  })

  it('a filter value cannot smuggle in a query operator', async () => {
    const database = newDatabase()
    const store = await createMongoStore({url: url!, database})
    stores.push(store)
    await store.projections.update('c', 'a', {$set: {n: 1, o: {k: 1}}})
    // Compared as a value (no document holds the object {$gt: 0}), never run as an operator.
    expect(await store.projections.find('c', {n: {$gt: 0}})).toEqual([])
    expect(await store.projections.count('c', {n: {$gt: 0}})).toBe(0)
    expect((await store.projections.find('c', {o: {k: 1}})).map((d) => d._id)).toEqual(['a'])
    await expect(store.projections.find('c', {$where: 'true'})).rejects.toThrow(/equality/)
  })
})
