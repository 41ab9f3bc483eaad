/**
 * openRuntime without servers: the in-process engine, fallbacks when no server binary can be had,
 * and unreachable external URLs (a refused port, and a port that accepts but never answers).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {randomUUID} from 'node:crypto'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/runtime/open.js'
import {isUserError, UserError} from '../../src/errors.js'
import {writeDiscovery} from '../../src/runtime/embedded/discovery.js'
import {runtimeOptionsFromFlags} from '../../src/cli/runtime-flags.js'

let dataDir: string
const savedEnv = {...process.env}

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'tektree-open-'))
})

afterEach(() => {
  rmSync(dataDir, {recursive: true, force: true})
  for (const key of ['TEKTREE_REDIS_BIN', 'TEKTREE_MONGO_BIN']) {
    if (savedEnv[key] === undefined) delete process.env[key]
    else process.env[key] = savedEnv[key]
  }
})

async function rejection(promise: Promise<unknown>): Promise<UserError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  expect(isUserError(error), `expected a UserError, got ${String(error)}`).toBe(true)
  return error as UserError
}

describe('openRuntime({inProcess: true})', () => {
  it('gives in-process adapters, logs nothing, and works end to end', async () => {
    const lines: string[] = []
    const runtime = await openRuntime({inProcess: true, dataDir, log: (l) => lines.push(l)})
    try {
      expect(lines).toEqual([])
      const d = runtime.describe()
      for (const part of [d.bus, d.store, d.leaderboards]) expect(part).toMatchObject({kind: 'memory', location: 'in-process', origin: 'in-process'})
      expect(runtime.bus.kind).toBe('memory')
      expect(runtime.store.kind).toBe('memory')
      const topic = `test-${randomUUID()}`
      await runtime.bus.ensureTopics([{name: topic, partitions: 1}])
      await runtime.bus.publish([{topic, key: 'k', value: '{}', headers: {}}])
      expect((await runtime.bus.read(topic, 0, null, 10)).length).toBe(1)
      expect(await runtime.leaderboards.incrementOnce('b', 'm', 5, 'e1')).toBe(5)
      runtime.metrics.published('t', 1)
      expect(runtime.metrics.snapshot().totals.published).toBe(1)
    } finally {
      await runtime.close()
    }
    await runtime.close() // idempotent
  })

  it('ignores a discovery file: in-process means nothing is shared', async () => {
    writeDiscovery(dataDir, {
      version: 1,
      started_at: new Date().toISOString(),
      data_dir: dataDir,
      started_by_pid: process.pid,
      redis: {url: 'redis://127.0.0.1:1', port: 1, pid: process.pid, version: 'x', data_dir: dataDir, persistent: true, command: 'node'},
    })
    const runtime = await openRuntime({inProcess: true, dataDir, log: () => undefined})
    expect(runtime.describe().bus.origin).toBe('in-process')
    await runtime.close()
  })

  it('refuses --in-process together with a URL', async () => {
    const error = await rejection(openRuntime({inProcess: true, redisUrl: 'redis://127.0.0.1:6379', dataDir}))
    expect(error.exitCode).toBe(2)
  })
})

describe('fallback to in-process when no server binary can be had', () => {
  it('logs ONE line per part, saying why, that other terminals cannot attach, and how to get the real one', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    process.env.TEKTREE_MONGO_BIN = join(dataDir, 'no-such-mongod')
    const lines: string[] = []
    const runtime = await openRuntime({dataDir, log: (l) => lines.push(l)})
    try {
      const d = runtime.describe()
      expect(d.bus).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(d.store).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(d.leaderboards).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(d.bus.fallbackReason).toContain('no-such-redis-server')
      const busLines = lines.filter((l) => l.includes('the bus runs in-process'))
      const storeLines = lines.filter((l) => l.includes('the store runs in-process'))
      expect(busLines).toHaveLength(1)
      expect(storeLines).toHaveLength(1)
      expect(lines).toHaveLength(2)
      expect(busLines[0]).toContain('TEKTREE_REDIS_BIN')
      expect(busLines[0]).toContain('other terminals cannot attach')
      expect(busLines[0]).toContain('apt-get install -y redis-server')
      expect(busLines[0]).toContain('--redis-url')
      expect(storeLines[0]).toContain('--mongo-url')
    } finally {
      await runtime.close()
    }
  })
})

describe('unreachable external URLs', () => {
  let silent: Server | undefined
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()))
    silent = undefined
  })

  it('Redis: a refused port is a UserError (exit 2) naming the masked URL and what to check', async () => {
    const error = await rejection(openRuntime({redisUrl: 'redis://admin:s3cret-pw@127.0.0.1:1/0', dataDir, log: () => undefined}))
    expect(error.exitCode).toBe(2)
    expect(error.code).toBe('REDIS_UNREACHABLE')
    expect(error.message).toContain('redis://admin:****@127.0.0.1:1')
    expect(error.message).not.toContain('s3cret-pw')
    expect(JSON.stringify(error.toContract())).not.toContain('s3cret-pw')
    expect(error.hint).toMatch(/host, port, password/)
  })

  it('Redis: a server that accepts but never answers fails within the connect bound', async () => {
    silent = createServer((socket) => sockets.push(socket))
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', () => r()))
    const port = (silent.address() as {port: number}).port
    const error = await rejection(openRuntime({redisUrl: `redis://127.0.0.1:${port}`, dataDir, connectTimeoutMs: 300, log: () => undefined}))
    expect(error.message).toContain(`redis://127.0.0.1:${port}`)
    expect(error.exitCode).toBe(2)
  })

  it('MongoDB: a refused port is a UserError (exit 2) naming the masked URL', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server') // keep the bus in-process
    const error = await rejection(
      openRuntime({mongoUrl: 'mongodb://app:hunter2@127.0.0.1:1/tektree', dataDir, connectTimeoutMs: 500, log: () => undefined}),
    )
    expect(error.exitCode).toBe(2)
    expect(error.code).toBe('MONGO_UNREACHABLE')
    expect(error.message).toContain('mongodb://app:****@127.0.0.1:1')
    expect(error.message).not.toContain('hunter2')
  })
})

describe('runtimeOptionsFromFlags', () => {
  it('maps the runtime flags to openRuntime options', () => {
    expect(runtimeOptionsFromFlags({'redis-url': 'redis://h:1', 'in-process': false}, {dataDir: '/x'})).toEqual({
      dataDir: '/x',
      redisUrl: 'redis://h:1',
      inProcess: false,
    })
    expect(runtimeOptionsFromFlags({'in-process': true})).toEqual({inProcess: true})
  })
})
