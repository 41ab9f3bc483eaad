/**
 * The embedded runtime end to end, with real detached servers in a throwaway data dir:
 * up -> status (both real and alive) -> up again (idempotent) -> publish through a runtime attached via
 * the discovery file -> down (no process left) -> status (down). Plus a stale discovery file.
 * Needs redis-server and a MongoDB wire server (mongod or provisioned mongo-java-server).
 */
import {randomUUID} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {downEmbeddedRuntime, embeddedStatus, findMongoServer, findRedisServer, upEmbeddedRuntime, writeDiscovery} from '../../src/runtime/embedded/index.js'
import {openRuntime} from '../../src/runtime/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {createPublisher} from '../../src/runtime/publisher.js'
import {createOutboxRelay} from '../../src/runtime/relay.js'

const redisMissing = inject('redisUnavailable')
const mongoMissing = inject('mongoUnavailable')
const reason = redisMissing ?? mongoMissing
if (reason) process.stderr.write(`\n[embedded.int] SKIPPED: ${reason}\n`)

/** process.kill(pid, 0) throws ESRCH once the process is gone (reaped). */
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
  const dir = mkdtempSync(join(tmpdir(), 'tektree-embedded-'))
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  for (const dir of dirs) {
    await downEmbeddedRuntime({dataDir: dir, graceMs: 2_000}).catch(() => undefined)
    rmSync(dir, {recursive: true, force: true})
  }
})

describe.skipIf(Boolean(reason))(`embedded runtime (${reason ?? 'redis-server and a MongoDB server'})`, () => {
  it('up -> status -> publish through an attached runtime -> down leaves no process behind', async () => {
    expect(findRedisServer().ok).toBe(true)
    expect((await findMongoServer()).kind).not.toBe('none')
    const dataDir = tempDir()

    const up = await upEmbeddedRuntime({dataDir})
    expect(up.state).toBe('started')
    expect(up.started.sort()).toEqual(['mongo', 'redis'])
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(true)
    const redisPid = up.discovery.redis!.pid
    const mongoPid = up.discovery.mongo!.pid
    expect(running(redisPid)).toBe(true)
    expect(running(mongoPid)).toBe(true)
    expect(existsSync(join(dataDir, 'redis'))).toBe(true)

    const status = await embeddedStatus({dataDir})
    expect(status.state).toBe('up')
    expect(status.redis).toMatchObject({state: 'running', mode: 'embedded', alive: true, pid: redisPid})
    expect(status.mongo).toMatchObject({state: 'running', mode: 'embedded', alive: true, pid: mongoPid})
    expect(status.redis.version).toMatch(/^redis-server \d/)

    const again = await upEmbeddedRuntime({dataDir})
    expect(again.state).toBe('already-up')
    expect(again.discovery.redis!.pid).toBe(redisPid)

    // A command attaches through the discovery file and publishes through store -> outbox -> bus.
    const lines: string[] = []
    const runtime = await openRuntime({dataDir, log: (l) => lines.push(l)})
    const topic = `tektree.user`
    let before = 0
    try {
      expect(lines).toEqual([])
      const d = runtime.describe()
      expect(d.bus).toMatchObject({kind: 'redis', origin: 'embedded', pid: redisPid, location: up.discovery.redis!.url})
      expect(d.store).toMatchObject({kind: 'mongodb', origin: 'embedded', pid: mongoPid})
      expect(d.leaderboards.kind).toBe('redis')
      const catalog = await loadCatalog()
      const relay = createOutboxRelay({store: runtime.store, bus: runtime.bus, catalog, metrics: runtime.metrics, owner: `test-${randomUUID()}`})
      const publisher = createPublisher({store: runtime.store, catalog, validator: createValidator(catalog), relay, producerId: 'embedded-test'})
      await runtime.bus.ensureTopics(catalog.topics())
      before = (await runtime.bus.topics()).find((t) => t.name === topic)?.length ?? 0
      const userId = randomUUID()
      const event = publisher.draft('user.registered', {user_id: userId, username: 'embedded_test', email_hash: `sha256:${'a'.repeat(64)}`, signup_source: 'web'})
      const result = await publisher.publish([event])
      expect(result.accepted).toBe(1)
      await relay.drain(20_000)
      await relay.stop()
      expect(await runtime.store.events.get(event.event_id)).toMatchObject({event_id: event.event_id})
      expect((await runtime.bus.topics()).find((t) => t.name === topic)?.length).toBe(before + 1)
    } finally {
      await runtime.close()
    }
    // close() of an attached runtime stops nothing.
    expect(running(redisPid)).toBe(true)
    expect(running(mongoPid)).toBe(true)

    // A second, independent command sees the same bus (that is the point of `up`).
    const second = await openRuntime({dataDir, log: () => undefined})
    try {
      expect((await second.bus.topics()).find((t) => t.name === topic)?.length).toBe(before + 1)
    } finally {
      await second.close()
    }

    const down = await downEmbeddedRuntime({dataDir, graceMs: 5_000})
    expect(down.state).toBe('stopped')
    expect(down.stopped.map((s) => s.how).every((how) => how === 'terminated' || how === 'killed')).toBe(true)
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(false)
    expect(running(redisPid)).toBe(false)
    expect(running(mongoPid)).toBe(false)
    expect((await embeddedStatus({dataDir})).state).toBe('down')
    expect(existsSync(join(dataDir, 'redis'))).toBe(true) // data is kept for the next up

    const downAgain = await downEmbeddedRuntime({dataDir})
    expect(downAgain.state).toBe('not-running')
  })

  it('status reports a discovery file whose servers are gone as stale, and removes it', async () => {
    const dataDir = tempDir()
    const deadPid = 2_000_000_000 // above any pid_max: never a live process
    writeDiscovery(dataDir, {
      version: 1,
      started_at: new Date().toISOString(),
      data_dir: dataDir,
      started_by_pid: deadPid,
      redis: {url: 'redis://127.0.0.1:1', port: 1, pid: deadPid, version: 'redis-server 7', data_dir: dataDir, persistent: true, command: 'redis-server'},
    })
    const status = await embeddedStatus({dataDir})
    expect(status.state).toBe('stale')
    expect(status.cleaned).toContain(String(deadPid))
    expect(status.redis.state).toBe('dead')
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(false)
  })

  it('status cleans an unreadable discovery file', async () => {
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'runtime.json'), '{not json')
    const status = await embeddedStatus({dataDir})
    expect(status.state).toBe('stale')
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(false)
  })
})
