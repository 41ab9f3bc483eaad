/**
 * The redis-server of the integration tier: src/runtime/embedded/redis-server.ts with a throwaway
 * directory, no persistence, on a free port. Fault tests start their own (see redis-faults.int.test.ts).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {startRedisServer as startEmbedded} from '../../src/runtime/embedded/redis-server.js'

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
