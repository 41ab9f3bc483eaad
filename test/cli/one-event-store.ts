/** A SQLite store file holding one user.registered event, appended and not yet on any bus. */
import {randomUUID} from 'node:crypto'
import path from 'node:path'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'

export async function storeWithOneEvent(dir: string): Promise<{file: string; eventId: string}> {
  const file = path.join(dir, 'store.db')
  const store = await createSqliteStore({path: file})
  const eventId = randomUUID()
  try {
    await store.events.append([
      {
        event_id: eventId,
        event_type: 'user.registered',
        event_version: '1.0.0',
        timestamp: new Date().toISOString(),
        source_service: 'user',
        payload: {user_id: randomUUID(), username: 'ada_l', email_hash: `sha256:${'0'.repeat(64)}`, signup_source: 'web'},
        trace_id: randomUUID().replaceAll('-', ''),
        correlation_id: eventId,
        causation_id: null,
        producer_id: 'test',
        metadata: {},
      },
    ])
  } finally {
    await store.close()
  }
  return {file, eventId}
}
