/**
 * `tektree reconcile` and `tektree up` as child processes on the embedded runtime of a throwaway
 * data directory (redis-server with AOF everysec + the SQLite store file): entries the store marked
 * published vanish from the streams (deleted here, as a crash that loses the AOF tail would lose
 * them), `reconcile --dry-run` reports them (exit 1), redis-server is killed -9, and the `up` that
 * restarts it republishes exactly those. Needs redis-server on PATH.
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {Redis} from 'ioredis'
import {afterAll, describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {downEmbeddedRuntime} from '../../src/embedded/index.js'
import {until} from '../contracts/helpers.js'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const dataDir = mkdtempSync(path.join(tmpdir(), 'tektree-up-reconcile-'))
const env = {...process.env, NO_COLOR: '1', TEKTREE_DATA_DIR: dataDir, TEKTREE_MONGO_BIN: '/nonexistent/mongod', TEKTREE_BUS_URL: '', TEKTREE_STORE_URL: '', TEKTREE_REDIS_URL: '', TEKTREE_MONGO_URL: ''}
afterAll(async () => {
  await downEmbeddedRuntime({dataDir, graceMs: 2_000}).catch(() => undefined)
  rmSync(dataDir, {recursive: true, force: true})
})

async function tektree(...args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  try {
    const {stdout, stderr} = await promisify(execFile)(process.execPath, [BIN, ...args], {cwd: ROOT, env, timeout: 90_000})
    return {code: 0, stdout, stderr}
  } catch (error) {
    const e = error as {code?: number; stdout?: string; stderr?: string}
    return {code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
}

describe('tektree reconcile / up: what the bus lost is published again', () => {
  it('dry run reports the lost events (exit 1); the up that restarts a killed redis-server republishes them', {timeout: 180_000}, async () => {
    const first = await tektree('up', '--json')
    expect(first.code, first.stderr).toBe(0)
    const upped = JSON.parse(first.stdout)
    expect(upped.started).toContain('redis')
    expect(upped.reconcile).toMatchObject({checked: 0, missing: 0})

    // Given: events published through the store, the outbox and the bus.
    const catalog = await loadCatalog()
    const types = ['user.registered', 'social.content.liked', 'knowledge.question.posted', 'social.user.followed']
    const lines = Array.from({length: 80}, (_, i) => JSON.stringify(exampleEvent(catalog, types[i % types.length], {seed: i + 1})))
    const file = path.join(dataDir, 'events.ndjson')
    writeFileSync(file, `${lines.join('\n')}\n`)
    const published = await tektree('publish', file, '--json')
    expect(published.code, published.stderr).toBe(0)
    expect(JSON.parse(published.stdout)).toMatchObject({published: 80, outbox_pending: 0})

    // When: the newest entry of each stream that has any is gone from the bus.
    const discovery = JSON.parse(readFileSync(path.join(dataDir, 'runtime.json'), 'utf8'))
    const admin = new Redis(discovery.redis.url, {lazyConnect: true, maxRetriesPerRequest: 1})
    const lost: string[] = []
    try {
      await admin.connect()
      for (const spec of catalog.topics()) {
        for (let p = 0; p < spec.partitions; p++) {
          const [newest] = (await admin.call('XREVRANGE', `${spec.name}:p${p}`, '+', '-', 'COUNT', '1')) as Array<[string, string[]]>
          if (!newest) continue
          lost.push(JSON.parse(newest[1][newest[1].indexOf('h') + 1]).event_id)
          await admin.xdel(`${spec.name}:p${p}`, newest[0])
        }
      }
    } finally {
      admin.disconnect()
    }
    expect(lost.length).toBeGreaterThan(3)

    // Then: a dry run lists them and fails; nothing is republished.
    const dry = await tektree('reconcile', '--dry-run', '--json')
    expect(dry.code, dry.stderr).toBe(1)
    const listed = JSON.parse(dry.stdout)
    expect(listed).toMatchObject({checked: 80, missing: lost.length, republished: 0, dryRun: true})
    expect(new Set(listed.sample.map((m: {event_id: string}) => m.event_id))).toEqual(new Set(lost))

    // redis-server dies (kill -9); the `up` that restarts it reconciles.
    process.kill(discovery.redis.pid, 'SIGKILL')
    await until(() => {
      try {
        process.kill(discovery.redis.pid, 0)
        return false
      } catch {
        return true
      }
    })
    const again = await tektree('up', '--json')
    expect(again.code, again.stderr).toBe(0)
    const restarted = JSON.parse(again.stdout)
    expect(restarted.started).toContain('redis')
    expect(restarted.reconcile).toMatchObject({missing: lost.length, republished: lost.length})

    const human = await tektree('reconcile')
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/Reconciled 80 published event\(s\) with the bus: none missing/)
  })
})
