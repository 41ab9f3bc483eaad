/** The archive suite (./archive-suite.ts) on the MongoDB store (a real mongod, else mongo-java-server). */
import {randomUUID} from 'node:crypto'
import {MongoClient} from 'mongodb'
import {afterAll, beforeAll, describe, inject} from 'vitest'
import {createMongoStore} from '../../src/adapters/mongo/store.js'
import {archiveSuite} from './archive-suite.js'

const url = inject('mongoUrl')

describe.skipIf(url === null)(`archive on MongoDB (${inject('mongoServer') ?? `skipped: ${inject('mongoUnavailable')}`})`, () => {
  let admin: MongoClient
  beforeAll(async () => {
    admin = new MongoClient(url!, {serverSelectionTimeoutMS: 5_000})
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.close()
  })

  archiveSuite('MongoDB store', async () => {
    const database = `archive-${randomUUID()}`
    const store = await createMongoStore({url: url!, database})
    return {store, cleanup: async () => void (await admin.db(database).dropDatabase())}
  })
})
