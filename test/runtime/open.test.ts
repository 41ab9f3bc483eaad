/**
 * openRuntime without servers: the in-process engine, the SQLite store file shared through the data
 * dir, the driver table (URLs by scheme), the in-process bus when no redis-server can be had,
 * unreachable external URLs (a refused port, and a port that accepts but never answers), and parts
 * that runtime.json lists but that do not answer (a failure, never a silent private replacement).
 */
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {randomUUID} from 'node:crypto'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {isUserError, UserError} from '../../src/errors.js'
import {makeEvent} from '../contracts/helpers.js'
import {writeDiscovery, type Discovery} from '../../src/embedded/discovery.js'
import {normalizeRuntimeFlags, runtimeOptionsFromFlags, type RuntimeFlagValues} from '../../src/cli/runtime-flags.js'
import {driverFor, knownSchemes, mongoDatabaseFor, schemeOf, sqlitePathOf, withMongoDatabase} from '../../src/adapters/drivers.js'

let dataDir: string
const savedEnv = {...process.env}

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'tektree-open-'))
})

afterEach(() => {
  rmSync(dataDir, {recursive: true, force: true})
  for (const key of ['TEKTREE_REDIS_BIN', 'TEKTREE_MONGO_BIN', 'TEKTREE_MONGO_DB']) {
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
      expect(runtime.endpoints).toEqual({bus: null, store: null}) // in-process parts cannot be shared
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
      version: 2,
      data_dir: dataDir,
      up: {started_at: new Date().toISOString(), started_by_pid: process.pid},
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

describe('without `tektree up`: the store file of the data dir, and the bus in-process when no redis-server can be had', () => {
  it('logs ONE line for the bus (why, that other terminals cannot attach, how to get the real one); the store is <dataDir>/store.db, silently', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    process.env.TEKTREE_MONGO_BIN = join(dataDir, 'no-such-mongod')
    const lines: string[] = []
    const runtime = await openRuntime({dataDir, log: (l) => lines.push(l)})
    try {
      const d = runtime.describe()
      expect(d.bus).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(d.leaderboards).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(d.bus.fallbackReason).toContain('no-such-redis-server')
      expect(d.store).toMatchObject({kind: 'sqlite', origin: 'embedded', location: `sqlite:${join(dataDir, 'store.db')}`})
      expect(d.store.version).toMatch(/^SQLite \d/)
      expect(runtime.endpoints).toEqual({bus: null, store: `sqlite:${join(dataDir, 'store.db')}`})
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain('the bus runs in-process')
      expect(lines[0]).toContain('TEKTREE_REDIS_BIN')
      expect(lines[0]).toContain('other terminals cannot attach')
      expect(lines[0]).toContain('apt-get install -y redis-server')
      expect(lines[0]).toContain('--bus-url')
      expect(existsSync(join(dataDir, 'store.db'))).toBe(true)
    } finally {
      await runtime.close()
    }
    expect(existsSync(join(dataDir, 'store.db'))).toBe(true) // close() keeps the data
  })

  it('two runtimes of one data dir share the store, and it survives them', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    const first = await openRuntime({dataDir, log: () => undefined})
    const second = await openRuntime({dataDir, log: () => undefined})
    try {
      await first.store.events.append([envelope('e1')])
      expect(await second.store.events.get('e1')).toMatchObject({event_id: 'e1'})
    } finally {
      await first.close()
      await second.close()
    }
    const third = await openRuntime({dataDir, log: () => undefined})
    try {
      expect(await third.store.events.count()).toBe(1)
    } finally {
      await third.close()
    }
  })

  it('ephemeral: a private store file in a temp dir, removed by close(); the data dir is left alone', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    const runtime = await openRuntime({dataDir, ephemeral: true, log: () => undefined})
    const path = runtime.endpoints.store!.slice('sqlite:'.length)
    expect(path.startsWith(dataDir)).toBe(false)
    expect(existsSync(path)).toBe(true)
    await runtime.close()
    expect(existsSync(path)).toBe(false)
    expect(existsSync(join(dataDir, 'store.db'))).toBe(false)
  })
})

const envelope = (id: string) => makeEvent({event_id: id})

describe('URLs by scheme (the driver table)', () => {
  it('an unknown scheme, or a URL of the wrong part, is a UserError (exit 2) listing the URLs that part accepts', async () => {
    const unknown = await rejection(openRuntime({busUrl: 'nats://127.0.0.1:4222', dataDir, log: () => undefined}))
    expect(unknown.exitCode).toBe(2)
    expect(unknown.code).toBe('INVALID_URL')
    expect(unknown.message).toContain('unknown scheme "nats:"')
    expect(unknown.hint).toContain('redis://HOST:PORT')
    expect(unknown.hint).toContain('kafka://HOST:PORT')
    expect(unknown.hint).toContain('memory:')
    const wrong = await rejection(openRuntime({storeUrl: 'redis://127.0.0.1:6379', dataDir, log: () => undefined}))
    expect(wrong.message).toContain('cannot serve as the store')
    expect(wrong.hint).toContain('sqlite:PATH')
    expect(wrong.hint).toContain('mongodb://HOST:PORT/DATABASE')
    const kafkaStore = await rejection(openRuntime({storeUrl: 'kafka://127.0.0.1:9092', dataDir, log: () => undefined}))
    expect(kafkaStore.message).toContain('a kafka URL cannot serve as the store')
    const alias = await rejection(openRuntime({redisUrl: 'http://x', dataDir, log: () => undefined}))
    expect(alias.message).toContain('--redis-url')
    expect(knownSchemes('bus')).toEqual(['redis://', 'rediss://', 'kafka://', 'memory:'])
    expect(knownSchemes('store')).toEqual(['mongodb://', 'mongodb+srv://', 'sqlite:', 'memory:'])
    expect(() => driverFor('no scheme at all', 'bus', '--bus-url')).toThrow(/not a URL/)
  })

  it('kafka:// URLs: brokers read from the URL (9092 by default); one naming no broker is a usage error', async () => {
    const {brokersOf} = await import('../../src/adapters/kafka/bus.js')
    expect(brokersOf('kafka://h1:9093,h2')).toEqual(['h1:9093', 'h2:9092'])
    expect(brokersOf('KAFKA://127.0.0.1:1/ignored?x=1')).toEqual(['127.0.0.1:1'])
    const none = await rejection(openRuntime({busUrl: 'kafka://', dataDir, log: () => undefined}))
    expect(none).toMatchObject({code: 'INVALID_URL', exitCode: 2})
    expect(none.hint).toContain('kafka://HOST:PORT')
  })

  it('reads schemes, SQLite paths and MongoDB databases', () => {
    expect(schemeOf('REDIS://h:1')).toBe('redis:')
    expect(schemeOf('mongodb+srv://c.example.net')).toBe('mongodb+srv:')
    expect(sqlitePathOf('sqlite:/abs/store.db')).toBe('/abs/store.db')
    expect(sqlitePathOf('sqlite:///abs/store.db')).toBe('/abs/store.db')
    expect(sqlitePathOf('sqlite::memory:')).toBe(':memory:')
    expect(sqlitePathOf('sqlite:rel/store.db')).toBe(join(process.cwd(), 'rel/store.db'))
    expect(() => sqlitePathOf('sqlite:')).toThrow(/names no file/)
    expect(withMongoDatabase('mongodb://u:p@h1:1,h2:2/?replicaSet=rs', 'tt')).toBe('mongodb://u:p@h1:1,h2:2/tt?replicaSet=rs')
    expect(withMongoDatabase('mongodb://h:1', 'tt')).toBe('mongodb://h:1/tt')
    delete process.env.TEKTREE_MONGO_DB
    expect(mongoDatabaseFor('mongodb://h:1/app')).toBe('app')
    expect(mongoDatabaseFor('mongodb://h:1/app', 'explicit')).toBe('explicit')
    expect(mongoDatabaseFor('mongodb://h:1')).toBe('tektree')
  })

  it('memory: and sqlite: URLs: in-process bus, a store file, endpoints a worker reopens to see the same store', async () => {
    const file = join(dataDir, 'elsewhere.db')
    const lines: string[] = []
    const parent = await openRuntime({busUrl: 'memory:', storeUrl: `sqlite:${file}`, dataDir, log: (l) => lines.push(l)})
    try {
      expect(lines).toEqual([])
      expect(parent.describe().bus).toMatchObject({kind: 'memory', origin: 'in-process'})
      expect(parent.describe().store).toMatchObject({kind: 'sqlite', origin: 'external', location: `sqlite:${file}`})
      expect(parent.endpoints).toEqual({bus: null, store: `sqlite:${file}`})
      const worker = await openRuntime({storeUrl: parent.endpoints.store!, busUrl: 'memory:', ephemeral: true, log: (l) => lines.push(l)})
      try {
        await parent.store.events.append([envelope('shared-1')])
        expect(await worker.store.events.get('shared-1')).toMatchObject({event_id: 'shared-1'})
        expect(worker.endpoints.store).toBe(parent.endpoints.store)
      } finally {
        await worker.close()
      }
      expect(lines).toEqual([])
      expect(existsSync(join(dataDir, 'store.db'))).toBe(false) // a URL never touches the data dir's store
    } finally {
      await parent.close()
    }
  })

  it('the new option and its older alias: the same URL is fine, two different ones are a usage error', async () => {
    const same = await openRuntime({busUrl: 'memory:', redisUrl: 'memory:', storeUrl: 'memory:', mongoUrl: 'memory:', dataDir, log: () => undefined})
    await same.close()
    const error = await rejection(openRuntime({busUrl: 'memory:', redisUrl: 'redis://127.0.0.1:1', dataDir, log: () => undefined}))
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain('--bus-url')
    expect(error.message).toContain('--redis-url')
    const inProcess = await rejection(openRuntime({inProcess: true, storeUrl: 'sqlite::memory:', dataDir}))
    expect(inProcess.exitCode).toBe(2)
  })
})

describe('a part runtime.json lists that does not answer: the command fails, it never runs that part privately', () => {
  let silent: Server | undefined
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()))
    silent = undefined
  })

  /** A TCP port that accepts connections and never answers (a hung server). */
  async function silentPort(): Promise<number> {
    silent = createServer((socket) => sockets.push(socket))
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', () => r()))
    return (silent.address() as {port: number}).port
  }

  // The pid is this test's own process (alive; its command line says node): a live, hung server.
  const server = (url: string, port: number, pid = process.pid) => ({url, port, pid, version: 'redis-server 7', data_dir: dataDir, persistent: true, command: 'node'})

  it('the bus: alive but no PING within the timeout is a UserError naming it, its pid and port, and what to do (exit 2)', async () => {
    const port = await silentPort()
    const discovery: Discovery = {version: 2, data_dir: dataDir, up: {started_at: new Date().toISOString(), started_by_pid: 1}, redis: server(`redis://127.0.0.1:${port}`, port)}
    writeDiscovery(dataDir, discovery)
    const lines: string[] = []
    const started = Date.now()
    const error = await rejection(openRuntime({dataDir, connectTimeoutMs: 300, log: (l) => lines.push(l)}))
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(error.exitCode).toBe(2)
    expect(error.code).toBe('EMBEDDED_NOT_ANSWERING')
    expect(error.message).toContain('bus')
    expect(error.message).toContain(`pid ${process.pid}`)
    expect(error.message).toContain(`port ${port}`)
    expect(error.hint).toContain('tektree up')
    expect(error.hint).toContain('tektree down')
    expect(lines).toEqual([]) // no "running in-process" line: nothing ran privately
  })

  it('the same from a v1 discovery file (written by the tektree before this one)', async () => {
    const port = await silentPort()
    writeFileSync(
      join(dataDir, 'runtime.json'),
      JSON.stringify({version: 1, started_at: new Date().toISOString(), data_dir: dataDir, started_by_pid: 1, redis: server(`redis://127.0.0.1:${port}`, port)}),
    )
    const error = await rejection(openRuntime({dataDir, connectTimeoutMs: 300, log: () => undefined}))
    expect(error.code).toBe('EMBEDDED_NOT_ANSWERING')
  })

  it('the bus: a listed server whose pid is gone is a UserError saying `tektree up` restarts it on its port', async () => {
    const deadPid = 2_000_000_000 // above any pid_max
    writeDiscovery(dataDir, {version: 2, data_dir: dataDir, up: {started_at: new Date().toISOString(), started_by_pid: 1}, redis: server('redis://127.0.0.1:1', 1, deadPid)})
    const error = await rejection(openRuntime({dataDir, connectTimeoutMs: 300, log: () => undefined}))
    expect(error.code).toBe('EMBEDDED_PART_DOWN')
    expect(error.exitCode).toBe(2)
    expect(error.hint).toContain('restarts it on port 1')
  })

  it('the store: a listed mongod that does not answer', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    const port = await silentPort()
    writeDiscovery(dataDir, {
      version: 2,
      data_dir: dataDir,
      up: {started_at: new Date().toISOString(), started_by_pid: 1},
      mongo: {...server(`mongodb://127.0.0.1:${port}`, port), version: 'mongod 7.0.14'},
    })
    const error = await rejection(openRuntime({dataDir, connectTimeoutMs: 300, log: () => undefined}))
    expect(error.code).toBe('EMBEDDED_NOT_ANSWERING')
    expect(error.message).toContain('store')
    expect(error.message).toContain(`port ${port}`)
  })

  it('the store: the listed store file cannot be opened', async () => {
    process.env.TEKTREE_REDIS_BIN = join(dataDir, 'no-such-redis-server')
    const path = join(dataDir, 'store.db')
    writeFileSync(path, 'this is not a SQLite database, just some text that is long enough to be read as a header by SQLite')
    writeDiscovery(dataDir, {version: 2, data_dir: dataDir, up: {started_at: new Date().toISOString(), started_by_pid: 1}, sqlite: {url: `sqlite:${path}`, path, version: 'SQLite 3'}})
    const error = await rejection(openRuntime({dataDir, log: () => undefined}))
    expect(error.code).toBe('STORE_CORRUPT')
    expect(error.message).toContain(path)
    expect(error.hint).toContain('tektree down --purge')
  })

  it('without up, a bad store file fails the command before any redis-server is started for it', async () => {
    const path = join(dataDir, 'store.db')
    writeFileSync(path, 'this is not a SQLite database, just some text that is long enough to be read as a header by SQLite')
    const lines: string[] = []
    const error = await rejection(openRuntime({dataDir, log: (l) => lines.push(l)}))
    expect(error.code).toBe('STORE_CORRUPT')
    expect(error.hint).toContain('--store-url')
    expect(lines).toEqual([])
    expect(existsSync(join(dataDir, 'redis'))).toBe(false)
    expect(existsSync(join(dataDir, 'runtime.json'))).toBe(false)
  })

  it('a discovery file from a newer tektree is neither used nor overwritten', async () => {
    writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify({version: 99, data_dir: dataDir}))
    const error = await rejection(openRuntime({dataDir, log: () => undefined}))
    expect(error.code).toBe('DISCOVERY_NEWER')
    expect(error.exitCode).toBe(2)
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

describe('runtime flags', () => {
  it('maps the runtime flags to openRuntime options', () => {
    expect(runtimeOptionsFromFlags({'redis-url': 'redis://h:1', 'in-process': false}, {dataDir: '/x'})).toEqual({
      dataDir: '/x',
      redisUrl: 'redis://h:1',
      inProcess: false,
    })
    expect(runtimeOptionsFromFlags({'bus-url': 'redis://h:1', 'store-url': 'sqlite:/a.db'})).toEqual({busUrl: 'redis://h:1', storeUrl: 'sqlite:/a.db', inProcess: false})
    expect(runtimeOptionsFromFlags({'in-process': true})).toEqual({inProcess: true})
  })

  it('normalizes: a flag and its older name hold the same URL (simulate reads the older ones); bad schemes and conflicts are usage errors', () => {
    const flags: RuntimeFlagValues = {'bus-url': 'redis://h:1', 'mongo-url': 'mongodb://h:2/db'}
    normalizeRuntimeFlags(flags)
    expect(flags).toEqual({'bus-url': 'redis://h:1', 'redis-url': 'redis://h:1', 'store-url': 'mongodb://h:2/db', 'mongo-url': 'mongodb://h:2/db'})
    const thrown = (f: RuntimeFlagValues) => {
      try {
        normalizeRuntimeFlags(f)
      } catch (error) {
        return error as UserError
      }
      throw new Error('expected a UserError')
    }
    expect(thrown({'store-url': 'postgres://h/db'})).toMatchObject({exitCode: 2, code: 'INVALID_URL'})
    expect(thrown({'redis-url': 'mongodb://h/db'}).message).toContain('--redis-url')
    expect(thrown({'bus-url': 'redis://a:1', 'redis-url': 'redis://b:1'})).toMatchObject({exitCode: 2, code: 'INVALID_FLAGS'})
  })
})
