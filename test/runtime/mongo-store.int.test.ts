/** The Store contract against MongoDB (a real mongod, else mongo-java-server: see test/support/mongo-server.ts). */
import {randomUUID} from 'node:crypto'
import {MongoClient} from 'mongodb'
import {afterAll, beforeAll, describe, inject} from 'vitest'
import {createMongoStore} from '../../src/adapters/mongo/store.js'
import {storeContract} from '../contracts/store.contract.js'

const url = inject('mongoUrl')
const unavailable = inject('mongoUnavailable')

describe.skipIf(url === null)(`MongoStore on ${inject('mongoServer') ?? `nothing (${unavailable})`}`, () => {
  let admin: MongoClient
  beforeAll(async () => {
    admin = new MongoClient(url!, {serverSelectionTimeoutMS: 5_000})
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.close()
  })

  storeContract('MongoStore', async () => {
    const database = `t-${randomUUID()}`
    const store = await createMongoStore({url: url!, database})
    return {store, cleanup: async () => void (await admin.db(database).dropDatabase())}
  })
})
