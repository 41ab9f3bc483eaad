/** `tektree status` counts the outbox entries the relay quarantined in the data directory's store file. */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'
import {embeddedStatus, storeFilePath} from '../../src/embedded/index.js'
import {makeEvent} from '../contracts/helpers.js'

// No mongod for this status: the data directory's store is the SQLite file.
process.env.TEKTREE_MONGO_BIN = '/nonexistent/mongod'
const dataDir = mkdtempSync(join(tmpdir(), 'tektree-status-q-'))
afterAll(() => rmSync(dataDir, {recursive: true, force: true}))

describe('status: quarantined outbox entries', () => {
  it('shows how many events the relay set aside', async () => {
    const store = await createSqliteStore({path: storeFilePath(dataDir)})
    const [a, b] = [makeEvent(), makeEvent()]
    await store.events.append([a, b])
    const at = new Date().toISOString()
    await store.outbox.quarantine([{event_id: a.event_id, error: {error: {code: 'UNKNOWN_TOPIC', message: 'no such topic', details: {}}}, attempts: 5, first_failure_at: at, last_failure_at: at}])
    await store.close()
    const status = await embeddedStatus({dataDir})
    expect(status.store).toMatchObject({kind: 'sqlite', events: 2, quarantined: 1})
  })
})
