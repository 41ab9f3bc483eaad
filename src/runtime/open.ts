/**
 * openRuntime: the one place a command gets its bus, store and leaderboards. Per part, in order:
 *   1. an explicit URL (external; unreachable = UserError within ~5 s, exit 2);
 *   2. the embedded runtime `tektree up` left running, found through <dataDir>/runtime.json (attach);
 *   3. an embedded server started for this command only (stopped by close());
 *   4. the in-process adapter, announced by ONE line saying why and how to get the real one.
 * `inProcess: true` skips straight to 4 (silently: it was asked for). Leaderboards live on Redis
 * when the bus does, else in-process. close() stops only what this call started and closes only
 * what it opened.
 *
 * Adapters and launchers are imported lazily: an in-process run never loads ioredis or the driver.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {maskUrl, UserError} from '../errors.js'
import {SystemClock} from './clock.js'
import {createMemoryBus, createMemoryLeaderboards, createMemoryStore} from './memory/index.js'
import {createMetrics} from './metrics/index.js'
import type {RuntimeMetrics} from './metrics.js'
import type {Bus, Clock, Leaderboards, Store} from './ports.js'
import type {Runtime, RuntimeDescription, RuntimePartInfo} from './runtime.js'
import {readDiscovery, resolveDataDir, isAlive, pingRedis, pingMongo, type DiscoveredServer} from './embedded/discovery.js'

export interface OpenRuntimeOptions {
  /** External Redis for the bus and leaderboards. */
  redisUrl?: string
  /** External MongoDB for the store. */
  mongoUrl?: string
  /** In-process adapters only: no servers, nothing shared. */
  inProcess?: boolean
  /** Where `tektree up` keeps its discovery file and data (default TEKTREE_DATA_DIR, else ./.tektree). */
  dataDir?: string
  clock?: Clock
  /**
   * Never attach to the runtime `tektree up` left running: whatever this call uses is private to it
   * and discarded by close() (tests, throwaway runs).
   */
  ephemeral?: boolean
  /** One line per noteworthy choice (fallbacks, per-command servers). Default: stderr. */
  log?: (line: string) => void
  /** Record into these metrics instead of fresh ones. */
  metrics?: RuntimeMetrics
  /** MongoDB database name (default TEKTREE_MONGO_DB, else "tektree"). */
  database?: string
  /** Bound on reaching an external URL (default 5000 ms). */
  connectTimeoutMs?: number
}

type Cleanup = () => Promise<void> | void


const DEFAULT_DATABASE = 'tektree'
const IN_PROCESS_LINE = 'for this command only; other terminals cannot attach to an in-process part'

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Connects, PINGs and disconnects, within timeoutMs; throws the reason. */
async function checkRedis(url: string, timeoutMs: number): Promise<void> {
  const {Redis} = await import('ioredis')
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  })
  client.on('error', () => undefined) // the awaited calls below report it
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      (async () => {
        await client.connect()
        await client.ping()
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}

function unreachable(kind: 'Redis' | 'MongoDB', flag: string, url: string, error: unknown): UserError {
  const masked = maskUrl(url)
  const what = kind === 'Redis' ? 'redis-server' : 'mongod'
  return new UserError(`Cannot reach ${kind} at ${masked} (${flag}): ${errorText(error).replaceAll(url, masked)}`, {
    code: kind === 'Redis' ? 'REDIS_UNREACHABLE' : 'MONGO_UNREACHABLE',
    hint: `Check that ${what} runs and is reachable from here (host, port, password, bind address, firewall), or drop ${flag} to use the embedded runtime (\`tektree up\`).`,
    exitCode: 2,
    details: {url: masked},
    cause: error,
  })
}

interface BusPart {
  bus: Bus
  leaderboards: Leaderboards
  info: RuntimePartInfo
  leaderboardsInfo: RuntimePartInfo
}

interface StorePart {
  store: Store
  info: RuntimePartInfo
}

async function redisAdapters(url: string, connectTimeoutMs: number): Promise<{bus: Bus; leaderboards: Leaderboards}> {
  const [{createRedisBus}, {createRedisLeaderboards}] = await Promise.all([
    import('./redis/bus.js'),
    import('./redis/leaderboards.js'),
  ])
  const bus = await createRedisBus({url, connectTimeoutMs})
  try {
    const leaderboards = await createRedisLeaderboards({url, connectTimeoutMs})
    return {bus, leaderboards}
  } catch (error) {
    await bus.close().catch(() => undefined)
    throw error
  }
}

function liveServer(server: DiscoveredServer | undefined): server is DiscoveredServer {
  return Boolean(server && isAlive(server.pid))
}

async function openBus(options: OpenRuntimeOptions, attachTo: DiscoveredServer | undefined, cleanups: Cleanup[], log: (line: string) => void): Promise<BusPart> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000
  const redisPart = (url: string, origin: RuntimePartInfo['origin'], extra: Partial<RuntimePartInfo> = {}): RuntimePartInfo => ({
    kind: 'redis',
    location: maskUrl(url),
    origin,
    ...extra,
  })

  if (options.redisUrl) {
    const url = options.redisUrl
    try {
      await checkRedis(url, timeoutMs)
    } catch (error) {
      throw unreachable('Redis', '--redis-url', url, error)
    }
    const adapters = await redisAdapters(url, timeoutMs)
    return {...adapters, info: redisPart(url, 'external'), leaderboardsInfo: redisPart(url, 'external')}
  }

  if (attachTo && (await pingRedis(attachTo.port, 1_000))) {
    const adapters = await redisAdapters(attachTo.url, timeoutMs)
    const info = redisPart(attachTo.url, 'embedded', {version: attachTo.version, pid: attachTo.pid, dataDir: attachTo.data_dir})
    return {...adapters, info, leaderboardsInfo: {...info}}
  }

  const {findRedisServer, REDIS_INSTALL_HINT} = await import('./embedded/index.js')
  const found = findRedisServer()
  let reason: string
  if (found.ok) {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-redis-'))
    try {
      const {startRedisServer} = await import('./embedded/redis-server.js')
      const server = await startRedisServer({bin: found.bin, dir, appendonly: false})
      cleanups.push(async () => {
        await server.stop()
        rmSync(dir, {recursive: true, force: true})
      })
      const adapters = await redisAdapters(server.url, timeoutMs)
      log(`No embedded runtime is up: started ${server.version} for this command only (its data goes when the command ends; \`tektree up\` keeps one running).`)
      const info = redisPart(server.url, 'embedded', {version: server.version, pid: server.pid})
      return {...adapters, info, leaderboardsInfo: {...info}}
    } catch (error) {
      rmSync(dir, {recursive: true, force: true})
      reason = `redis-server could not be started (${errorText(error).split('\n')[0]})`
    }
  } else {
    reason = found.reason
  }
  const fallbackReason = `${reason}: the bus runs in-process ${IN_PROCESS_LINE} (${REDIS_INSTALL_HINT})`
  log(fallbackReason)
  return {
    bus: createMemoryBus(),
    leaderboards: createMemoryLeaderboards(),
    info: {kind: 'memory', location: 'in-process', origin: 'in-process', fallbackReason},
    leaderboardsInfo: {kind: 'memory', location: 'in-process', origin: 'in-process', fallbackReason: 'the bus runs in-process, so do the leaderboards'},
  }
}

async function openStore(options: OpenRuntimeOptions, attachTo: DiscoveredServer | undefined, cleanups: Cleanup[], log: (line: string) => void): Promise<StorePart> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000
  const database = options.database ?? process.env.TEKTREE_MONGO_DB ?? DEFAULT_DATABASE
  const mongoPart = (url: string, origin: RuntimePartInfo['origin'], extra: Partial<RuntimePartInfo> = {}): RuntimePartInfo => ({
    kind: 'mongodb',
    location: maskUrl(url),
    origin,
    ...extra,
  })
  const connect = async (url: string) => {
    const {createMongoStore} = await import('./mongo/store.js')
    return createMongoStore({url, database}, {connectTimeoutMs: timeoutMs})
  }

  if (options.mongoUrl) {
    const url = options.mongoUrl
    // Loaded before the try below: a missing module is a bug, not an unreachable server.
    await import('./mongo/store.js')
    try {
      return {store: await connect(url), info: mongoPart(url, 'external')}
    } catch (error) {
      // The store's own error already names the masked URL; the contract here is exit 2 and one wording.
      throw unreachable('MongoDB', '--mongo-url', url, (error as {cause?: unknown}).cause ?? error)
    }
  }

  if (attachTo && (await pingMongo(attachTo.url, 2_000))) {
    return {store: await connect(attachTo.url), info: mongoPart(attachTo.url, 'embedded', {version: attachTo.version, pid: attachTo.pid, dataDir: attachTo.data_dir})}
  }

  const {findMongoServer, MONGO_INSTALL_HINT} = await import('./embedded/index.js')
  const candidate = await findMongoServer()
  let reason: string
  if (candidate.kind === 'java') {
    // A per-command server is private to this command either way; mongo-java-server (a test double
    // that scans whole collections) would only make it slow. `tektree up` still shares one.
    reason = 'no mongod on PATH (mongo-java-server serves `tektree up`, where terminals share it; per command it would only slow the store down)'
  } else if (candidate.kind !== 'none') {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-mongo-'))
    try {
      const {startMongoServer} = await import('./embedded/mongo-server.js')
      const server = await startMongoServer({dir, provision: false, skip: candidate.kind === 'mongod' ? ['mongo-java-server'] : ['mongod']})
      cleanups.push(async () => {
        await server.stop()
        rmSync(dir, {recursive: true, force: true})
      })
      const store = await connect(server.url)
      log(`No embedded runtime is up: started ${server.server} for this command only (its data goes when the command ends; \`tektree up\` keeps one running).`)
      return {store, info: mongoPart(server.url, 'embedded', {version: server.server, pid: server.pid})}
    } catch (error) {
      rmSync(dir, {recursive: true, force: true})
      reason = `no MongoDB server could be started (${errorText(error).split('\n')[0]})`
    }
  } else {
    reason = candidate.reason
  }
  const hint = candidate.kind === 'java' ? 'install mongod (MongoDB Community 7.0), or --mongo-url' : MONGO_INSTALL_HINT
  const fallbackReason = `${reason}: the store runs in-process ${IN_PROCESS_LINE} (${hint})`
  log(fallbackReason)
  return {store: createMemoryStore(), info: {kind: 'memory', location: 'in-process', origin: 'in-process', fallbackReason}}
}

const IN_PROCESS_INFO: RuntimePartInfo = {kind: 'memory', location: 'in-process', origin: 'in-process'}

export async function openRuntime(options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? new SystemClock()
  const metrics = options.metrics ?? createMetrics()
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  // LIFO: adapters close before the servers they talk to stop.
  const cleanups: Cleanup[] = []

  let bus: BusPart
  let store: StorePart
  if (options.inProcess) {
    if (options.redisUrl || options.mongoUrl) {
      throw new UserError('--in-process cannot be combined with --redis-url or --mongo-url', {code: 'INVALID_FLAGS', exitCode: 2})
    }
    bus = {bus: createMemoryBus(), leaderboards: createMemoryLeaderboards(), info: {...IN_PROCESS_INFO}, leaderboardsInfo: {...IN_PROCESS_INFO}}
    store = {store: createMemoryStore(), info: {...IN_PROCESS_INFO}}
  } else {
    let redisServer: DiscoveredServer | undefined
    let mongoServer: DiscoveredServer | undefined
    if (!options.ephemeral) {
      const read = readDiscovery(resolveDataDir(options.dataDir))
      if (read.state === 'found') {
        redisServer = liveServer(read.discovery.redis) ? read.discovery.redis : undefined
        mongoServer = liveServer(read.discovery.mongo) ? read.discovery.mongo : undefined
      }
    }
    const opened: Array<{close(): Promise<void>}> = []
    try {
      // Explicit URLs first: an unreachable one fails fast, before any server is started for nothing.
      // The rest open side by side: a cold JVM (mongo-java-server) should not wait for Redis.
      const openB = async () => {
        const part = await openBus(options, redisServer, cleanups, log)
        opened.push(part.bus, part.leaderboards)
        return part
      }
      const openS = async () => {
        const part = await openStore(options, mongoServer, cleanups, log)
        opened.push(part.store)
        return part
      }
      const explicitBus = options.redisUrl ? await openB() : undefined
      const explicitStore = options.mongoUrl ? await openS() : undefined
      const [busResult, storeResult] = await Promise.allSettled([explicitBus ?? openB(), explicitStore ?? openS()])
      if (busResult.status === 'rejected') throw busResult.reason
      if (storeResult.status === 'rejected') throw storeResult.reason
      bus = busResult.value
      store = storeResult.value
    } catch (error) {
      for (const part of opened) await part.close().catch(() => undefined)
      for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined)
      throw error
    }
  }

  const description: RuntimeDescription = {bus: bus.info, store: store.info, leaderboards: bus.leaderboardsInfo}
  let closing: Promise<void> | undefined
  return {
    bus: bus.bus,
    store: store.store,
    leaderboards: bus.leaderboards,
    clock,
    metrics,
    describe: () => structuredClone(description),
    close() {
      closing ??= (async () => {
        const errors: unknown[] = []
        for (const part of [bus.leaderboards, bus.bus, store.store]) {
          await part.close().catch((error: unknown) => errors.push(error))
        }
        for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch((error: unknown) => errors.push(error))
        if (errors.length > 0) throw errors[0]
      })()
      return closing
    },
  }
}

/** One line per part for humans: "bus: redis redis://127.0.0.1:6379 (embedded, redis-server 7.0.15)". */
export function describeRuntimeLines(description: RuntimeDescription): string[] {
  return (['bus', 'store', 'leaderboards'] as const).map((name) => {
    const part = description[name]
    const extra = [part.origin, part.version].filter(Boolean).join(', ')
    return `${name}: ${part.kind} ${part.location} (${extra})`
  })
}
