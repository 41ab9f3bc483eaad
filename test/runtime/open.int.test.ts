/**
 * openRuntime with real servers: attaching to the runtime `tektree up` left running (found through
 * the discovery file), external URLs (a MongoDB store by URL, whose endpoint names its database), and
 * servers started for one command and stopped by close(). More in embedded.int.test.ts.
 */
import {isAlive} from '../../src/embedded/discovery.js'
import {randomUUID} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {downEmbeddedRuntime, upEmbeddedRuntime} from '../../src/embedded/index.js'
import {openRuntime} from '../../src/adapters/open.js'

const redisUrl = inject('redisUrl')
const mongoUrl = inject('mongoUrl')
const reason = inject('redisUnavailable') ?? inject('mongoUnavailable')
const redisReason = inject('redisUnavailable')
if (reason) process.stderr.write(`\n[open.int] SKIPPED: ${reason}\n`)


const dirs: string[] = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-open-int-'))
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  for (const dir of dirs) {
    await downEmbeddedRuntime({dataDir: dir, graceMs: 2_000}).catch(() => undefined)
    rmSync(dir, {recursive: true, force: true})
  }
})

describe.skipIf(Boolean(reason))(`openRuntime with real servers (${reason ?? 'redis-server and a MongoDB server'})`, () => {
  it('attaches to the bus of a running embedded runtime through the discovery file', async () => {
    const dataDir = tempDir()
    const up = await upEmbeddedRuntime({dataDir, skip: ['mongo']})
    const lines: string[] = []
    const runtime = await openRuntime({dataDir, mongoUrl: mongoUrl!, database: `test-${randomUUID()}`, log: (l) => lines.push(l)})
    try {
      const d = runtime.describe()
      expect(d.bus).toMatchObject({kind: 'redis', origin: 'embedded', location: up.discovery.redis!.url, pid: up.discovery.redis!.pid})
      expect(d.leaderboards).toMatchObject({kind: 'redis', origin: 'embedded'})
      expect(d.store).toMatchObject({kind: 'mongodb', origin: 'external'})
      expect(lines).toEqual([])
      const board = `test-${randomUUID()}`
      expect(await runtime.leaderboards.incrementOnce(board, 'u1', 3, 'e1')).toBe(3)
      await runtime.leaderboards.drop(board)
      // The store's endpoint names its database: a worker opening it writes where the parent reads.
      expect(runtime.endpoints.bus).toBe(up.discovery.redis!.url)
      expect(runtime.endpoints.store).toMatch(/\/test-[0-9a-f-]+$/)
      const worker = await openRuntime({busUrl: runtime.endpoints.bus!, storeUrl: runtime.endpoints.store!, ephemeral: true, log: (l) => lines.push(l)})
      try {
        await worker.store.projections.update('test_docs', 'd1', {$set: {n: 1}})
      } finally {
        await worker.close()
      }
      expect(await runtime.store.projections.get('test_docs', 'd1')).toMatchObject({n: 1})
      expect(lines).toEqual([])
    } finally {
      await runtime.close()
    }
    expect(isAlive(up.discovery.redis!.pid)).toBe(true) // attached, not owned
    // ephemeral never attaches
    const own = await openRuntime({dataDir, ephemeral: true, redisUrl: redisUrl!, mongoUrl: mongoUrl!, database: `test-${randomUUID()}`, log: () => undefined})
    try {
      expect(own.describe().bus.origin).toBe('external')
    } finally {
      await own.close()
    }
  })

})

describe.skipIf(Boolean(redisReason))(`openRuntime with redis-server (${redisReason ?? 'redis-server'})`, () => {
  it('starts a redis-server for one command when nothing is up, and close() stops it', async () => {
    const lines: string[] = []
    const runtime = await openRuntime({dataDir: tempDir(), storeUrl: 'memory:', log: (l) => lines.push(l)})
    const pid = runtime.describe().bus.pid!
    try {
      expect(runtime.describe().bus).toMatchObject({kind: 'redis', origin: 'embedded'})
      expect(isAlive(pid)).toBe(true)
      expect(lines.filter((l) => l.includes('for this command'))).toHaveLength(1)
    } finally {
      await runtime.close()
    }
    expect(isAlive(pid)).toBe(false)
  })
})
