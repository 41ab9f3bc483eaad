/**
 * The driver table: which adapter serves a runtime URL, chosen by its scheme. A new backend (Kafka,
 * PostgreSQL...) is one entry here; openRuntime, the flags and their validation read the table.
 *
 *   redis://, rediss://          bus + leaderboards (Redis Streams, sorted sets)
 *   kafka://HOST:PORT[,HOST:PORT] bus (Kafka; no sorted sets: openRuntime keeps the leaderboards in the store)
 *   mongodb://, mongodb+srv://   store
 *   sqlite:<path>, sqlite::memory:  store (a file shared by every process that opens it)
 *   memory:                      bus or store, in this process only
 *
 * Opening a URL never starts a server and the returned adapters own only their connections, so
 * closing them stops nothing: that is what lets a worker attach to its parent's runtime by URL.
 * Adapters are imported lazily: an in-process run never loads ioredis, the MongoDB driver or SQLite.
 */
import {resolve} from 'node:path'
import {maskUrl, maskUrlsIn, UserError} from '../errors.js'
import type {Bus, Leaderboards, Store} from '../core/ports.js'

export type Role = 'bus' | 'store'

export interface DriverContext {
  /** Bound on reaching a server (an unreachable one is a UserError within about this long). */
  connectTimeoutMs: number
  /** The flag (or option) the URL came from, for messages: "--bus-url". */
  source: string
  /** MongoDB database name when the caller names one (else the URL's path, TEKTREE_MONGO_DB, "tektree"). */
  database?: string
}

export interface OpenedBus {
  bus: Bus
  /** Null when the bus has no place for them (Kafka): openRuntime keeps them in the store. */
  leaderboards: Leaderboards | null
  kind: string
  /** The unmasked URL another process opens to reach the same bus; null when in-process. */
  endpoint: string | null
}

export interface OpenedStore {
  store: Store
  kind: string
  /** The unmasked URL another process opens to reach the same store; null when in-process. */
  endpoint: string | null
  /** For status and describe(): where it lives, e.g. the absolute file of a SQLite store. */
  location: string
}

export interface Driver {
  /** What describe() calls it: "redis", "mongodb", "sqlite", "memory". */
  readonly kind: string
  /** Lower-case, with the colon: "redis:". */
  readonly schemes: readonly string[]
  /** How such a URL is written, for messages. */
  readonly example: string
  openBus?(url: string, context: DriverContext): Promise<OpenedBus>
  openStore?(url: string, context: DriverContext): Promise<OpenedStore>
}

const DEFAULT_DATABASE = 'tektree'

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

// ------------------------------------------------------------------------------------ redis

/** Connects, PINGs and disconnects within timeoutMs; throws the reason. */
export async function checkRedis(url: string, timeoutMs: number): Promise<void> {
  const {connectRedis} = await import('./redis/connection.js')
  const connection = await connectRedis({url}, {connectTimeoutMs: timeoutMs})
  await connection.close()
}

export function unreachable(kind: 'Redis' | 'MongoDB', source: string, url: string, error: unknown): UserError {
  const masked = maskUrl(url)
  const what = kind === 'Redis' ? 'redis-server' : 'mongod'
  return new UserError(`Cannot reach ${kind} at ${masked} (${source}): ${maskUrlsIn(errorText(error).replaceAll(url, masked))}`, {
    code: kind === 'Redis' ? 'REDIS_UNREACHABLE' : 'MONGO_UNREACHABLE',
    hint: `Check that ${what} runs and is reachable from here (host, port, password, bind address, firewall), or drop ${source} to use the embedded runtime (\`tektree up\`).`,
    exitCode: 2,
    details: {url: masked},
    cause: error,
  })
}

/** The server refused the credentials: a wrong password is not an unreachable server. */
export function authFailed(kind: 'Redis' | 'MongoDB', source: string, url: string, error: unknown): UserError {
  const masked = maskUrl(url)
  return new UserError(`Authentication failed for ${kind} at ${masked} (${source}): check the password in the URL`, {
    code: kind === 'Redis' ? 'REDIS_AUTH_FAILED' : 'MONGO_AUTH_FAILED',
    hint:
      kind === 'Redis'
        ? 'Give the password as redis://:PASSWORD@HOST:PORT (or redis://USER:PASSWORD@HOST:PORT for an ACL user); the server refused the one given, or needs one.'
        : 'Check the user name and password in mongodb://USER:PASSWORD@HOST:PORT/DATABASE, and authSource= when the user is defined in another database.',
    exitCode: 2,
    details: {url: masked},
    cause: error,
  })
}

/** MongoDB's AuthenticationFailed (code 18), or the driver's wording of it. */
function isMongoAuthError(error: unknown): boolean {
  const e = error as {code?: unknown; codeName?: unknown; message?: unknown} | null
  return e?.code === 18 || e?.codeName === 'AuthenticationFailed' || /Authentication failed/i.test(String(e?.message ?? ''))
}

/** A redis:// URL that does not parse (a port over 65535, a broken IPv6 host) can never connect. */
function checkParses(url: string, source: string): void {
  try {
    new URL(url)
  } catch {
    throw new UserError(`${source} ${maskUrl(url)} is not a valid URL: check the host and the port (1-65535)`, {
      code: 'INVALID_URL',
      hint: 'A Redis URL reads redis://[:PASSWORD@]HOST:PORT[/DB].',
      exitCode: 2,
      details: {url: maskUrl(url)},
    })
  }
}

const redisDriver: Driver = {
  kind: 'redis',
  schemes: ['redis:', 'rediss:'],
  example: 'redis://HOST:PORT',
  async openBus(url, context) {
    checkParses(url, context.source)
    try {
      await checkRedis(url, context.connectTimeoutMs)
    } catch (error) {
      if ((error as UserError).code === 'REDIS_AUTH_FAILED') throw authFailed('Redis', context.source, url, (error as UserError).cause)
      throw unreachable('Redis', context.source, url, error)
    }
    const [{createRedisBus}, {createRedisLeaderboards}] = await Promise.all([import('./redis/bus.js'), import('./redis/leaderboards.js')])
    const bus = await createRedisBus({url, connectTimeoutMs: context.connectTimeoutMs})
    try {
      const leaderboards = await createRedisLeaderboards({url, connectTimeoutMs: context.connectTimeoutMs})
      return {bus, leaderboards, kind: 'redis', endpoint: url}
    } catch (error) {
      await bus.close().catch(() => undefined)
      throw error
    }
  },
}

// ------------------------------------------------------------------------------------ kafka

const kafkaDriver: Driver = {
  kind: 'kafka',
  schemes: ['kafka:'],
  example: 'kafka://HOST:PORT',
  async openBus(url, context) {
    const {brokersOf, createKafkaBus} = await import('./kafka/bus.js')
    let brokers: string[]
    try {
      brokers = brokersOf(url)
      for (const broker of brokers) new URL(`kafka://${broker}`)
    } catch {
      throw new UserError(`${context.source} ${maskUrl(url)} is not a valid Kafka URL`, {
        code: 'INVALID_URL',
        hint: 'A Kafka URL reads kafka://HOST:PORT (several brokers: kafka://HOST:PORT,HOST:PORT).',
        exitCode: 2,
        details: {url: maskUrl(url)},
      })
    }
    let bus: Awaited<ReturnType<typeof createKafkaBus>>
    try {
      bus = await createKafkaBus({brokers, connectTimeoutMs: context.connectTimeoutMs})
    } catch (error) {
      const masked = maskUrl(url)
      throw new UserError(`Cannot reach Kafka at ${masked} (${context.source}): ${maskUrlsIn(errorText(error).replaceAll(url, masked))}`, {
        code: 'KAFKA_UNREACHABLE',
        hint: `Check that the broker runs and that its advertised listener is reachable from here (host, port, firewall), or drop ${context.source} (\`tektree up --bus kafka\` starts one).`,
        exitCode: 2,
        details: {url: masked},
        cause: error,
      })
    }
    return {bus, leaderboards: null, kind: 'kafka', endpoint: url}
  },
}

// ---------------------------------------------------------------------------------- mongodb

/** Splits a MongoDB connection string (several hosts allowed, so not WHATWG-parseable) at its path. */
function mongoParts(url: string): {head: string; path: string; query: string} {
  const queryAt = url.indexOf('?')
  const base = queryAt === -1 ? url : url.slice(0, queryAt)
  const query = queryAt === -1 ? '' : url.slice(queryAt)
  const afterScheme = base.indexOf('://') + 3
  const slash = base.indexOf('/', afterScheme)
  return slash === -1 ? {head: base, path: '', query} : {head: base.slice(0, slash), path: decodeURIComponent(base.slice(slash + 1)), query}
}

/** The database a MongoDB URL names in its path ("mongodb://h/tektree" -> "tektree"), if any. */
export function mongoDatabaseOf(url: string): string | undefined {
  return mongoParts(url).path || undefined
}

/** The same URL naming `database` in its path, so that a worker opening it uses the same database. */
export function withMongoDatabase(url: string, database: string): string {
  const {head, query} = mongoParts(url)
  return `${head}/${encodeURIComponent(database)}${query}`
}

export function mongoDatabaseFor(url: string, explicit?: string): string {
  return explicit ?? mongoDatabaseOf(url) ?? process.env.TEKTREE_MONGO_DB ?? DEFAULT_DATABASE
}

const mongoDriver: Driver = {
  kind: 'mongodb',
  schemes: ['mongodb:', 'mongodb+srv:'],
  example: 'mongodb://HOST:PORT/DATABASE',
  async openStore(url, context) {
    const database = mongoDatabaseFor(url, context.database)
    // Loaded before the try below: a missing module is a bug, not an unreachable server.
    const {createMongoStore} = await import('./mongo/store.js')
    try {
      const store = await createMongoStore({url, database}, {connectTimeoutMs: context.connectTimeoutMs})
      const endpoint = withMongoDatabase(url, database)
      return {store, kind: 'mongodb', endpoint, location: maskUrl(endpoint)}
    } catch (error) {
      // The store's own error already names the masked URL; the contract here is exit 2 and one wording.
      const cause = (error as {cause?: unknown}).cause ?? error
      if (isMongoAuthError(cause)) throw authFailed('MongoDB', context.source, url, cause)
      throw unreachable('MongoDB', context.source, url, cause)
    }
  },
}

// ----------------------------------------------------------------------------------- sqlite

export const SQLITE_MEMORY = ':memory:'

/**
 * The file a sqlite: URL names, absolute (relative paths are from the current directory), or
 * ':memory:'. "sqlite:///abs/path" is read as "/abs/path" too (the form other tools write).
 */
export function sqlitePathOf(url: string): string {
  let rest = url.slice(url.indexOf(':') + 1)
  if (rest.startsWith('//')) rest = rest.slice(2)
  if (rest === SQLITE_MEMORY) return SQLITE_MEMORY
  if (rest === '') {
    throw new UserError(`${url} names no file`, {
      code: 'INVALID_URL',
      hint: 'Write sqlite:<path> (e.g. sqlite:./.tektree/store.db) or sqlite::memory:.',
      exitCode: 2,
    })
  }
  return resolve(rest)
}

export function sqliteUrl(path: string): string {
  return `sqlite:${path}`
}

/** "SQLite 3.50.2", from the library the SQLite store links (cheap: an in-memory database). */
export async function sqliteVersion(): Promise<string> {
  const {default: Database} = await import('better-sqlite3')
  const db = new Database(SQLITE_MEMORY)
  try {
    return `SQLite ${(db.prepare('select sqlite_version() as v').get() as {v: string}).v}`
  } finally {
    db.close()
  }
}

const sqliteDriver: Driver = {
  kind: 'sqlite',
  schemes: ['sqlite:'],
  example: 'sqlite:PATH',
  async openStore(url) {
    const path = sqlitePathOf(url)
    const {createSqliteStore} = await import('./sqlite/index.js')
    // A bad file is the adapter's UserError (STORE_CORRUPT, STORE_LOCKED...), which names the file.
    const store = await createSqliteStore({path})
    return {store, kind: 'sqlite', endpoint: path === SQLITE_MEMORY ? null : sqliteUrl(path), location: path === SQLITE_MEMORY ? 'sqlite::memory:' : sqliteUrl(path)}
  },
}

// ----------------------------------------------------------------------------------- memory

const memoryDriver: Driver = {
  kind: 'memory',
  schemes: ['memory:'],
  example: 'memory:',
  async openBus() {
    const {createMemoryBus, createMemoryLeaderboards} = await import('./memory/index.js')
    return {bus: createMemoryBus(), leaderboards: createMemoryLeaderboards(), kind: 'memory', endpoint: null}
  },
  async openStore() {
    const {createMemoryStore} = await import('./memory/index.js')
    return {store: createMemoryStore(), kind: 'memory', endpoint: null, location: 'in-process'}
  },
}

// ------------------------------------------------------------------------------------ table

export const DRIVERS: readonly Driver[] = [redisDriver, kafkaDriver, mongoDriver, sqliteDriver, memoryDriver]

function serves(driver: Driver, role: Role): boolean {
  return role === 'bus' ? Boolean(driver.openBus) : Boolean(driver.openStore)
}

/** The schemes that can serve `role`, as a user writes them: "redis://, rediss://, memory:". */
export function knownSchemes(role: Role): string[] {
  return DRIVERS.filter((d) => serves(d, role)).flatMap((d) => d.schemes.map((s) => (d.example.includes('//') ? `${s}//` : s)))
}

/** "redis:" for "REDIS://h:1"; null when the text has no scheme at all. */
export function schemeOf(url: string): string | null {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim())
  return match ? `${match[1]!.toLowerCase()}:` : null
}

/**
 * The driver for `url` in `role`, or a UserError (exit 2) that lists the URLs that role accepts.
 * `source` names where the URL came from ("--bus-url", "TEKTREE_STORE_URL"...).
 */
export function driverFor(url: string, role: Role, source: string): Driver {
  const scheme = schemeOf(url)
  const driver = scheme ? DRIVERS.find((d) => d.schemes.includes(scheme)) : undefined
  const accepted = DRIVERS.filter((d) => serves(d, role))
  const list = accepted.map((d) => d.example).join(', ')
  if (!driver) {
    throw new UserError(`${source} ${maskUrl(url)}: ${scheme ? `unknown scheme "${scheme}"` : 'not a URL (no scheme)'}`, {
      code: 'INVALID_URL',
      hint: `A ${role} URL is one of: ${list}.`,
      exitCode: 2,
      details: {url: maskUrl(url), known_schemes: knownSchemes(role)},
    })
  }
  if (!serves(driver, role)) {
    throw new UserError(`${source} ${maskUrl(url)}: a ${driver.kind} URL cannot serve as the ${role}`, {
      code: 'INVALID_URL',
      hint: `A ${role} URL is one of: ${list}.`,
      exitCode: 2,
      details: {url: maskUrl(url), known_schemes: knownSchemes(role)},
    })
  }
  return driver
}

export async function openBusUrl(url: string, context: DriverContext): Promise<OpenedBus> {
  return driverFor(url, 'bus', context.source).openBus!(url, context)
}

export async function openStoreUrl(url: string, context: DriverContext): Promise<OpenedStore> {
  return driverFor(url, 'store', context.source).openStore!(url, context)
}
