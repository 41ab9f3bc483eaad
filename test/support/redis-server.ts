/**
 * The redis-server of the integration tier: src/embedded/redis-server.ts with a throwaway
 * directory, no persistence, on a free port. Fault tests start their own (see redis-faults.int.test.ts).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Redis} from 'ioredis'
import {startRedisServer as startEmbedded} from '../../src/embedded/redis-server.js'
import {deleteKeys} from '../../src/adapters/redis/connection.js'

export async function startRedisServer(): Promise<{url: string; version: string; stop: () => Promise<void>}> {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-redis-'))
  try {
    const handle = await startEmbedded({dir})
    return {
      url: handle.url,
      version: handle.version,
      stop: async () => {
        await handle.stop()
        rmSync(dir, {recursive: true, force: true})
      },
    }
  } catch (error) {
    rmSync(dir, {recursive: true, force: true})
    throw error
  }
}

/** Removes a test's keys (`prefix:*`) on its own short-lived connection, whatever state the test left its clients in. */
export async function deleteTestKeys(url: string, prefix: string): Promise<void> {
  const admin = new Redis(url, {lazyConnect: true, maxRetriesPerRequest: 1})
  try {
    await admin.connect()
    await deleteKeys(admin, `${prefix}:*`)
  } finally {
    admin.disconnect()
  }
}
