/**
 * The servers tektree starts and supervises for a data directory (<dataDir>, default ./.tektree):
 *
 * - `tektree up` starts redis-server (AOF everysec, data in <dataDir>/redis) and the store: mongod
 *   (data in <dataDir>/mongo) where one is on PATH or named by TEKTREE_MONGO_BIN, else the SQLite
 *   file <dataDir>/store.db, which it opens once (creating and migrating it, so a bad file is
 *   reported there). It records them in <dataDir>/runtime.json; `status` reads and pings; `down`
 *   stops them and keeps their data (--purge deletes it).
 * - Without `up`, a command that needs a server starts it for its own run in the same place
 *   (<dataDir>/redis, <dataDir>/mongo), records it in runtime.json owned by its pid so that other
 *   commands attach to it, and stops it when it exits (normally, on an error, or on a signal).
 *
 * Every server runs in its own process group (spawned detached): Ctrl+C in a terminal reaches
 * tektree, which drains and reports, and not the servers under it.
 */
import {spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {UserError} from '../errors.js'
import {interruption, noteInterruption} from '../core/interrupt.js'
import {freePort, onPath, runProgram as run, sleep} from './child.js'
import {findJava, KAFKA_INSTALL_HINT, kafkaAvailable, portOpen, startKafkaServer} from './kafka-server.js'
import {
  commandMatches,
  type DiscoveredServer,
  type DiscoveredStoreFile,
  type Discovery,
  dropOwnedEntriesSync,
  emptyDiscovery,
  isAlive,
  newerDiscoveryError,
  pingMongo,
  pingRedis,
  busFilePath,
  readBusKind,
  readDiscovery,
  recordBusKind,
  removeDiscovery,
  resolveDataDir,
  saveDiscovery,
  shutdownRedis,
  terminate,
  updateDiscovery,
  waitForExit,
  withDiscoveryLock,
} from './discovery.js'

export * from './discovery.js'

export type PartName = 'redis' | 'mongo' | 'kafka'

/** The servers a bus can be (`tektree up --bus`). */
export type BusPartName = 'redis' | 'kafka'

export const STORE_FILE = 'store.db'

/** <dataDir>/store.db: the embedded store wherever no mongod is available. */
export function storeFilePath(dataDir: string): string {
  return join(dataDir, STORE_FILE)
}

const PART_LABEL: Record<PartName, string> = {redis: 'bus', mongo: 'store', kafka: 'bus'}

const PART_PROGRAM: Record<PartName, string> = {redis: 'redis-server', mongo: 'mongod', kafka: 'the Kafka broker'}

// ------------------------------------------------------------------------------ finding binaries


export type Found = {ok: true; bin: string} | {ok: false; reason: string}

/** TEKTREE_REDIS_BIN, else redis-server on PATH; `reason` says why none was found. */
export function findRedisServer(): Found {
  const explicit = process.env.TEKTREE_REDIS_BIN
  if (explicit) return existsSync(explicit) ? {ok: true, bin: explicit} : {ok: false, reason: `redis-server not found (TEKTREE_REDIS_BIN=${explicit} does not exist)`}
  const found = onPath('redis-server')
  return found ? {ok: true, bin: found} : {ok: false, reason: 'redis-server not found on PATH'}
}

/** TEKTREE_MONGO_BIN (which pins it: when missing, nothing else is tried), else mongod on PATH. */
export function findMongod(): Found {
  const pinned = process.env.TEKTREE_MONGO_BIN
  if (pinned) return existsSync(pinned) ? {ok: true, bin: pinned} : {ok: false, reason: `mongod not found (TEKTREE_MONGO_BIN=${pinned} does not exist)`}
  const mongod = process.env.MONGOMS_SYSTEM_BINARY || onPath('mongod')
  return mongod && existsSync(mongod) ? {ok: true, bin: mongod} : {ok: false, reason: 'no mongod on PATH'}
}

export const REDIS_INSTALL_HINT = 'apt-get install -y redis-server, or --bus-url'

/** Java and the provisioned Kafka jars (scripts/provision-kafka.sh; provisioned on demand where Maven is). */
export function findKafka(): Found {
  const available = kafkaAvailable()
  if (!available.ok) return {ok: false, reason: available.reason}
  return {ok: true, bin: findJava()!}
}

function findBinary(part: PartName): Found {
  return part === 'redis' ? findRedisServer() : part === 'kafka' ? findKafka() : findMongod()
}

// ------------------------------------------------------------------------------ helpers



function tail(file: string, chars = 800): string {
  try {
    return readFileSync(file, 'utf8').trim().slice(-chars)
  } catch {
    return ''
  }
}


/**
 * Starts `bin` detached: its own process group (so a terminal's Ctrl+C does not reach it) and
 * unreferenced (a command may exit without it; its owner stops it by pid).
 */
function spawnDetached(bin: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a')
  try {
    const child = spawn(bin, args, {detached: true, stdio: ['ignore', fd, fd]})
    child.on('error', () => undefined) // a failed spawn shows as a missing pid below
    child.unref()
    if (!child.pid) throw new Error(`could not start ${bin}`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

const logTail = (file: string) => {
  const text = tail(file)
  return text ? ` (log ${file}: ${text.split('\n').slice(-5).join(' | ')})` : ''
}

async function waitReady(pid: number, check: () => Promise<boolean>, timeoutMs: number, what: string, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; attempt < 10_000; attempt++) {
    if (!isAlive(pid)) throw new Error(`${what} exited before it was ready${logTail(logFile)}`)
    if (await check()) return
    if (Date.now() >= deadline) break
    await sleep(50)
  }
  await terminate(pid, 2_000)
  throw new Error(`${what} did not answer within ${Math.round(timeoutMs / 1000)} s${logTail(logFile)}`)
}

// ------------------------------------------------------------------------------ starting and stopping

export interface StartServerOptions {
  /** Its data directory (created when missing). */
  dir: string
  /** A port to listen on (`up` restarting a part on the port it had); default a free one. */
  port?: number
  readyTimeoutMs?: number
  /** Told the server's pid as soon as it is spawned, before it answers (see startTracked). */
  onSpawn?: (pid: number) => void
}

/** Starts redis-server (AOF everysec), mongod or a Kafka broker on 127.0.0.1, detached; resolves once it answers. */
export async function startServer(part: PartName, options: StartServerOptions): Promise<DiscoveredServer> {
  const found = findBinary(part)
  if (!found.ok) throw new Error(found.reason)
  const {dir} = options
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  mkdirSync(dir, {recursive: true})
  if (part === 'kafka') {
    const handle = await startKafkaServer({dir, port: options.port, detached: true, readyTimeoutMs, onSpawn: options.onSpawn})
    return {url: handle.url, port: handle.port, pid: handle.pid, version: handle.version, data_dir: dir, persistent: true, log_file: handle.logFile, command: `${dir}/server.properties`}
  }
  const port = options.port ?? (await freePort())
  if (part === 'redis') {
    const version = `redis-server ${/v=(\S+)/.exec(await run(found.bin, ['--version'], 10_000))?.[1] ?? 'unknown'}`
    const logFile = join(dir, 'redis.log')
    const pid = spawnDetached(
      found.bin,
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--protected-mode', 'yes',
        '--dir', dir,
        '--appendonly', 'yes',
        '--appendfsync', 'everysec',
        '--save', '',
        '--daemonize', 'no',
        '--logfile', logFile,
      ],
      logFile,
    )
    options.onSpawn?.(pid)
    await waitReady(pid, () => pingRedis(port, 500), readyTimeoutMs, `${version} on port ${port}`, logFile)
    return {url: `redis://127.0.0.1:${port}`, port, pid, version, data_dir: dir, persistent: true, log_file: logFile, command: 'redis-server'}
  }
  const version = `mongod ${/db version v?(\S+)/.exec(await run(found.bin, ['--version'], 15_000))?.[1] ?? 'unknown'}`
  const url = `mongodb://127.0.0.1:${port}`
  const logFile = join(dir, 'mongod.log')
  const pid = spawnDetached(found.bin, ['--dbpath', dir, '--bind_ip', '127.0.0.1', '--port', String(port), '--logpath', logFile], join(dir, 'mongod.out'))
  options.onSpawn?.(pid)
  await waitReady(pid, () => pingMongo(url, 1_000), readyTimeoutMs, `${version} on port ${port}`, logFile)
  return {url, port, pid, version, data_dir: dir, persistent: true, log_file: logFile, command: 'mongod'}
}

export type StopHow = 'terminated' | 'killed' | 'not-running' | 'survived' | 'pid-reused'

/** Redis: SHUTDOWN (it fsyncs its AOF), then SIGTERM/SIGKILL if needed; mongod: SIGTERM (its clean shutdown), SIGKILL after the grace. */
export async function stopServer(part: PartName, server: DiscoveredServer, graceMs = 10_000): Promise<StopHow> {
  if (!isAlive(server.pid)) return 'not-running'
  if (!commandMatches(server.pid, server.command)) return 'pid-reused'
  if (part === 'redis' && (await shutdownRedis(server.port, Math.min(2_000, Math.max(graceMs, 200))))) {
    if (await waitForExit(server.pid, graceMs)) return 'terminated'
  }
  return terminate(server.pid, graceMs)
}

/** The live process (other than `except`) holding `dir` as its data directory, if any. */
export function holderOf(part: PartName, dir: string, except: number[] = []): number | null {
  if (part === 'mongo') {
    // mongod writes its pid into mongod.lock while it runs and empties it on a clean exit.
    try {
      const pid = Number(readFileSync(join(dir, 'mongod.lock'), 'utf8').trim())
      return pid > 0 && !except.includes(pid) && isAlive(pid) && commandMatches(pid, 'mongod') ? pid : null
    } catch {
      return null
    }
  }
  // redis-server keeps no lock; it chdirs into --dir, which /proc shows. The broker's JVM names its
  // <dir>/server.properties on its command line.
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return null
  }
  for (const name of pids) {
    const pid = Number(name)
    if (except.includes(pid)) continue
    try {
      if (part === 'kafka') {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(join(dir, 'server.properties')) && isAlive(pid)) return pid
        continue
      }
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'redis-server') continue
      if (readlinkSync(`/proc/${pid}/cwd`) === dir && isAlive(pid)) return pid
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return null
}

// ------------------------------------------------------------------------------ health

export interface PartHealth {
  pid: number
  alive: boolean
  answers: boolean
}

export async function checkPart(part: PartName, server: DiscoveredServer, timeoutMs?: number): Promise<PartHealth> {
  const alive = isAlive(server.pid) && commandMatches(server.pid, server.command)
  const answers =
    alive &&
    (part === 'redis' ? await pingRedis(server.port, timeoutMs ?? 1_000) : part === 'kafka' ? await portOpen(server.port, timeoutMs ?? 1_000) : await pingMongo(server.url, timeoutMs ?? 2_000))
  return {pid: server.pid, alive, answers}
}

function ownerAlive(server: DiscoveredServer): boolean {
  return server.owner_pid !== undefined && isAlive(server.owner_pid)
}

/** "the bus (redis-server 7.0.15, pid 123, port 6390)" */
function partName(part: PartName, server: DiscoveredServer): string {
  return `the ${PART_LABEL[part]} (${server.version}, pid ${server.pid}, port ${server.port})`
}

/** A part the discovery file names as running that does not answer: never silently replaced. */
function partDownError(part: PartName, server: DiscoveredServer, health: PartHealth, dataDir: string, timeoutMs: number): UserError {
  const what = health.alive ? `is running but did not answer within ${timeoutMs} ms` : 'is not running'
  const owned = server.owner_pid !== undefined
  const hint = owned
    ? `It was started by the tektree command with pid ${server.owner_pid}, which stops it when it ends; wait for that command or stop it.`
    : health.alive
      ? `\`tektree up\` restarts it (on port ${server.port}); \`tektree down\` stops the embedded runtime. Check ${server.log_file ?? server.data_dir} for why it hangs.`
      : `\`tektree up\` restarts it on port ${server.port}; \`tektree down\` clears the embedded runtime.`
  return new UserError(`The embedded runtime of ${dataDir} lists ${partName(part, server)}, but it ${what}`, {
    code: health.alive ? 'EMBEDDED_NOT_ANSWERING' : 'EMBEDDED_PART_DOWN',
    hint,
    exitCode: 2,
    details: {part: PART_LABEL[part], pid: server.pid, port: server.port, url: server.url},
  })
}

// ------------------------------------------------------------------------------ servers a command owns

/** A server this process started (or adopted) and must stop: when its last user closes, or at exit. */
interface Owned {
  part: PartName
  server: DiscoveredServer
  /** Set for a server recorded in <dataDir>/runtime.json; null for a private one in `tempDir`. */
  dataDir: string | null
  tempDir?: string
  refs: number
}

const owned = new Map<string, Owned>()

/**
 * Servers this process spawned that nothing records yet (not in runtime.json, not `owned`): pid -> a
 * word of its command line. They run in their own process group, so a Ctrl+C while they start never
 * reaches them; the hooks below stop them, or they would hold their data directory with no one to stop them.
 */
const starting = new Map<number, string>()

/** The word of a server's command line checked before signalling its pid (as DiscoveredServer.command). */
function commandWord(part: PartName, dir: string): string {
  return part === 'kafka' ? `${dir}/server.properties` : part === 'redis' ? 'redis-server' : 'mongod'
}

/**
 * startServer, with the server in `starting` from its spawn until the caller records it and calls
 * settleStarted(pid) (or it fails to start): a signal meanwhile stops it.
 */
async function startTracked(part: PartName, options: StartServerOptions): Promise<DiscoveredServer> {
  const spawned: number[] = []
  installHooks()
  let server: DiscoveredServer | undefined
  try {
    server = await startServer(part, {
      ...options,
      onSpawn: (pid) => {
        spawned.push(pid)
        starting.set(pid, commandWord(part, options.dir))
      },
    })
    return server
  } finally {
    // A broker that lost a port race was spawned again: only the one that answered is left to settle.
    for (const pid of spawned) if (pid !== server?.pid) starting.delete(pid)
    uninstallHooksWhenIdle()
  }
}

/** The server `pid` is recorded now (runtime.json or `owned`): no longer this process' to stop on a signal. */
function settleStarted(pid: number): void {
  starting.delete(pid)
  uninstallHooksWhenIdle()
}

/** SIGTERM (their clean shutdown), SIGKILL after a grace, to the servers still starting. */
async function stopStarting(): Promise<void> {
  const pids = [...starting]
  starting.clear()
  await Promise.allSettled(pids.map(async ([pid, word]) => (isAlive(pid) && commandMatches(pid, word) ? terminate(pid, 5_000) : undefined)))
}

let hooks: {exit: () => void; sigint: () => void; sigterm: () => void; sighup: () => void} | undefined

function ownedKey(dataDir: string | null, part: PartName, pid: number): string {
  return dataDir ? `${dataDir}\0${part}` : `private\0${pid}`
}

/**
 * While this process owns servers: at exit, SIGTERM them (an exit handler cannot wait; redis-server
 * flushes its AOF on SIGTERM as on SHUTDOWN) and drop their entries; on SIGINT/SIGTERM, when the
 * command installed no handler of its own, stop them properly and exit as the signal would have.
 * When it did (simulate, services drain first), that handler closes the runtime, which stops them.
 */
function installHooks(): void {
  if (hooks) return
  const exit = () => {
    for (const [pid, word] of starting) {
      try {
        if (isAlive(pid) && commandMatches(pid, word)) process.kill(pid, 'SIGTERM')
      } catch {
        // gone
      }
    }
    for (const entry of owned.values()) {
      if (entry.dataDir) {
        // `tektree up` may have taken it over meanwhile: then it is no longer ours to stop.
        const read = readDiscovery(entry.dataDir)
        const listed = read.state === 'found' ? read.discovery[entry.part] : undefined
        if (listed && (listed.pid !== entry.server.pid || listed.owner_pid !== process.pid)) continue
      }
      try {
        if (isAlive(entry.server.pid) && commandMatches(entry.server.pid, entry.server.command)) process.kill(entry.server.pid, 'SIGTERM')
      } catch {
        // gone
      }
      if (entry.dataDir) dropOwnedEntriesSync(entry.dataDir, process.pid)
      if (entry.tempDir) rmSync(entry.tempDir, {recursive: true, force: true})
    }
  }
  // SIGHUP: the terminal was closed; without a handler Node ends at once and leaves the servers running.
  const onSignal = (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => {
    // Nothing else knows of a server still starting: stopped here, whoever handles the signal.
    const startingStopped = stopStarting()
    // Prepended, so this runs first: any other listener is the command's own, and it owns the signal.
    if (process.listenerCount(signal) > 1) return
    const code = signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143
    const stopped = Promise.race([Promise.allSettled([startingStopped, stopAllOwned()]), sleep(10_000)]).then(() => undefined)
    noteInterruption({signal, exitCode: code, stopped})
    void stopped.finally(() => process.exit(code))
  }
  const sigint = () => onSignal('SIGINT')
  const sigterm = () => onSignal('SIGTERM')
  const sighup = () => onSignal('SIGHUP')
  hooks = {exit, sigint, sigterm, sighup}
  process.on('exit', exit)
  process.prependListener('SIGINT', sigint)
  process.prependListener('SIGTERM', sigterm)
  process.prependListener('SIGHUP', sighup)
}

/** How many calls hold the hooks for the whole of their work (see withStartHooks). */
let pinned = 0

/**
 * Runs `fn` (`up`'s work under the lock) with the hooks installed throughout, not only while a server
 * starts: Node's default exit on a signal would skip the exit handler that releases the lock.
 */
async function withStartHooks<T>(fn: () => Promise<T>): Promise<T> {
  pinned++
  installHooks()
  try {
    return await fn()
  } finally {
    pinned--
    uninstallHooksWhenIdle()
  }
}

function uninstallHooksWhenIdle(): void {
  if (!hooks || owned.size > 0 || starting.size > 0 || pinned > 0) return
  process.off('exit', hooks.exit)
  process.off('SIGINT', hooks.sigint)
  process.off('SIGTERM', hooks.sigterm)
  process.off('SIGHUP', hooks.sighup)
  hooks = undefined
}

async function stopAllOwned(): Promise<void> {
  await Promise.allSettled([...owned.entries()].map(([key, entry]) => stopOwned(key, entry)))
}

async function stopOwned(key: string, entry: Owned): Promise<void> {
  owned.delete(key)
  try {
    if (entry.dataDir) {
      const dataDir = entry.dataDir
      await updateDiscovery(dataDir, async (d) => {
        const current = d[entry.part]
        // `tektree up` may have taken it over meanwhile: then it is no longer ours to stop.
        if (!current || current.pid !== entry.server.pid || current.owner_pid !== process.pid) return undefined
        await stopServer(entry.part, entry.server, 10_000)
        delete d[entry.part]
        return d
      }, 30_000).catch(async () => {
        await stopServer(entry.part, entry.server, 10_000)
      })
    } else {
      await stopServer(entry.part, entry.server, 5_000)
    }
  } finally {
    if (entry.tempDir) rmSync(entry.tempDir, {recursive: true, force: true})
    uninstallHooksWhenIdle()
  }
}

function own(entry: Owned): () => Promise<void> {
  const key = ownedKey(entry.dataDir, entry.part, entry.server.pid)
  const existing = owned.get(key)
  if (existing) existing.refs++
  else owned.set(key, entry)
  installHooks()
  let released = false
  return async () => {
    if (released) return
    released = true
    const current = owned.get(key)
    if (!current) return
    current.refs--
    if (current.refs <= 0) await stopOwned(key, current)
  }
}

/** What a command without a URL uses for a part. */
export type CommandServer =
  | {how: 'attached'; server: DiscoveredServer}
  | {how: 'owned'; server: DiscoveredServer; started: boolean; release(): Promise<void>}
  | {how: 'private'; server: DiscoveredServer; note: string; release(): Promise<void>}
  | {how: 'unavailable'; reason: string}

export interface CommandServerOptions {
  /** Bound on a PING of a server the discovery file names (default 2 s). */
  pingTimeoutMs?: number
  readyTimeoutMs?: number
  /** For status: which command owns it ("simulate"). */
  ownerCommand?: string
}

/**
 * The server a command uses for `part` in `dataDir` when no URL names one:
 *   - the one runtime.json lists (from `up`, or from another running command): attach; one that
 *     does not answer is a UserError (exit 2), never replaced silently;
 *   - else one started now in <dataDir>/<part>, recorded as owned by this process (other commands
 *     attach to it) and stopped by release() or at exit; one left by a command that died is adopted;
 *   - when another server not in runtime.json holds <dataDir>/<part>: a private one in a temp dir;
 *   - no binary: 'unavailable' (the caller runs the part in-process and says so).
 */
export async function serverForCommand(part: PartName, dataDir: string, options: CommandServerOptions = {}): Promise<CommandServer> {
  const pingTimeoutMs = options.pingTimeoutMs ?? 2_000
  const listed = async (): Promise<CommandServer | 'start'> => {
    const read = readDiscovery(dataDir)
    if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
    const server = read.state === 'found' ? read.discovery[part] : undefined
    if (!server) return 'start'
    if (server.owner_pid === process.pid) {
      const key = ownedKey(dataDir, part, server.pid)
      const mine = owned.get(key)
      if (mine) return {how: 'owned', server, started: false, release: own(mine)}
    }
    const health = await checkPart(part, server, pingTimeoutMs)
    if (server.owner_pid === undefined || ownerAlive(server)) {
      if (health.answers) return {how: 'attached', server}
      throw partDownError(part, server, health, dataDir, pingTimeoutMs)
    }
    // Its owner died without stopping it (kill -9): adopt it if it answers, else clear it.
    return 'start'
  }

  const first = await listed()
  if (first !== 'start') return first

  return withDiscoveryLock(dataDir, async () => {
    // Another command may have started one while this one waited for the lock.
    const read = readDiscovery(dataDir)
    if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
    const discovery = read.state === 'found' ? read.discovery : emptyDiscovery(dataDir)
    const server = discovery[part]
    if (server && (server.owner_pid === undefined || ownerAlive(server))) {
      const health = await checkPart(part, server, pingTimeoutMs)
      if (health.answers) return {how: 'attached', server} as const
      throw partDownError(part, server, health, dataDir, pingTimeoutMs)
    }
    if (server) {
      // An orphan: its owner is gone.
      const health = await checkPart(part, server, pingTimeoutMs)
      if (health.answers) {
        const adopted: DiscoveredServer = {...server, owner_pid: process.pid, ...(options.ownerCommand ? {owner_command: options.ownerCommand} : {})}
        discovery[part] = adopted
        saveDiscovery(dataDir, discovery)
        return {how: 'owned', server: adopted, started: false, release: own({part, server: adopted, dataDir, refs: 1})} as const
      }
      if (health.alive) await stopServer(part, server, 5_000)
      delete discovery[part]
      saveDiscovery(dataDir, discovery)
    }

    const found = findBinary(part)
    if (!found.ok) return {how: 'unavailable', reason: found.reason} as const
    const dir = join(dataDir, part)
    const holder = holderOf(part, dir)
    if (holder !== null) {
      const tempDir = mkdtempSync(join(tmpdir(), `tektree-${part}-`))
      try {
        const privateServer = await startTracked(part, {dir: tempDir, readyTimeoutMs: options.readyTimeoutMs})
        const release = own({part, server: privateServer, dataDir: null, tempDir, refs: 1})
        settleStarted(privateServer.pid)
        const note =
          `${dir} is in use by another ${part === 'redis' ? 'redis-server' : 'mongod'} (pid ${holder}) that runtime.json does not list: ` +
          `this command's ${PART_LABEL[part]} runs in a temp dir and its data goes when it ends (stop pid ${holder}, or name it with --${PART_LABEL[part]}-url)`
        return {how: 'private', server: privateServer, note, release} as const
      } catch (error) {
        rmSync(tempDir, {recursive: true, force: true})
        return {how: 'unavailable', reason: `${part === 'redis' ? 'redis-server' : 'mongod'} could not be started (${(error as Error).message.split('\n')[0]})`} as const
      }
    }
    let started: DiscoveredServer
    try {
      started = await startTracked(part, {dir, readyTimeoutMs: options.readyTimeoutMs})
    } catch (error) {
      return {how: 'unavailable', reason: `${part === 'redis' ? 'redis-server' : 'mongod'} could not be started (${(error as Error).message.split('\n')[0]})`} as const
    }
    const mine: DiscoveredServer = {...started, owner_pid: process.pid, ...(options.ownerCommand ? {owner_command: options.ownerCommand} : {})}
    discovery[part] = mine
    saveDiscovery(dataDir, discovery)
    const release = own({part, server: mine, dataDir, refs: 1})
    settleStarted(mine.pid)
    return {how: 'owned', server: mine, started: true, release} as const
  })
}

/**
 * The Kafka broker runtime.json lists (`tektree up --bus kafka`): null when it lists none; one that
 * does not answer is a UserError (exit 2), as for any listed part. Commands never start a broker
 * for their own run: without `up --bus kafka` the bus is redis-server, except in a directory whose
 * bus is Kafka (bus.json): there a command without the broker is a UserError (exit 2), not a
 * redis-server that has none of its events.
 */
export async function listedKafka(dataDir: string, pingTimeoutMs = 2_000): Promise<DiscoveredServer | null> {
  const read = readDiscovery(dataDir)
  if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
  const server = read.state === 'found' ? read.discovery.kafka : undefined
  if (!server) {
    const remembered = readBusKind(dataDir)
    if (remembered?.kind !== 'kafka') return null
    throw new UserError(`The bus of ${dataDir} is a Kafka broker (its data is in ${join(dataDir, 'kafka')}), and it is not running`, {
      code: 'EMBEDDED_BUS_DOWN',
      hint: `\`tektree up\` starts it again (commands do not start a broker for their own run); to move this directory to redis-server on purpose: \`tektree up --bus redis --switch-bus\`.`,
      exitCode: 2,
      details: {bus: 'kafka', file: remembered.path},
    })
  }
  const health = await checkPart('kafka', server, pingTimeoutMs)
  if (!health.answers) throw partDownError('kafka', server, health, dataDir, pingTimeoutMs)
  return server
}

/** A server private to this call (ephemeral runtimes): in a fresh temp dir, removed with it by release(). */
export async function startPrivateServer(part: PartName, options: {readyTimeoutMs?: number} = {}): Promise<{server: DiscoveredServer; release(): Promise<void>}> {
  const tempDir = mkdtempSync(join(tmpdir(), `tektree-${part}-`))
  try {
    const server = await startTracked(part, {dir: tempDir, readyTimeoutMs: options.readyTimeoutMs})
    const release = own({part, server, dataDir: null, tempDir, refs: 1})
    settleStarted(server.pid)
    return {server, release}
  } catch (error) {
    rmSync(tempDir, {recursive: true, force: true})
    throw error
  }
}

// ------------------------------------------------------------------------------ the store file

/** Opens the SQLite store file once (creating and migrating it) and says what it is; a bad file throws its UserError. */
export async function prepareStoreFile(path: string): Promise<DiscoveredStoreFile> {
  const [{createSqliteStore}, {sqliteUrl, sqliteVersion}] = await Promise.all([import('../adapters/sqlite/index.js'), import('../adapters/drivers.js')])
  mkdirSync(join(path, '..'), {recursive: true})
  const store = await createSqliteStore({path})
  await store.close()
  return {url: sqliteUrl(path), path, version: await sqliteVersion()}
}

// ------------------------------------------------------------------------------ up

export interface UpResult {
  /** "started": something was started now; "already-up": everything was running already. */
  state: 'started' | 'already-up'
  discoveryFile: string
  discovery: Discovery
  started: PartName[]
  kept: PartName[]
  /** Parts that could not be started, with why and how to get them. */
  unavailable: Array<{part: PartName; reason: string}>
  /** Anything else worth a line: a part that could not get its old port back, a server taken over from a command. */
  notes: string[]
  /**
   * Which server is the bus and why: --bus, the one running, the one this directory last ran
   * (bus.json), or redis-server for a directory that never ran one. Absent when the bus was skipped.
   */
  bus?: {kind: BusPartName; from: 'flag' | 'running' | 'remembered' | 'default'; file: string; switched_from?: BusPartName}
}

export interface UpOptions {
  dataDir?: string
  /** Per server (default 90 s). */
  readyTimeoutMs?: number
  /** Skip a part (tests, or a machine that only wants the bus). */
  skip?: PartName[]
  /** Which server is the bus (default: the one the runtime has, else the one the directory last ran, else redis-server). */
  bus?: BusPartName
  /** Let `bus` differ from the kind the directory last ran (a deliberate move; its old bus' data is left behind). */
  switchBus?: boolean
}

/** The bus a directory last ran, in words: "a Kafka broker". */
const BUS_WORDS: Record<BusPartName, string> = {redis: 'redis-server', kafka: 'a Kafka broker'}

/**
 * Starts whatever part of the embedded runtime is not running yet; idempotent. A dead part comes
 * back on the port it had, so clients that were connected (ioredis reconnects to the same URL) and
 * running `tektree services` recover by themselves. The bus is the kind the directory last ran
 * unless --bus says otherwise, and a different one only with switchBus: its data (and, on Kafka,
 * the leaderboards in the store) belongs to that kind. A bus that cannot be started fails `up`
 * (exit 2) and stops what it started, except redis-server not being installed (commands then run
 * the bus in-process, as documented).
 */
export async function upEmbeddedRuntime(options: UpOptions = {}): Promise<UpResult> {
  const dataDir = resolveDataDir(options.dataDir)
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000
  const skip = new Set(options.skip ?? [])
  return withDiscoveryLock(dataDir, () => withStartHooks(async () => {
    const read = readDiscovery(dataDir)
    if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
    const existing = read.state === 'found' ? read.discovery : undefined
    const wasUp = Boolean(existing?.up)
    const remembered = readBusKind(dataDir)
    const busFrom: NonNullable<UpResult['bus']>['from'] = options.bus ? 'flag' : existing?.kafka ? 'running' : remembered ? 'remembered' : 'default'
    const busPart: BusPartName = options.bus ?? (existing?.kafka ? 'kafka' : (remembered?.kind ?? 'redis'))
    const otherBus: BusPartName = busPart === 'kafka' ? 'redis' : 'kafka'
    const other = existing?.[otherBus]
    if (other && !skip.has(busPart) && (await checkPart(otherBus, other)).alive) {
      // One bus per data dir: commands attach to the one runtime.json lists.
      throw new UserError(`The embedded runtime of ${dataDir} runs ${partName(otherBus, other)}; it cannot also run ${PART_PROGRAM[busPart]}`, {
        code: 'EMBEDDED_OTHER_BUS',
        hint: other.owner_pid !== undefined ? `It belongs to the tektree command with pid ${other.owner_pid}: wait for it to end, then \`tektree up --bus ${busPart}\`.` : `\`tektree down\` first (the data stays), then \`tektree up --bus ${busPart}\`.`,
        exitCode: 2,
        details: {running: otherBus, wanted: busPart},
      })
    }
    if (remembered && remembered.kind !== busPart && !skip.has(busPart) && !options.switchBus) {
      // Its streams or topics, and on Kafka the leaderboards kept in the store, belong to that kind:
      // an empty other bus in their place makes every later verify, lag or tail wrong.
      throw new UserError(`${dataDir} last ran ${BUS_WORDS[remembered.kind]} as its bus (its data is in ${join(dataDir, remembered.kind)}); \`--bus ${busPart}\` would start an empty ${PART_PROGRAM[busPart]} in its place`, {
        code: 'EMBEDDED_BUS_MISMATCH',
        hint:
          `\`tektree up\` (without --bus) starts ${BUS_WORDS[remembered.kind]} again. To move this directory to ${PART_PROGRAM[busPart]} on purpose: ` +
          `\`tektree up --bus ${busPart} --switch-bus\` (the store's events are republished to it; then rebuild the leaderboards with \`tektree replay --group gamification --from-scratch\`), ` +
          `or \`tektree down --purge\` first to start afresh (deletes the data).`,
        exitCode: 2,
        details: {last_ran: remembered.kind, wanted: busPart, file: remembered.path},
      })
    }
    const discovery: Discovery = {version: emptyDiscovery(dataDir).version, data_dir: dataDir}
    const started: PartName[] = []
    const kept: PartName[] = []
    const unavailable: UpResult['unavailable'] = []
    const notes: string[] = []
    /** A bus that could not be had, when that fails `up` (see below). */
    let busFailure: {reason: string; holder?: number} | undefined

    // The store first: a bad store file fails `up` before any server is started for nothing.
    // mongod where one is (or was) the store; a runtime that had the SQLite file keeps it.
    const useMongod = !skip.has('mongo') && (existing?.mongo !== undefined || (!existing?.sqlite && findMongod().ok))
    if (!skip.has('mongo') && !useMongod) {
      discovery.sqlite = await prepareStoreFile(storeFilePath(dataDir))
    }

    const bring = async (part: PartName) => {
      const known = existing?.[part]
      let port: number | undefined
      if (known) {
        const health = await checkPart(part, known)
        if (health.answers) {
          if (known.owner_pid !== undefined) {
            // A command's own server becomes the runtime's: `up` keeps it, the command no longer stops it.
            notes.push(`${partName(part, known)} was started by a tektree command (pid ${known.owner_pid}); the embedded runtime keeps it now`)
          }
          const {owner_pid: _owner, owner_command: _command, ...kept_} = known
          discovery[part] = kept_
          kept.push(part)
          return
        }
        // Alive but not answering: stop it rather than leave a second server on the same data.
        if (health.alive) await stopServer(part, known, 10_000)
        port = known.port
      }
      if (part === 'mongo' && known && known.command !== 'mongod') {
        // A v1 runtime's mongo-java-server (memory only): `up` no longer starts one; the store becomes the SQLite file.
        notes.push(`the store was ${known.version}, which tektree no longer starts; it is now ${storeFilePath(dataDir)}`)
        discovery.sqlite = await prepareStoreFile(storeFilePath(dataDir))
        return
      }
      const dir = join(dataDir, part)
      const holder = holderOf(part, dir, known ? [known.pid] : [])
      if (holder !== null) {
        // Two servers on one data directory would corrupt it.
        const reason = `${dir} is in use by another ${part === 'kafka' ? 'Kafka broker' : PART_PROGRAM[part]} (pid ${holder}) that runtime.json does not list`
        if (part === busPart) busFailure = {reason, holder}
        unavailable.push({part, reason: `${reason}: stop it, then \`tektree up\` again`})
        return
      }
      try {
        discovery[part] = await startTracked(part, {dir, port, readyTimeoutMs})
        started.push(part)
      } catch (error) {
        if (port !== undefined && !interruption()) {
          // Its old port may be taken by now: a new port beats no server, but clients must be told.
          try {
            discovery[part] = await startTracked(part, {dir, readyTimeoutMs})
            started.push(part)
            notes.push(`${PART_LABEL[part]}: port ${port} could not be had again (${(error as Error).message.split('\n')[0]}); it runs on ${discovery[part]!.port} now: restart commands that were attached`)
            return
          } catch (second) {
            error = second
          }
        }
        const reason = (error as Error).message
        // Only redis-server not being installed leaves the bus to each command in-process (README).
        if (part === busPart && (busPart === 'kafka' || options.bus || findRedisServer().ok)) busFailure = {reason}
        unavailable.push({part, reason})
      }
    }
    try {
      await Promise.all(([busPart, 'mongo'] as const).filter((part) => !skip.has(part) && (part !== 'mongo' || useMongod)).map(bring))

      const interrupted = interruption()
      if (interrupted) {
        // Ctrl+C while the servers started: the signal hook stops them (they are not recorded).
        await interrupted.stopped
        throw new Error(`interrupted by ${interrupted.signal}`)
      }
      if (busFailure) {
        // Nothing half up: the servers started for this `up` go, runtime.json stays as it was.
        await Promise.allSettled(started.map((part) => stopServer(part, discovery[part]!, 10_000)))
        throw busUnavailableError(dataDir, busPart, busFailure)
      }

      if (!discovery.redis && !discovery.kafka && !discovery.mongo && !discovery.sqlite) {
        saveDiscovery(dataDir, {...(existing ?? emptyDiscovery(dataDir)), up: undefined})
        throw new UserError(`Could not start the embedded runtime: ${unavailable.map((u) => `${u.part}: ${u.reason}`).join('; ')}`, {
          code: 'EMBEDDED_UNAVAILABLE',
          hint: busPart === 'kafka' ? `For the bus: ${KAFKA_INSTALL_HINT}.` : `For the bus: ${REDIS_INSTALL_HINT}.`,
          exitCode: 1,
          details: {unavailable},
        })
      }

      discovery.up = started.length === 0 && wasUp && existing?.up ? existing.up : {started_at: new Date().toISOString(), started_by_pid: process.pid}
      const discoveryFile = saveDiscovery(dataDir, discovery)!
      let bus: UpResult['bus']
      if (discovery[busPart]) {
        recordBusKind(dataDir, busPart)
        bus = {kind: busPart, from: busFrom, file: busFilePath(dataDir), ...(remembered && remembered.kind !== busPart ? {switched_from: remembered.kind} : {})}
      }
      const state = started.length === 0 && wasUp ? 'already-up' : 'started'
      return {state, discoveryFile, discovery, started, kept, unavailable, notes, ...(bus ? {bus} : {})}
    } finally {
      // Recorded in runtime.json now, or stopped above: no longer for a signal to stop.
      for (const part of started) settleStarted(discovery[part]!.pid)
    }
  }))
}

/** `up` could not have the bus it was to start: what is wrong and what to do (exit 2). */
function busUnavailableError(dataDir: string, bus: BusPartName, failure: {reason: string; holder?: number}): UserError {
  const hint =
    failure.holder !== undefined
      ? `Stop it (\`kill ${failure.holder}\`; an interrupted \`tektree up\` of an older tektree could leave one), then \`tektree up\` again.`
      : bus === 'kafka'
        ? `Check the reason above (the broker's log is ${join(dataDir, 'kafka', 'kafka.log')}); for Java and the broker's jars: ${KAFKA_INSTALL_HINT}.`
        : `Check the reason above (redis-server's log is ${join(dataDir, 'redis', 'redis.log')}); to install it: ${REDIS_INSTALL_HINT}.`
  return new UserError(`Could not start the bus of ${dataDir} (${PART_PROGRAM[bus]}): ${failure.reason.split('\n')[0]}`, {
    code: 'EMBEDDED_BUS_UNAVAILABLE',
    hint,
    exitCode: 2,
    details: {bus, reason: failure.reason, ...(failure.holder !== undefined ? {holder_pid: failure.holder} : {})},
  })
}

// ------------------------------------------------------------------------------ status

export interface PartStatus {
  /**
   * running: alive and answering; unresponsive: alive, not answering; dead: the recorded pid is gone;
   * absent: nothing recorded (commands start their own, or run it in-process: see mode and note).
   * For a SQLite store: running = the file opens, unresponsive = it does not (see error).
   */
  state: 'running' | 'unresponsive' | 'dead' | 'absent'
  /** embedded: `up`'s; per-command: a command's own (owner_pid) or started per command; file: the SQLite file; in-process. */
  mode: 'embedded' | 'per-command' | 'file' | 'in-process'
  kind: 'redis' | 'kafka' | 'mongodb' | 'sqlite'
  url?: string
  pid?: number
  alive?: boolean
  port?: number
  version?: string
  data_dir?: string
  persistent?: boolean
  /** A command's own server: its pid and name. */
  owner_pid?: number
  owner_command?: string
  /** SQLite: the file, its size (with its write-ahead log), the events it holds. */
  path?: string
  size_bytes?: number
  events?: number
  /** SQLite: outbox entries the relay gave up on (the bus refused them), set aside until released. */
  quarantined?: number
  error?: string
  /** What commands do for this part, and how to get the real one where it is not. */
  note?: string
}

export interface EmbeddedStatus {
  data_dir: string
  discovery_file: string | null
  /**
   * up: `tektree up` ran and every part answers; partial: some do not (`up` restarts them); down: no
   * `up` (commands use the store file and start their own servers); stale: an unreadable discovery
   * file was found (and removed).
   */
  state: 'up' | 'partial' | 'down' | 'stale'
  started_at?: string
  uptime_ms?: number
  bus: PartStatus
  store: PartStatus
  /** Set when a stale or unreadable discovery file (or entry) was removed. */
  cleaned?: string
}

const IN_PROCESS_NOTE = 'in-process parts live inside each command: other terminals cannot attach to them'

function idleBus(dataDir: string): PartStatus {
  if (readBusKind(dataDir)?.kind === 'kafka') {
    return {state: 'absent', mode: 'embedded', kind: 'kafka', data_dir: join(dataDir, 'kafka'), note: 'this data dir\'s bus is a Kafka broker: `tektree up` starts it again (commands do not start one for their own run)'}
  }
  const found = findRedisServer()
  return found.ok
    ? {state: 'absent', mode: 'per-command', kind: 'redis', note: 'a command that needs it starts redis-server in <data-dir>/redis for its run, and others attach to it meanwhile (`tektree up` keeps one running)'}
    : {state: 'absent', mode: 'in-process', kind: 'redis', note: `${found.reason}: the bus runs in-process in each command; ${IN_PROCESS_NOTE} (${REDIS_INSTALL_HINT})`}
}

async function storeFileStatus(path: string, mode: PartStatus['mode']): Promise<PartStatus> {
  const {sqliteUrl, sqliteVersion} = await import('../adapters/drivers.js')
  const status: PartStatus = {state: 'running', mode, kind: 'sqlite', url: sqliteUrl(path), path, version: await sqliteVersion().catch(() => undefined), persistent: true}
  if (!existsSync(path)) {
    return {...status, state: 'absent', note: 'not created yet: the first command that needs a store creates it'}
  }
  // With its write-ahead log: until a checkpoint, recent writes live there.
  status.size_bytes = statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0)
  try {
    const {createSqliteStore} = await import('../adapters/sqlite/index.js')
    const store = await createSqliteStore({path, busyTimeoutMs: 2_000})
    try {
      status.events = await store.events.count()
      status.quarantined = await store.outbox.countQuarantined()
    } finally {
      await store.close()
    }
  } catch (error) {
    status.state = 'unresponsive'
    status.error = (error as Error).message
  }
  return status
}

function serverStatus(part: PartName, server: DiscoveredServer, health: PartHealth): PartStatus {
  return {
    state: health.answers ? 'running' : health.alive ? 'unresponsive' : 'dead',
    mode: server.owner_pid !== undefined ? 'per-command' : 'embedded',
    kind: part === 'mongo' ? 'mongodb' : part,
    url: server.url,
    pid: server.pid,
    alive: health.alive,
    port: server.port,
    version: server.version,
    data_dir: server.data_dir,
    persistent: server.persistent,
    ...(server.owner_pid !== undefined ? {owner_pid: server.owner_pid, ...(server.owner_command ? {owner_command: server.owner_command} : {})} : {}),
    ...(server.persistent ? {} : {note: 'keeps its data in memory: it is lost on `tektree down`'}),
  }
}

export async function embeddedStatus(options: {dataDir?: string; now?: () => number} = {}): Promise<EmbeddedStatus> {
  const dataDir = resolveDataDir(options.dataDir)
  const now = options.now ?? Date.now
  const read = readDiscovery(dataDir)
  if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
  const idleStore = async (): Promise<PartStatus> => {
    const mongod = findMongod()
    if (mongod.ok) return {state: 'absent', mode: 'per-command', kind: 'mongodb', note: 'a command that needs it starts mongod in <data-dir>/mongo for its run, and others attach to it meanwhile'}
    return storeFileStatus(storeFilePath(dataDir), 'file')
  }
  if (read.state !== 'found') {
    const status: EmbeddedStatus = {data_dir: dataDir, discovery_file: null, state: 'down', bus: idleBus(dataDir), store: await idleStore()}
    if (read.state === 'invalid') {
      removeDiscovery(dataDir)
      status.state = 'stale'
      status.cleaned = `${read.path} was unreadable (${read.reason}) and was removed`
    }
    return status
  }
  const {discovery} = read
  const servers = (['redis', 'kafka', 'mongo'] as const).flatMap((part) => (discovery[part] ? [[part, discovery[part]!] as const] : []))
  const health = new Map(await Promise.all(servers.map(async ([part, server]) => [part, await checkPart(part, server)] as const)))

  // A command's server whose owner and server are both gone (kill -9) is dropped. An `up` server
  // that died stays listed: `tektree up` restarts it on its port, `tektree down` clears it.
  const gone = servers.filter(([part, server]) => server.owner_pid !== undefined && !health.get(part)!.alive && !ownerAlive(server))
  let cleaned: string | undefined
  if (gone.length > 0) {
    await updateDiscovery(dataDir, (d) => {
      for (const [part, server] of gone) if (d[part]?.pid === server.pid) delete d[part]
      return d
    })
    cleaned = `${read.path} named servers of commands that are gone (pids ${gone.map(([, s]) => s.pid).join(', ')}); they were removed from it`
  }
  const after = readDiscovery(dataDir)
  const current = after.state === 'found' ? after.discovery : emptyDiscovery(dataDir)

  const bus = current.kafka ? serverStatus('kafka', current.kafka, health.get('kafka') ?? (await checkPart('kafka', current.kafka))) : current.redis ? serverStatus('redis', current.redis, health.get('redis')!) : idleBus(dataDir)
  if (bus.state === 'running' && bus.mode === 'per-command') {
    bus.note = `started by ${bus.owner_command ? `\`tektree ${bus.owner_command}\`` : 'a tektree command'} (pid ${bus.owner_pid}${current.redis && !ownerAlive(current.redis) ? ', gone: the next command adopts it, `tektree down` stops it' : ''}) for its run; other commands attach to it meanwhile`
  }
  let store: PartStatus
  if (current.mongo) store = serverStatus('mongo', current.mongo, health.get('mongo')!)
  else if (current.sqlite) store = await storeFileStatus(current.sqlite.path, 'embedded')
  else store = await idleStore()

  const upParts = current.up ? [bus, store].filter((p) => p.mode === 'embedded') : []
  const state: EmbeddedStatus['state'] = current.up
    ? upParts.every((p) => p.state === 'running')
      ? 'up'
      : 'partial'
    : 'down'
  const status: EmbeddedStatus = {
    data_dir: dataDir,
    discovery_file: after.state === 'found' ? after.path : null,
    state,
    ...(current.up ? {started_at: current.up.started_at, uptime_ms: Math.max(0, now() - Date.parse(current.up.started_at))} : {}),
    bus,
    store,
  }
  if (cleaned) status.cleaned = cleaned
  return status
}

// ------------------------------------------------------------------------------ down

export interface DownResult {
  state: 'stopped' | 'not-running'
  stopped: Array<{part: PartName; pid: number; how: StopHow}>
  /** Servers commands started for their own run, left to them (they stop them when they end). */
  left: Array<{part: PartName; pid: number; owner_pid: number}>
  /** Data removed with --purge: the servers' directories and the store file. */
  purged: string[]
  discovery_file_removed: boolean
}

/**
 * Refuses to delete the data while another process has the store file open (`tektree services`,
 * a simulate): it would go on with a deleted file. A process ending just now (its terminal closed)
 * is waited for a moment. Where /proc cannot tell (not Linux), nothing is refused.
 */
async function refuseWhileOpen(file: string): Promise<void> {
  let holders = processesHolding(file)
  for (let i = 0; i < 20 && holders.length > 0; i++) {
    await sleep(100)
    holders = processesHolding(file)
  }
  if (holders.length === 0) return
  throw new UserError(`Not purging: ${holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ')} has the store file ${file} open`, {
    code: 'DATA_IN_USE',
    hint: 'Stop those commands first (Ctrl+C in their terminals), then run `tektree down --purge` again. The servers were stopped; nothing was deleted.',
    exitCode: 2,
    details: {pids: holders.map((h) => h.pid)},
  })
}

/** Other processes with `file` open, from /proc (none where there is no /proc). */
export function processesHolding(file: string): Array<{pid: number; command: string}> {
  if (!existsSync(file) || !existsSync('/proc/self/fd')) return []
  const target = realpathSync(file)
  const out: Array<{pid: number; command: string}> = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue // gone, or not ours to look at
    }
    const holds = fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === target
      } catch {
        return false
      }
    })
    if (!holds) continue
    let command = ''
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).map((arg) => basename(arg)).slice(0, 4).join(' ')
    } catch {
      // gone meanwhile
    }
    out.push({pid, command: command || 'a process'})
  }
  return out
}

export async function downEmbeddedRuntime(options: {dataDir?: string; graceMs?: number; purge?: boolean} = {}): Promise<DownResult> {
  const dataDir = resolveDataDir(options.dataDir)
  const graceMs = options.graceMs ?? 10_000
  const result: DownResult = {state: 'not-running', stopped: [], left: [], purged: [], discovery_file_removed: false}
  await withDiscoveryLock(dataDir, async () => {
    const read = readDiscovery(dataDir)
    if (read.state === 'newer') throw newerDiscoveryError(read.path, read.version)
    if (read.state === 'found') {
      const d = read.discovery
      const entries = (['redis', 'kafka', 'mongo'] as const).flatMap((part) => (d[part] ? [[part, d[part]!] as const] : []))
      for (const [part, server] of entries) {
        if (server.owner_pid !== undefined && ownerAlive(server) && isAlive(server.pid)) result.left.push({part, pid: server.pid, owner_pid: server.owner_pid})
      }
      const toStop = entries.filter(([part]) => !result.left.some((l) => l.part === part))
      result.stopped = await Promise.all(toStop.map(async ([part, server]) => ({part, pid: server.pid, how: await stopServer(part, server, graceMs)})))
      const survivor = result.stopped.find((s) => s.how === 'survived')
      if (survivor) {
        throw new UserError(`${survivor.part} (pid ${survivor.pid}) is still running after SIGKILL`, {
          code: 'STOP_FAILED',
          hint: `Check it with \`ps -p ${survivor.pid}\`; the discovery file ${read.path} was kept.`,
          exitCode: 1,
        })
      }
      if (result.stopped.some((s) => s.how === 'terminated' || s.how === 'killed')) result.state = 'stopped'
      const rest: Discovery = emptyDiscovery(dataDir)
      for (const l of result.left) rest[l.part] = d[l.part]
      result.discovery_file_removed = saveDiscovery(dataDir, rest) === null
    } else if (read.state === 'invalid') {
      removeDiscovery(dataDir)
      result.discovery_file_removed = true
    }
    if (options.purge) {
      await refuseWhileOpen(storeFilePath(dataDir))
      if (result.left.length > 0) {
        throw new UserError(`Not purging ${dataDir}: ${result.left.map((l) => `the ${PART_LABEL[l.part]} (pid ${l.pid}) of the tektree command with pid ${l.owner_pid}`).join(', ')} still runs`, {
          code: 'DATA_IN_USE',
          hint: 'Wait for that command to end (or stop it), then run `tektree down --purge` again.',
          exitCode: 2,
        })
      }
      const store = storeFilePath(dataDir)
      // bus.json too: with the bus' data gone, the next `up` may pick either kind afresh.
      for (const path of [join(dataDir, 'redis'), join(dataDir, 'kafka'), join(dataDir, 'mongo'), store, `${store}-wal`, `${store}-shm`, `${store}-journal`, busFilePath(dataDir)]) {
        if (existsSync(path)) {
          rmSync(path, {recursive: true, force: true})
          result.purged.push(path)
        }
      }
    }
  })
  return result
}
