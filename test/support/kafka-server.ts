/**
 * The Kafka broker of the integration tier: src/embedded/kafka-server.ts (single-node KRaft) with a
 * throwaway directory on free ports, shared by every Kafka test (each uses its own topics and
 * groups). Fault tests start their own.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {startKafkaServer as startEmbedded} from '../../src/embedded/kafka-server.js'

export async function startKafkaServer(): Promise<{url: string; version: string; stop: () => Promise<void>}> {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-kafka-'))
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
