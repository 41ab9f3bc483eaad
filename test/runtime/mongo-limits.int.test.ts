/**
 * An event over MongoDB's document limit (16 MiB) reaching the store by a path that skipped the
 * publisher's size limit (a raised TEKTREE_MAX_EVENT_BYTES, a foreign producer): append fails with
 * EVENT_TOO_LARGE naming the event, instead of the driver's `RangeError: The value of "offset" is out
 * of range` (issue 12, item 6); the store stays usable.
 */
import {randomUUID} from 'node:crypto'
import {MongoClient} from 'mongodb'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {createMongoStore} from '../../src/adapters/mongo/store.js'
import {RuntimeError} from '../../src/core/errors.js'
import {makeEvent} from '../contracts/helpers.js'

const url = inject('mongoUrl')
const database = `t-${randomUUID()}`

afterAll(async () => {
  if (!url) return
  const admin = new MongoClient(url, {serverSelectionTimeoutMS: 5_000})
  await admin.connect()
  await admin.db(database).dropDatabase()
  await admin.close()
})

describe.skipIf(url === null)(`MongoStore: an event over 16 MiB (${inject('mongoServer') ?? inject('mongoUnavailable')})`, () => {
  it('append rejects it with EVENT_TOO_LARGE naming event and size; a later append works', async () => {
    const store = await createMongoStore({url: url!, database})
    try {
      const huge = makeEvent({metadata: {note: 'x'.repeat(20 * 1024 * 1024)}})
      const error = await store.events.append([huge]).then(
        () => null,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(RuntimeError)
      expect((error as RuntimeError).code).toBe('EVENT_TOO_LARGE')
      expect((error as RuntimeError).message).toContain(huge.event_id)
      expect((error as RuntimeError).message).toMatch(/16 MiB|16,777,216/)
      const small = makeEvent()
      expect(await store.events.append([small])).toEqual({inserted: 1, duplicates: [], conflicts: []})
    } finally {
      await store.close()
    }
  })
})
