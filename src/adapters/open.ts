/**
 * openRuntime: the one place a command gets its bus, store and leaderboards. Per part, in order:
 *   1. a URL (busUrl / storeUrl, or their aliases redisUrl / mongoUrl), served by the driver its
 *      scheme names (drivers.ts); an unreachable one is a UserError within ~5 s, exit 2. Opening by
 *      URL never starts or stops a server: that is how a worker attaches to its parent's parts;
 *   2. what <dataDir>/runtime.json lists (`tektree up`'s servers and store file, or a server another
 *      running command started): attach. A listed part that does not answer is a UserError naming it
 *      (exit 2); it is never replaced by a private one;
 *   3. nothing listed: the store is the SQLite file <dataDir>/store.db (or a mongod where one is
 *      installed), and the bus a redis-server started in <dataDir>/redis for this command, listed
 *      while it runs so that other commands attach, stopped when it ends; data persists for the next;
 *   4. no redis-server to start: the bus runs in-process, announced by ONE line saying why and how
 *      to get the real one.
 * `inProcess: true` uses in-process parts only (silently: it was asked for). `ephemeral: true` keeps
 * everything private to this call: a fresh temp dir with its own store file and redis-server, all
 * removed by close(). Leaderboards live on Redis when the bus does, else in-process. close() stops
 * only what this call started and closes only what it opened.
 *
 * Adapters and launchers are imported lazily: an in-process run never loads ioredis or a driver.
 */
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {terminalWidth, wrap} from '../cli/style.js'
import {maskUrl, UserError} from '../errors.js'
import {SystemClock} from '../core/clock.js'
import {driverFor, openBusUrl, openStoreUrl, type DriverContext, type OpenedBus, type OpenedStore} from './drivers.js'
import {createMemoryBus, createMemoryLeaderboards, createMemoryStore} from './memory/index.js'
import {createMetrics} from '../engine/metrics/index.js'
import type {RuntimeMetrics} from '../core/metrics.js'
import type {Bus, Clock, Leaderboards, Store} from '../core/ports.js'
import type {Runtime, RuntimeDescription, RuntimeEndpoints, RuntimePartInfo} from '../core/runtime.js'

export interface OpenRuntimeOptions {
  /** The bus (and leaderboards) by URL: redis://, rediss://, kafka://, memory: (see drivers.ts). */
  busUrl?: string
  /** The store by URL: sqlite:<path>, sqlite::memory:, mongodb://, mongodb+srv://, memory:. */
  storeUrl?: string
  /** Alias of busUrl (--redis-url). */
  redisUrl?: string
  /** Alias of storeUrl (--mongo-url). */
  mongoUrl?: string
  /** In-process adapters only: no servers, nothing shared. */
  inProcess?: boolean
  /** Where the embedded runtime keeps its discovery file and data (default TEKTREE_DATA_DIR, else ./.tektree). */
  dataDir?: string
  clock?: Clock
  /**
   * Never attach to or start anything in the data dir: whatever this call starts is private to it,
   * in a fresh temp dir, and discarded by close() (tests, throwaway runs). With both URLs given, it
   * starts nothing at all (a worker attaching to its parent's endpoints).
   */
  ephemeral?: boolean
  /** One line per noteworthy choice (fallbacks, per-command servers). Default: stderr. */
  log?: (line: string) => void
  /** Record into these metrics instead of fresh ones. */
  metrics?: RuntimeMetrics
  /** MongoDB database name (default: the URL's path, else TEKTREE_MONGO_DB, else "tektree"). */
  database?: string
  /** Bound on reaching a URL (default 5000 ms) or a part runtime.json lists (default 2000 ms). */
  connectTimeoutMs?: number
  /** The command's name, recorded with the servers it starts (`tektree status` shows it). */
  command?: string
}

type Cleanup = () => Promise<void> | void

const IN_PROCESS_LINE = 'for this command only; other terminals cannot attach to an in-process part'

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The URL for a part from its option and its alias; both set and different is a usage error. */
function pickUrl(primary: string | undefined, alias: string | undefined, names: [string, string]): {url: string; source: string} | undefined {
  if (primary && alias && primary !== alias) {
    throw new UserError(`Both ${names[0]} (${maskUrl(primary)}) and ${names[1]} (${maskUrl(alias)}) are set`, {
      code: 'INVALID_FLAGS',
      hint: `${names[1]} is the older name of ${names[0]}: give one (check the environment for TEKTREE_${names[0] === '--bus-url' ? 'BUS' : 'STORE'}_URL and TEKTREE_${names[1] === '--redis-url' ? 'REDIS' : 'MONGO'}_URL).`,
      exitCode: 2,
    })
  }
  if (primary) return {url: primary, source: names[0]}
  if (alias) return {url: alias, source: names[1]}
  return undefined
}

interface BusPart {
  bus: Bus
  /** Null until openRuntime puts them in the store (a bus without sorted sets). */
  leaderboards: Leaderboards | null
  info: RuntimePartInfo
  leaderboardsInfo: RuntimePartInfo
  endpoint: string | null
}

interface StorePart {
  store: Store
  info: RuntimePartInfo
  endpoint: string | null
}

function busPart(opened: OpenedBus, info: RuntimePartInfo): BusPart {
  return {bus: opened.bus, leaderboards: opened.leaderboards, info, leaderboardsInfo: {...info}, endpoint: opened.endpoint}
}

/** Leaderboards for a bus that has no place for them (Kafka): in the store, shared as the store is. */
async function storeLeaderboards(bus: BusPart, store: StorePart): Promise<BusPart> {
  if (bus.leaderboards) return bus
  const {createStoreLeaderboards} = await import('./store-leaderboards/index.js')
  return {
    ...bus,
    leaderboards: createStoreLeaderboards(store.store.projections),
    leaderboardsInfo: {...store.info, kind: `${store.info.kind} (projections)`, fallbackReason: `the ${bus.info.kind} bus has no sorted sets: the leaderboards live in the store`},
  }
}

function inProcessBus(fallbackReason?: string): BusPart {
  const info: RuntimePartInfo = {kind: 'memory', location: 'in-process', origin: 'in-process', ...(fallbackReason ? {fallbackReason} : {})}
  const leaderboardsInfo: RuntimePartInfo = fallbackReason ? {...info, fallbackReason: 'the bus runs in-process, so do the leaderboards'} : {...info}
  return {bus: createMemoryBus(), leaderboards: createMemoryLeaderboards(), info, leaderboardsInfo, endpoint: null}
}

function urlInfo(opened: {kind: string; endpoint: string | null}, url: string, location?: string): RuntimePartInfo {
  return opened.kind === 'memory'
    ? {kind: 'memory', location: 'in-process', origin: 'in-process'}
    : {kind: opened.kind, location: location ?? maskUrl(url), origin: 'external'}
}

/** Opens `url` with the driver, releasing `release` (a server this call started) when that fails. */
async function withRelease<T>(open: () => Promise<T>, release: () => Promise<void>): Promise<T> {
  try {
    return await open()
  } catch (error) {
    await release().catch(() => undefined)
    throw error
  }
}

async function openBus(options: OpenRuntimeOptions, dataDir: string, cleanups: Cleanup[], log: (line: string) => void): Promise<BusPart> {
  const context: DriverContext = {connectTimeoutMs: options.connectTimeoutMs ?? 5_000, source: '--bus-url'}
  const given = pickUrl(options.busUrl, options.redisUrl, ['--bus-url', '--redis-url'])
  if (given) {
    const opened = await openBusUrl(given.url, {...context, source: given.source})
    return busPart(opened, urlInfo(opened, given.url))
  }

  const embedded = await import('../embedded/index.js')
  const inProcessFallback = (reason: string) => {
    const fallbackReason = `${reason}: the bus runs in-process ${IN_PROCESS_LINE} (${embedded.REDIS_INSTALL_HINT})`
    log(fallbackReason)
    return inProcessBus(fallbackReason)
  }
  const embeddedInfo = (server: {url: string; version: string; pid: number; data_dir: string}, origin: RuntimePartInfo['origin'] = 'embedded'): RuntimePartInfo => ({
    kind: 'redis',
    location: maskUrl(server.url),
    origin,
    version: server.version,
    pid: server.pid,
    dataDir: server.data_dir,
  })

  if (options.ephemeral) {
    const found = embedded.findRedisServer()
    if (!found.ok) return inProcessFallback(found.reason)
    let started: Awaited<ReturnType<typeof embedded.startPrivateServer>>
    try {
      started = await embedded.startPrivateServer('redis')
    } catch (error) {
      return inProcessFallback(`redis-server could not be started (${errorText(error).split('\n')[0]})`)
    }
    const opened = await withRelease(() => openBusUrl(started.server.url, context), started.release)
    cleanups.push(started.release)
    return busPart(opened, embeddedInfo(started.server))
  }

  // `tektree up --bus kafka` left a broker running: attach to it.
  const kafka = await embedded.listedKafka(dataDir, options.connectTimeoutMs ?? 2_000)
  if (kafka) {
    const opened = await openBusUrl(kafka.url, context)
    return busPart(opened, {...embeddedInfo(kafka), kind: 'kafka'})
  }

  const got = await embedded.serverForCommand('redis', dataDir, {pingTimeoutMs: options.connectTimeoutMs ?? 2_000, ownerCommand: options.command})
  if (got.how === 'unavailable') return inProcessFallback(got.reason)
  const release = got.how === 'attached' ? async () => undefined : got.release
  const opened = await withRelease(() => openBusUrl(got.server.url, context), release)
  cleanups.push(release)
  if (got.how === 'private') log(got.note)
  if (got.how === 'owned' && got.started) {
    log(`No embedded runtime is up: started ${got.server.version} on port ${got.server.port} for this command, data in ${got.server.data_dir} (other commands attach to it while it runs; \`tektree up\` keeps one running).`)
  }
  return busPart(opened, {...embeddedInfo(got.server), ...(got.how === 'owned' ? {forThisCommand: true} : {})})
}

async function openStore(options: OpenRuntimeOptions, dataDir: string, cleanups: Cleanup[], log: (line: string) => void): Promise<StorePart> {
  const context: DriverContext = {connectTimeoutMs: options.connectTimeoutMs ?? 5_000, source: '--store-url', ...(options.database ? {database: options.database} : {})}
  const given = pickUrl(options.storeUrl, options.mongoUrl, ['--store-url', '--mongo-url'])
  if (given) {
    const opened = await openStoreUrl(given.url, {...context, source: given.source})
    return {store: opened.store, info: urlInfo(opened, given.url, opened.location), endpoint: opened.endpoint}
  }

  const {sqliteUrl, sqliteVersion} = await import('./drivers.js')
  const openFile = async (path: string, origin: RuntimePartInfo['origin']): Promise<StorePart> => {
    const opened = await openStoreUrl(sqliteUrl(path), context)
    return {store: opened.store, info: {kind: 'sqlite', location: opened.location, origin, version: await sqliteVersion(), dataDir}, endpoint: opened.endpoint}
  }

  if (options.ephemeral) {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-store-'))
    try {
      const part = await openFile(join(dir, 'store.db'), 'embedded')
      cleanups.push(() => rmSync(dir, {recursive: true, force: true}))
      return {...part, info: {...part.info, dataDir: dir}}
    } catch (error) {
      rmSync(dir, {recursive: true, force: true})
      throw error
    }
  }

  const embedded = await import('../embedded/index.js')
  const read = embedded.readDiscovery(dataDir)
  if (read.state === 'newer') throw embedded.newerDiscoveryError(read.path, read.version)
  const listed = read.state === 'found' ? read.discovery : undefined

  if (listed?.sqlite && !listed.mongo) {
    try {
      return await openFile(listed.sqlite.path, 'embedded')
    } catch (error) {
      throw storeFileError(error, listed.sqlite.path)
    }
  }
  if (listed?.mongo || embedded.findMongod().ok) {
    const got = await embedded.serverForCommand('mongo', dataDir, {pingTimeoutMs: options.connectTimeoutMs ?? 2_000, ownerCommand: options.command})
    if (got.how !== 'unavailable') {
      const release = got.how === 'attached' ? async () => undefined : got.release
      const opened: OpenedStore = await withRelease(() => openStoreUrl(got.server.url, context), release)
      cleanups.push(release)
      if (got.how === 'private') log(got.note)
      if (got.how === 'owned' && got.started) {
        log(`No embedded runtime is up: started ${got.server.version} on port ${got.server.port} for this command, data in ${got.server.data_dir} (other commands attach to it while it runs; \`tektree up\` keeps one running).`)
      }
      return {
        store: opened.store,
        info: {kind: 'mongodb', location: opened.location, origin: 'embedded', version: got.server.version, pid: got.server.pid, dataDir: got.server.data_dir},
        endpoint: opened.endpoint,
      }
    }
    // mongod is installed but would not start: the store file still gives a shared, persistent store.
    log(`${got.reason}: the store is ${embedded.storeFilePath(dataDir)} (SQLite) instead`)
  }
  mkdirSync(dataDir, {recursive: true})
  const path = embedded.storeFilePath(dataDir)
  try {
    return await openFile(path, 'embedded')
  } catch (error) {
    throw storeFileError(error, path)
  }
}

/** The SQLite adapter's UserError names the file and the problem; this adds what to do about the runtime. */
function storeFileError(error: unknown, path: string): unknown {
  if (!(error instanceof UserError)) return error
  const next = 'Or name another store with --store-url.'
  return new UserError(error.message, {
    code: error.code,
    hint: error.hint ? `${error.hint} ${next}` : `Fix or move the file (\`tektree down --purge\` deletes it with the rest of the data). ${next}`,
    exitCode: error.exitCode,
    details: {...error.details, path},
    cause: error,
  })
}

const IN_PROCESS_INFO: RuntimePartInfo = {kind: 'memory', location: 'in-process', origin: 'in-process'}

/** Default for `command`: the CLI's command name (`tektree simulate` -> "simulate"), for status. */
function commandName(): string | undefined {
  const script = process.argv[1] ?? ''
  if (!/(?:^|\/)(?:run|dev)\.js$|(?:^|\/)tektree$/.test(script)) return undefined
  return process.argv.slice(2).find((arg) => !arg.startsWith('-'))
}

export async function openRuntime(options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? new SystemClock()
  const metrics = options.metrics ?? createMetrics()
  const log = options.log ?? ((line: string) => process.stderr.write(`${wrap(line, terminalWidth(process.stderr), '  ').join('\n')}\n`))
  // LIFO: adapters close before the servers they talk to stop.
  const cleanups: Cleanup[] = []

  // Usage errors first, before anything is opened or started.
  const busUrl = pickUrl(options.busUrl, options.redisUrl, ['--bus-url', '--redis-url'])
  const storeUrl = pickUrl(options.storeUrl, options.mongoUrl, ['--store-url', '--mongo-url'])
  if (busUrl) driverFor(busUrl.url, 'bus', busUrl.source)
  if (storeUrl) driverFor(storeUrl.url, 'store', storeUrl.source)

  let bus: BusPart
  let store: StorePart
  if (options.inProcess) {
    if (busUrl || storeUrl) {
      throw new UserError(`--in-process cannot be combined with ${(busUrl ?? storeUrl)!.source}`, {
        code: 'INVALID_FLAGS',
        hint: 'Drop --in-process to use the URL, or drop the URL (and its TEKTREE_*_URL variable) to run in-process.',
        exitCode: 2,
      })
    }
    bus = {...inProcessBus(), info: {...IN_PROCESS_INFO}, leaderboardsInfo: {...IN_PROCESS_INFO}}
    store = {store: createMemoryStore(), info: {...IN_PROCESS_INFO}, endpoint: null}
  } else {
    const {resolveDataDir} = await import('../embedded/discovery.js')
    const dataDir = resolveDataDir(options.dataDir)
    const withCommand: OpenRuntimeOptions = {...options, command: options.command ?? commandName()}
    const opened: Array<{close(): Promise<void>}> = []
    try {
      // A bus URL first: an unreachable one fails fast, before any server is started for nothing.
      const openB = async () => {
        const part = await openBus(withCommand, dataDir, cleanups, log)
        opened.push(part.bus)
        if (part.leaderboards) opened.push(part.leaderboards)
        return part
      }
      const openS = async () => {
        const part = await openStore(withCommand, dataDir, cleanups, log)
        opened.push(part.store)
        return part
      }
      // Then the store: a bad store file fails before a redis-server is started for nothing.
      const explicitBus = busUrl ? await openB() : undefined
      store = await openS()
      bus = await storeLeaderboards(explicitBus ?? (await openB()), store)
    } catch (error) {
      for (const part of opened) await part.close().catch(() => undefined)
      for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined)
      throw error
    }
  }

  const description: RuntimeDescription = {bus: bus.info, store: store.info, leaderboards: bus.leaderboardsInfo}
  const endpoints: RuntimeEndpoints = Object.freeze({bus: bus.endpoint, store: store.endpoint})
  let closing: Promise<void> | undefined
  return {
    bus: bus.bus,
    store: store.store,
    leaderboards: bus.leaderboards!,
    clock,
    metrics,
    endpoints,
    describe: () => structuredClone(description),
    close() {
      closing ??= (async () => {
        const errors: unknown[] = []
        for (const part of [bus.leaderboards!, bus.bus, store.store]) {
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
