/**
 * The MongoDB wire-protocol server of the integration tier: a real mongod when one is installed,
 * else mongo-java-server (see src/embedded/mongo-server.ts), with a throwaway data directory.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {startMongoServer as startEmbedded} from '../../src/embedded/mongo-server.js'

export async function startMongoServer(): Promise<{url: string; server: string; stop: () => Promise<void>}> {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-mongo-'))
  try {
    const handle = await startEmbedded({dir})
    return {
      url: handle.url,
      server: handle.server,
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
