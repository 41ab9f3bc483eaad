/**
 * The discovery file of the embedded runtime: .tektree/runtime.json. `tektree up` writes it (atomically,
 * via rename) once both servers answer; every other command reads it to attach; `status` reports and
 * cleans a stale one; `down` removes it. Also the small process helpers all of them share.
 */
import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join, resolve} from 'node:path'

export const DISCOVERY_FILE = 'runtime.json'
export const DISCOVERY_VERSION = 1

export interface DiscoveredServer {
  url: string
  port: number
  pid: number
  /** e.g. "redis-server 7.0.15", "mongod 7.0.14", "mongo-java-server 1.47.0 (memory backend)". */
  version: string
  data_dir: string
  /** False when the server keeps its data in memory only (mongo-java-server). */
  persistent: boolean
  log_file?: string
  /** A word of the process' command line, checked before signalling a pid (pids are reused). */
  command: string
}

export interface Discovery {
  version: typeof DISCOVERY_VERSION
  started_at: string
  data_dir: string
  /** The `tektree up` process that wrote the file (gone by now; kept for the record). */
  started_by_pid: number
  redis?: DiscoveredServer
  mongo?: DiscoveredServer
}

/** `.tektree` in the current directory, unless TEKTREE_DATA_DIR or an explicit dir says otherwise. */
export function resolveDataDir(dataDir?: string): string {
  return resolve(dataDir ?? process.env.TEKTREE_DATA_DIR ?? '.tektree')
}

export function discoveryPath(dataDir: string): string {
  return join(dataDir, DISCOVERY_FILE)
}

export type DiscoveryRead = {state: 'absent'} | {state: 'invalid'; path: string; reason: string} | {state: 'found'; path: string; discovery: Discovery}

export function readDiscovery(dataDir: string): DiscoveryRead {
  const path = discoveryPath(dataDir)
  if (!existsSync(path)) return {state: 'absent'}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    return {state: 'invalid', path, reason: `not JSON (${(error as Error).message})`}
  }
  const d = parsed as Partial<Discovery>
  if (!d || typeof d !== 'object' || d.version !== DISCOVERY_VERSION || typeof d.started_at !== 'string') {
    return {state: 'invalid', path, reason: `not a tektree v${DISCOVERY_VERSION} discovery file`}
  }
  for (const part of [d.redis, d.mongo]) {
    if (part && (typeof part.url !== 'string' || !Number.isInteger(part.pid) || !Number.isInteger(part.port))) {
      return {state: 'invalid', path, reason: 'a server entry lacks url, pid or port'}
    }
  }
  return {state: 'found', path, discovery: d as Discovery}
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

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
