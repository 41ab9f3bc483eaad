/**
 * The discovery file of the embedded runtime: <dataDir>/runtime.json. It records what runs for that
 * directory: the servers `tektree up` left running (and its store file), and servers a command
 * started for its own run (`owner_pid`: that command stops them when it exits) so that other
 * commands attach instead of starting their own. Every read-modify-write holds <dataDir>/runtime.lock;
 * the file itself is replaced by rename, so a reader never sees half of it. Also the small process
 * helpers the embedded runtime shares.
 */
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {connect} from 'node:net'
import {join, resolve} from 'node:path'
import {UserError} from '../errors.js'

export const DISCOVERY_FILE = 'runtime.json'
export const LOCK_FILE = 'runtime.lock'
/** 2: `up` became optional (`up` record), servers owned by a command (`owner_pid`), the SQLite store (`sqlite`). */
export const DISCOVERY_VERSION = 2

export interface DiscoveredServer {
  url: string
  port: number
  pid: number
  /** e.g. "redis-server 7.0.15", "mongod 7.0.14". */
  version: string
  data_dir: string
  /** False when the server keeps its data in memory only (the mongo-java-server of a v1 file). */
  persistent: boolean
  log_file?: string
  /** A word of the process' command line, checked before signalling a pid (pids are reused). */
  command: string
  /**
   * Set when a command started this server for its own run (no `tektree up`): that command's pid.
   * It stops the server when it exits; meanwhile other commands attach to it.
   */
  owner_pid?: number
  /** The owning command's name, for status ("simulate"). */
  owner_command?: string
}

/** The SQLite store file `tektree up` opened (created, migrated) for this directory. */
export interface DiscoveredStoreFile {
  /** sqlite:/abs/path/store.db */
  url: string
  path: string
  /** e.g. "SQLite 3.46.1" */
  version: string
}

export interface Discovery {
  version: typeof DISCOVERY_VERSION
  data_dir: string
  /** Present while `tektree up` holds the runtime up (until `down`). */
  up?: {started_at: string; started_by_pid: number}
  redis?: DiscoveredServer
  mongo?: DiscoveredServer
  /** A Kafka broker instead of redis-server (`tektree up --bus kafka`). */
  kafka?: DiscoveredServer
  sqlite?: DiscoveredStoreFile
}

/** `.tektree` in the current directory, unless TEKTREE_DATA_DIR or an explicit dir says otherwise. */
export function resolveDataDir(dataDir?: string): string {
  return resolve(dataDir ?? process.env.TEKTREE_DATA_DIR ?? '.tektree')
}

export function discoveryPath(dataDir: string): string {
  return join(dataDir, DISCOVERY_FILE)
}

export type DiscoveryRead =
  | {state: 'absent'}
  | {state: 'invalid'; path: string; reason: string}
  | {state: 'newer'; path: string; version: number}
  | {state: 'found'; path: string; discovery: Discovery}

function validServer(part: unknown): boolean {
  const p = part as Partial<DiscoveredServer> | undefined
  return !p || (typeof p.url === 'string' && Number.isInteger(p.pid) && Number.isInteger(p.port))
}

export function readDiscovery(dataDir: string): DiscoveryRead {
  const path = discoveryPath(dataDir)
  if (!existsSync(path)) return {state: 'absent'}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {state: 'absent'} // removed meanwhile
    return {state: 'invalid', path, reason: `not JSON (${(error as Error).message})`}
  }
  const d = parsed as Record<string, unknown> | null
  if (!d || typeof d !== 'object' || !Number.isInteger(d.version)) return {state: 'invalid', path, reason: 'not a tektree discovery file'}
  const version = d.version as number
  if (version > DISCOVERY_VERSION) return {state: 'newer', path, version}
  if (!validServer(d.redis) || !validServer(d.mongo) || !validServer(d.kafka)) return {state: 'invalid', path, reason: 'a server entry lacks url, pid or port'}
  if (version === 1) {
    // Written by tektree before the SQLite store: every entry was `tektree up`'s.
    if (typeof d.started_at !== 'string') return {state: 'invalid', path, reason: 'a v1 discovery file without started_at'}
    const discovery: Discovery = {
      version: DISCOVERY_VERSION,
      data_dir: typeof d.data_dir === 'string' ? d.data_dir : dataDir,
      up: {started_at: d.started_at, started_by_pid: Number(d.started_by_pid) || 0},
      ...(d.redis ? {redis: d.redis as DiscoveredServer} : {}),
      ...(d.mongo ? {mongo: d.mongo as DiscoveredServer} : {}),
    }
    return {state: 'found', path, discovery}
  }
  if (version !== DISCOVERY_VERSION) return {state: 'invalid', path, reason: `unknown version ${version}`}
  const sqlite = d.sqlite as Partial<DiscoveredStoreFile> | undefined
  if (sqlite && typeof sqlite.path !== 'string') return {state: 'invalid', path, reason: 'the sqlite entry lacks its path'}
  return {state: 'found', path, discovery: d as unknown as Discovery}
}

/** A discovery file written by a newer tektree: attaching to or changing it blindly could break that runtime. */
export function newerDiscoveryError(path: string, version: number): UserError {
  return new UserError(`${path} was written by a newer tektree (discovery format v${version}; this one reads up to v${DISCOVERY_VERSION})`, {
    code: 'DISCOVERY_NEWER',
    hint: 'Use the tektree that started this runtime (or upgrade this one); `tektree down` with that version stops it.',
    exitCode: 2,
    details: {path, version},
  })
}

/** True when the file records nothing: no `up`, no server, no store. */
export function isEmptyDiscovery(d: Discovery): boolean {
  return !d.up && !d.redis && !d.mongo && !d.kafka && !d.sqlite
}

/** Written to a temp file and renamed: a reader never sees half a file. */
export function writeDiscovery(dataDir: string, discovery: Discovery): string {
  mkdirSync(dataDir, {recursive: true})
  const path = discoveryPath(dataDir)
  const temp = `${path}.${process.pid}.tmp`
  writeFileSync(temp, `${JSON.stringify(discovery, null, 2)}\n`, {mode: 0o600})
  renameSync(temp, path)
  return path
}

export function removeDiscovery(dataDir: string): void {
  rmSync(discoveryPath(dataDir), {force: true})
}

/** Writes `discovery`, or removes the file when it records nothing. */
export function saveDiscovery(dataDir: string, discovery: Discovery): string | null {
  if (isEmptyDiscovery(discovery)) {
    removeDiscovery(dataDir)
    return null
  }
  return writeDiscovery(dataDir, discovery)
}

export function emptyDiscovery(dataDir: string): Discovery {
  return {version: DISCOVERY_VERSION, data_dir: dataDir}
}

// ------------------------------------------------------------------------------ the bus this directory ran

/**
 * <dataDir>/bus.json: which server was this directory's bus the last time it ran one. runtime.json
 * goes with `down`, but the bus' data stays (Redis' streams and leaderboards, or Kafka's topics with
 * the leaderboards in the store): the next `up` must bring back the same kind, not an empty other one.
 */
export const BUS_FILE = 'bus.json'

export type BusKind = 'redis' | 'kafka'

export interface RememberedBus {
  kind: BusKind
  /** recorded: bus.json says so; inferred: a directory from before bus.json holds one server's data only. */
  source: 'recorded' | 'inferred'
  path: string
}

export function busFilePath(dataDir: string): string {
  return join(dataDir, BUS_FILE)
}

/** The bus kind `dataDir` last ran, or null when it never ran one (or cannot tell). */
export function readBusKind(dataDir: string): RememberedBus | null {
  const path = busFilePath(dataDir)
  try {
    const kind = (JSON.parse(readFileSync(path, 'utf8')) as {bus?: unknown}).bus
    if (kind === 'redis' || kind === 'kafka') return {kind, source: 'recorded', path}
  } catch {
    // absent or unreadable: infer below
  }
  // Written by a tektree before bus.json: only one server's data in the directory tells which.
  const kafka = existsSync(join(dataDir, 'kafka', 'data', 'meta.properties'))
  const redis = existsSync(join(dataDir, 'redis'))
  if (kafka !== redis) return {kind: kafka ? 'kafka' : 'redis', source: 'inferred', path}
  return null
}

/** Records the bus kind `dataDir` runs now (written to a temp file and renamed, like runtime.json). */
export function recordBusKind(dataDir: string, kind: BusKind): void {
  mkdirSync(dataDir, {recursive: true})
  const path = busFilePath(dataDir)
  const temp = `${path}.${process.pid}.tmp`
  writeFileSync(temp, `${JSON.stringify({bus: kind, recorded_at: new Date().toISOString()})}\n`)
  renameSync(temp, path)
}

// ------------------------------------------------------------------------------ the lock

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function tryLock(lockPath: string): boolean {
  try {
    const fd = openSync(lockPath, 'wx', 0o600)
    try {
      writeSync(fd, String(process.pid))
    } finally {
      closeSync(fd)
    }
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  // A holder that died (kill -9) leaves its lock behind: take it over. Two commands doing this at the
  // same instant could both win; that needs a crash inside the lock and a simultaneous start.
  let holder = Number.NaN
  try {
    holder = Number(readFileSync(lockPath, 'utf8'))
  } catch {
    return false // released meanwhile: the caller retries
  }
  if (!(Number.isInteger(holder) && holder > 0)) {
    // Created but its pid not written yet (or never: a crash in between): only an old one is stale.
    try {
      if (Date.now() - statSync(lockPath).mtimeMs < 5_000) return false
    } catch {
      return false
    }
  } else if (holder === process.pid || isAlive(holder)) {
    return false // held (by another call of this process, or another live process)
  }
  rmSync(lockPath, {force: true})
  return false
}

/**
 * Runs `fn` holding <dataDir>/runtime.lock, which serialises every change to runtime.json and every
 * server start for that directory (two redis-servers must never share one AOF). Waits up to
 * `timeoutMs` for another holder (which may be starting a server).
 */
export async function withDiscoveryLock<T>(dataDir: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const lockPath = join(dataDir, LOCK_FILE)
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    if (unwritableDir(() => (mkdirSync(dataDir, {recursive: true}), tryLock(lockPath)), dataDir)) break
    if (Date.now() >= deadline) {
      let holder = ''
      try {
        holder = readFileSync(lockPath, 'utf8').trim()
      } catch {
        // gone meanwhile
      }
      throw new UserError(`Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${lockPath}${holder ? ` (held by pid ${holder})` : ''}`, {
        code: 'RUNTIME_LOCKED',
        hint: `Another tektree command is starting or stopping the embedded runtime for ${dataDir}; wait for it, or remove ${lockPath} if no tektree runs.`,
        exitCode: 2,
      })
    }
    await sleep(Math.min(200, 20 + attempt * 10))
  }
  heldLocks.add(lockPath)
  releaseLocksAtExit()
  try {
    return await fn()
  } finally {
    heldLocks.delete(lockPath)
    rmSync(lockPath, {force: true})
  }
}

/**
 * `fn`, with a data dir that cannot be written (read-only disk, no permission, a file in its place)
 * as a user error naming it, as the store file's errors are, not an "unexpected error".
 */
function unwritableDir<T>(fn: () => T, dataDir: string): T {
  try {
    return fn()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    if (!/^(EROFS|EACCES|EPERM|ENOTDIR|EEXIST|ENOSPC)$/.test(code)) throw error
    throw new UserError(`Cannot write the data directory ${dataDir}: ${(error as Error).message}`, {
      code: 'DATA_DIR_UNWRITABLE',
      hint: 'Make sure it is a directory, writable by this user, on a disk with space left; or use another one (run from another directory, or set TEKTREE_DATA_DIR).',
      exitCode: 2,
      details: {path: dataDir},
      cause: error,
    })
  }
}

/** Locks this process holds: a signal's process.exit() skips the `finally` that removes them. */
const heldLocks = new Set<string>()
let locksReleasedAtExit = false

function releaseLocksAtExit(): void {
  if (locksReleasedAtExit) return
  locksReleasedAtExit = true
  process.on('exit', () => {
    for (const lockPath of heldLocks) {
      try {
        if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) rmSync(lockPath, {force: true})
      } catch {
        // gone already
      }
    }
  })
}

/** Read-modify-write of runtime.json under the lock; `change` returns the new content (or undefined: unchanged). */
export async function updateDiscovery(
  dataDir: string,
  change: (current: Discovery) => Discovery | undefined | Promise<Discovery | undefined>,
  lockTimeoutMs?: number,
): Promise<Discovery> {
  return withDiscoveryLock(dataDir, async () => {
    const read = readDiscovery(dataDir)
    if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
    const current = read.state === 'found' ? read.discovery : emptyDiscovery(dataDir)
    const next = await change(structuredClone(current))
    if (next) saveDiscovery(dataDir, next)
    return next ?? current
  }, lockTimeoutMs)
}

/**
 * At process exit (no waiting possible): drops the entries `pid` owns from runtime.json without the
 * lock. Best effort; a leftover entry names a dead owner, which the next command or `status` cleans.
 */
export function dropOwnedEntriesSync(dataDir: string, pid: number): void {
  try {
    const read = readDiscovery(dataDir)
    if (read.state !== 'found') return
    const d = read.discovery
    let changed = false
    for (const part of ['redis', 'mongo'] as const) {
      if (d[part]?.owner_pid === pid) {
        delete d[part]
        changed = true
      }
    }
    if (changed) saveDiscovery(dataDir, d)
  } catch {
    // exiting anyway
  }
}

// ------------------------------------------------------------------------------ processes

/**
 * True while `pid` runs. A zombie (exited, not yet reaped: common for orphans in containers whose
 * init does not reap) counts as gone.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state === 'Z' || state === 'X') return false
  } catch {
    // No /proc (macOS) or a race with exit: kill(0) above already answered.
  }
  return true
}

/** Whether `pid`'s command line mentions `word` (true when it cannot be told, e.g. without /proc). */
export function commandMatches(pid: number, word: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word)
  } catch {
    return existsSync('/proc/self') ? false : true
  }
}

/** Waits until `pid` is gone; false when still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < 100_000; i++) {
    if (!isAlive(pid)) return true
    if (Date.now() >= deadline) return false
    await sleep(50)
  }
  return !isAlive(pid)
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
export async function terminate(pid: number, graceMs: number): Promise<'not-running' | 'terminated' | 'killed' | 'survived'> {
  if (!isAlive(pid)) return 'not-running'
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return 'not-running'
  }
  if (await waitForExit(pid, graceMs)) return 'terminated'
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return 'terminated'
  }
  return (await waitForExit(pid, 5_000)) ? 'killed' : 'survived'
}

/** A Redis PING over a raw socket (no client library, no retries): true on +PONG within timeoutMs. */
export function pingRedis(port: number, timeoutMs = 1_000, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = connect({port, host})
    let reply = ''
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolvePing(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

/**
 * Asks the redis-server on `port` to SHUTDOWN (it fsyncs its AOF first) over a raw socket; true when
 * it closed the connection without an error reply. The caller waits for the pid to exit.
 */
export function shutdownRedis(port: number, timeoutMs = 2_000, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolveShutdown) => {
    const socket = connect({port, host})
    let reply = ''
    let connected = false
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolveShutdown(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => {
      connected = true
      socket.write('SHUTDOWN\r\n')
    })
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8')
      if (reply.includes('\r\n')) done(false) // "-ERR Errors trying to SHUTDOWN..."
    })
    socket.once('error', () => done(connected && reply === ''))
    socket.once('close', () => done(connected && reply === ''))
  })
}

/** A MongoDB ping with the official driver; true when it answers within timeoutMs. */
export async function pingMongo(url: string, timeoutMs = 2_000): Promise<boolean> {
  const {MongoClient} = await import('mongodb')
  const client = new MongoClient(url, {serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, directConnection: true})
  try {
    await client.db('admin').command({ping: 1})
    return true
  } catch {
    return false
  } finally {
    await client.close().catch(() => undefined)
  }
}
