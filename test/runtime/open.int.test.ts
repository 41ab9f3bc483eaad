/**
 * openRuntime with real servers: attaching to the runtime `tektree up` left running (found through
 * the discovery file), external URLs, and servers started for one command and stopped by close().
 */
import {randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {downEmbeddedRuntime, upEmbeddedRuntime} from '../../src/runtime/embedded/index.js'
import {openRuntime} from '../../src/runtime/open.js'

const redisUrl = inject('redisUrl')
const mongoUrl = inject('mongoUrl')
const reason = inject('redisUnavailable') ?? inject('mongoUnavailable')
if (reason) process.stderr.write(`\n[open.int] SKIPPED: ${reason}\n`)

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

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
    } finally {
      await runtime.close()
    }
    expect(running(up.discovery.redis!.pid)).toBe(true) // attached, not owned
    // ephemeral never attaches
    const own = await openRuntime({dataDir, ephemeral: true, redisUrl: redisUrl!, mongoUrl: mongoUrl!, database: `test-${randomUUID()}`, log: () => undefined})
    try {
      expect(own.describe().bus.origin).toBe('external')
    } finally {
      await own.close()
    }
  })

  it('starts a redis-server for one command when nothing is up, and close() stops it', async () => {
    const lines: string[] = []
    const runtime = await openRuntime({dataDir: tempDir(), mongoUrl: mongoUrl!, database: `test-${randomUUID()}`, log: (l) => lines.push(l)})
    const pid = runtime.describe().bus.pid!
    try {
      expect(runtime.describe().bus).toMatchObject({kind: 'redis', origin: 'embedded'})
      expect(running(pid)).toBe(true)
      expect(lines.filter((l) => l.includes('for this command only'))).toHaveLength(1)
    } finally {
      await runtime.close()
    }
    expect(running(pid)).toBe(false)
  })
})
