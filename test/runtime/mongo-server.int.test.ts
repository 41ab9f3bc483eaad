/**
 * The local MongoDB wire-protocol server launcher (src/embedded/mongo-server.ts): it starts
 * whatever this machine has (mongod, else mongo-java-server), answers on loopback, stops and can be
 * crashed, and explains itself when nothing can be started. Needs the same prerequisites as the
 * server global-setup started, so it is skipped (with the reason) exactly when that one is.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {MongoClient} from 'mongodb'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {startMongoServer, type MongoServerHandle} from '../../src/embedded/mongo-server.js'
import {until} from '../contracts/helpers.js'

const url = inject('mongoUrl')

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function ping(serverUrl: string): Promise<unknown> {
  const client = new MongoClient(serverUrl, {serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000})
  try {
    return await client.db('admin').command({ping: 1})
  } finally {
    await client.close()
  }
}

describe.skipIf(url === null)(`startMongoServer (${inject('mongoServer') ?? inject('mongoUnavailable')})`, () => {
  const dirs: string[] = []
  const handles: MongoServerHandle[] = []
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-mongo-test-'))
    dirs.push(dir)
    return dir
  }
  afterEach(async () => {
    await Promise.allSettled(handles.splice(0).map((h) => h.kill9()))
    for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
  })

  it('starts a server on loopback that answers, names itself, and stops', async () => {
    const handle = await startMongoServer({dir: tempDir()})
    handles.push(handle)
    expect(handle.url).toBe(`mongodb://127.0.0.1:${handle.port}`)
    expect(handle.server).toMatch(/^(mongod \d+\.\d+|mongo-java-server \d+\.\d+\.\d+ \(memory backend\))/)
    expect(await ping(handle.url)).toMatchObject({ok: 1})
    expect(alive(handle.pid)).toBe(true)
    await handle.stop()
    expect(alive(handle.pid)).toBe(false)
    await expect(ping(handle.url)).rejects.toThrow()
    await handle.stop() // idempotent
  })

  it('kill9 crashes it', async () => {
    const handle = await startMongoServer({dir: tempDir()})
    handles.push(handle)
    await handle.kill9()
    await until(() => !alive(handle.pid), {message: 'the killed server is gone'})
    await expect(ping(handle.url)).rejects.toThrow()
  })

  it('when nothing can be started, says what it tried and how to get each', async () => {
    const saved = process.env.TEKTREE_MONGO_JAVA_SERVER_CP
    process.env.TEKTREE_MONGO_JAVA_SERVER_CP = join(tempDir(), 'no-jars-here', '*')
    try {
      const error = await startMongoServer({dir: tempDir(), skip: ['mongod'], readyTimeoutMs: 60_000}).then(
        (handle) => {
          handles.push(handle)
          return null
        },
        (reason: Error) => reason,
      )
      expect(error).toBeInstanceOf(Error)
      expect(error!.message).toMatch(/No MongoDB wire-protocol server could be started/)
      expect(error!.message).toMatch(/mongo-java-server: java exited/)
    } finally {
      if (saved === undefined) delete process.env.TEKTREE_MONGO_JAVA_SERVER_CP
      else process.env.TEKTREE_MONGO_JAVA_SERVER_CP = saved
    }
    const nothing = await startMongoServer({dir: tempDir(), skip: ['mongo-java-server'], port: 1}).then(
      (handle) => {
        handles.push(handle)
        return null
      },
      (reason: Error) => reason,
    )
    // Without the Java server, either a mongod exists (then it failed on port 1, or started) or the
    // message says how to install one.
    if (nothing) expect(nothing.message).toMatch(/mongod/)
  })
})
