/**
 * The embedded runtime that `tektree up` leaves running: redis-server (AOF everysec, data in
 * <dataDir>/redis) and a MongoDB wire server (mongod with data in <dataDir>/mongo, else
 * mongo-java-server, which keeps data in memory), both DETACHED so they outlive the command, found by
 * later commands through <dataDir>/runtime.json. `status` reads and pings; `down` stops and cleans.
 *
 * Per-command servers (started and stopped by one command) use the launchers in redis-server.ts and
 * mongo-server.ts; this module only deals with the long-lived, detached ones.
 */
import {execFile, spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {delimiter, join} from 'node:path'
import {UserError} from '../../errors.js'
import {
  commandMatches,
  type DiscoveredServer,
  type Discovery,
  DISCOVERY_VERSION,
  isAlive,
  pingMongo,
  pingRedis,
  readDiscovery,
  removeDiscovery,
  resolveDataDir,
  terminate,
  writeDiscovery,
} from './discovery.js'

export * from './discovery.js'

export type PartName = 'redis' | 'mongo'

// ------------------------------------------------------------------------------ finding binaries

export function findOnPath(name: string): string | null {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory && existsSync(join(directory, name))) return join(directory, name)
  }
  return null
}

/** TEKTREE_REDIS_BIN, else redis-server on PATH; `reason` says why none was found. */
export function findRedisServer(): {ok: true; bin: string} | {ok: false; reason: string} {
  const explicit = process.env.TEKTREE_REDIS_BIN
  if (explicit) return existsSync(explicit) ? {ok: true, bin: explicit} : {ok: false, reason: `redis-server not found (TEKTREE_REDIS_BIN=${explicit} does not exist)`}
  const found = findOnPath('redis-server')
  return found ? {ok: true, bin: found} : {ok: false, reason: 'redis-server not found on PATH'}
}

export const REDIS_INSTALL_HINT = 'apt-get install -y redis-server, or --redis-url'
export const MONGO_INSTALL_HINT =
  'install mongod (MongoDB Community 7.0), or provision mongo-java-server with `bash scripts/provision-mongo.sh` (Java 17 + Maven), or --mongo-url'

type MongoCandidate = {kind: 'mongod'; bin: string} | {kind: 'java'; java: string; classpath: string; launcher: string} | {kind: 'none'; reason: string}

async function packageRootDir(): Promise<string> {
  const {packageRoot} = await import('./mongo-server.js')
  return packageRoot()
}

/** mongod (MONGOMS_SYSTEM_BINARY or PATH), else mongo-java-server when java and its jars are there. */
export async function findMongoServer(): Promise<MongoCandidate> {
  // TEKTREE_MONGO_BIN, like TEKTREE_REDIS_BIN, pins the server binary: when it is missing, nothing else is tried.
  const pinned = process.env.TEKTREE_MONGO_BIN
  if (pinned) return existsSync(pinned) ? {kind: 'mongod', bin: pinned} : {kind: 'none', reason: `mongod not found (TEKTREE_MONGO_BIN=${pinned} does not exist)`}
  const mongod = process.env.MONGOMS_SYSTEM_BINARY || findOnPath('mongod')
  if (mongod && existsSync(mongod)) return {kind: 'mongod', bin: mongod}
  const javaHome = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : null
  const java = javaHome && existsSync(javaHome) ? javaHome : findOnPath('java')
  if (!java) return {kind: 'none', reason: 'no mongod on PATH and no java for mongo-java-server'}
  const {mongoJavaServerCacheDir} = await import('./mongo-server.js')
  const root = await packageRootDir()
  const launcher = join(root, 'test', 'support', 'mongo-java-server', 'MongoServerLauncher.java')
  if (!existsSync(launcher)) return {kind: 'none', reason: 'no mongod on PATH and the mongo-java-server launcher is not shipped here'}
  const explicit = process.env.TEKTREE_MONGO_JAVA_SERVER_CP
  if (explicit) return {kind: 'java', java, classpath: explicit, launcher}
  const cache = mongoJavaServerCacheDir(root)
  const ready =
    existsSync(join(cache, '.complete')) && readdirSync(cache).some((name) => name.startsWith('mongo-java-server-memory-backend') && name.endsWith('.jar'))
  if (!ready) return {kind: 'none', reason: `no mongod on PATH and the mongo-java-server jars are not provisioned (${cache})`}
  return {kind: 'java', java, classpath: `${cache}/*`, launcher}
}

// ------------------------------------------------------------------------------ helpers

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(file, args, {timeout: timeoutMs}, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${String(stderr || error.message).trim().slice(-500)}`))
      else resolveRun(String(stdout))
    })
  })
}

function tail(file: string, chars = 800): string {
  try {
    return readFileSync(file, 'utf8').trim().slice(-chars)
  } catch {
    return ''
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts `bin` in its own session with output to `logFile`; the command can exit without it. */
function spawnDetached(bin: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a')
  try {
    const child = spawn(bin, args, {detached: true, stdio: ['ignore', fd, fd]})
    child.unref()
    if (!child.pid) throw new Error(`could not start ${bin}`)
    return child.pid
  } finally {
    closeSync(fd)
  }
}

async function waitReady(pid: number, check: () => Promise<boolean>, timeoutMs: number, what: string, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; attempt < 10_000; attempt++) {
    if (!isAlive(pid)) throw new Error(`${what} exited before it was ready${logTail(logFile)}`)
    if (await check()) return
    if (Date.now() >= deadline) break
    await sleep(100)
  }
  await terminate(pid, 2_000)
  throw new Error(`${what} did not answer within ${Math.round(timeoutMs / 1000)} s${logTail(logFile)}`)
}

const logTail = (file: string) => {
  const text = tail(file)
  return text ? ` (log ${file}: ${text.split('\n').slice(-5).join(' | ')})` : ''
}

// ------------------------------------------------------------------------------ starting (detached)

async function startDetachedRedis(dataDir: string, readyTimeoutMs: number): Promise<DiscoveredServer> {
  const found = findRedisServer()
  if (!found.ok) throw new Error(`${found.reason} (${REDIS_INSTALL_HINT})`)
  const versionText = await run(found.bin, ['--version'], 10_000)
  const version = `redis-server ${/v=(\S+)/.exec(versionText)?.[1] ?? 'unknown'}`
  const dir = join(dataDir, 'redis')
  mkdirSync(dir, {recursive: true})
  const port = await freePort()
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
  await waitReady(pid, () => pingRedis(port, 500), readyTimeoutMs, version, logFile)
  return {url: `redis://127.0.0.1:${port}`, port, pid, version, data_dir: dir, persistent: true, log_file: logFile, command: 'redis-server'}
}

async function startDetachedMongo(dataDir: string, readyTimeoutMs: number): Promise<DiscoveredServer> {
  const candidate = await findMongoServer()
  if (candidate.kind === 'none') throw new Error(`${candidate.reason} (${MONGO_INSTALL_HINT})`)
  const dir = join(dataDir, 'mongo')
  mkdirSync(dir, {recursive: true})
  const port = await freePort()
  const url = `mongodb://127.0.0.1:${port}`
  if (candidate.kind === 'mongod') {
    const versionText = await run(candidate.bin, ['--version'], 15_000)
    const version = `mongod ${/db version v?(\S+)/.exec(versionText)?.[1] ?? 'unknown'}`
    const logFile = join(dir, 'mongod.log')
    const pid = spawnDetached(candidate.bin, ['--dbpath', dir, '--bind_ip', '127.0.0.1', '--port', String(port), '--logpath', logFile], join(dir, 'mongod.out'))
    await waitReady(pid, () => pingMongo(url, 1_000), readyTimeoutMs, version, logFile)
    return {url, port, pid, version, data_dir: dir, persistent: true, log_file: logFile, command: 'mongod'}
  }
  const {MONGO_JAVA_SERVER_VERSION} = await import('./mongo-server.js')
  const version = `mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (memory backend)`
  const logFile = join(dir, 'mongo-java-server.log')
  // No --watch-stdin: this server must outlive the command; `down` stops it with SIGTERM.
  const pid = spawnDetached(candidate.java, ['-cp', candidate.classpath, candidate.launcher, String(port)], logFile)
  await waitReady(pid, () => pingMongo(url, 1_000), readyTimeoutMs, version, logFile)
  return {url, port, pid, version, data_dir: dir, persistent: false, log_file: logFile, command: 'MongoServerLauncher'}
}

// ------------------------------------------------------------------------------ health

export interface PartHealth {
  pid: number
  alive: boolean
  answers: boolean
}

export async function checkPart(part: PartName, server: DiscoveredServer): Promise<PartHealth> {
  const alive = isAlive(server.pid) && commandMatches(server.pid, server.command)
  const answers = alive && (part === 'redis' ? await pingRedis(server.port, 1_000) : await pingMongo(server.url, 2_000))
  return {pid: server.pid, alive, answers}
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
}

export interface UpOptions {
  dataDir?: string
  /** Per server (default 90 s: a cold JVM compiles the mongo-java-server launcher first). */
  readyTimeoutMs?: number
  /** Skip a part (tests, or a machine that only wants the bus). */
  skip?: PartName[]
}

/** Starts whatever part of the embedded runtime is not running yet; idempotent. */
export async function upEmbeddedRuntime(options: UpOptions = {}): Promise<UpResult> {
  const dataDir = resolveDataDir(options.dataDir)
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000
  const previous = readDiscovery(dataDir)
  const existing = previous.state === 'found' ? previous.discovery : undefined

  const parts: Partial<Record<PartName, DiscoveredServer>> = {}
  const started: PartName[] = []
  const kept: PartName[] = []
  const unavailable: UpResult['unavailable'] = []
  const starters: Record<PartName, () => Promise<DiscoveredServer>> = {
    redis: () => startDetachedRedis(dataDir, readyTimeoutMs),
    mongo: () => startDetachedMongo(dataDir, readyTimeoutMs),
  }

  await Promise.all(
    (['redis', 'mongo'] as const).map(async (part) => {
      if (options.skip?.includes(part)) return
      const known = existing?.[part]
      if (known) {
        const health = await checkPart(part, known)
        if (health.answers) {
          parts[part] = known
          kept.push(part)
          return
        }
        // Alive but not answering: stop it rather than leave a second server on the same data.
        if (health.alive) await terminate(known.pid, 10_000)
      }
      try {
        parts[part] = await starters[part]()
        started.push(part)
      } catch (error) {
        unavailable.push({part, reason: (error as Error).message})
      }
    }),
  )

  if (!parts.redis && !parts.mongo) {
    removeDiscovery(dataDir)
    throw new UserError(`Could not start the embedded runtime: ${unavailable.map((u) => `${u.part}: ${u.reason}`).join('; ')}`, {
      code: 'EMBEDDED_UNAVAILABLE',
      hint: `For the bus: ${REDIS_INSTALL_HINT}. For the store: ${MONGO_INSTALL_HINT}. Commands still run in-process without them.`,
      exitCode: 1,
      details: {unavailable},
    })
  }

  const discovery: Discovery = {
    version: DISCOVERY_VERSION,
    started_at: started.length === 0 && existing ? existing.started_at : new Date().toISOString(),
    data_dir: dataDir,
    started_by_pid: process.pid,
    ...(parts.redis ? {redis: parts.redis} : {}),
    ...(parts.mongo ? {mongo: parts.mongo} : {}),
  }
  if (started.length === 0 && existing) discovery.started_by_pid = existing.started_by_pid
  const discoveryFile = writeDiscovery(dataDir, discovery)
  return {state: started.length === 0 ? 'already-up' : 'started', discoveryFile, discovery, started, kept, unavailable}
}

// ------------------------------------------------------------------------------ status

export interface PartStatus {
  /** running: alive and answering; unresponsive: alive, not answering; dead: the recorded pid is gone; absent: not part of the runtime. */
  state: 'running' | 'unresponsive' | 'dead' | 'absent'
  /** What commands use for this part now. */
  mode: 'embedded' | 'per-command' | 'in-process'
  url?: string
  pid?: number
  alive?: boolean
  port?: number
  version?: string
  data_dir?: string
  persistent?: boolean
  /** Set when commands fall back to something else for this part: what and how to get the real one. */
  note?: string
}

export interface EmbeddedStatus {
  data_dir: string
  discovery_file: string | null
  /** up: every recorded part runs; partial: some do; down: no runtime; stale: a file whose servers are all gone (removed now). */
  state: 'up' | 'partial' | 'down' | 'stale'
  started_at?: string
  uptime_ms?: number
  redis: PartStatus
  mongo: PartStatus
  /** Set when a stale or unreadable discovery file was removed. */
  cleaned?: string
}

const IN_PROCESS_NOTE = 'in-process parts live inside each command: other terminals cannot attach to them'

async function idleMode(part: PartName): Promise<PartStatus> {
  if (part === 'redis') {
    const found = findRedisServer()
    return found.ok
      ? {state: 'absent', mode: 'per-command', note: `not up: each command starts its own redis-server for its run (\`tektree up\` shares one)`}
      : {state: 'absent', mode: 'in-process', note: `${found.reason}: the bus runs in-process in each command; ${IN_PROCESS_NOTE} (${REDIS_INSTALL_HINT})`}
  }
  const candidate = await findMongoServer()
  return candidate.kind !== 'none'
    ? {state: 'absent', mode: 'per-command', note: `not up: each command starts its own ${candidate.kind === 'mongod' ? 'mongod' : 'mongo-java-server'} for its run (\`tektree up\` shares one)`}
    : {state: 'absent', mode: 'in-process', note: `${candidate.reason}: the store runs in-process in each command; ${IN_PROCESS_NOTE} (${MONGO_INSTALL_HINT})`}
}

export async function embeddedStatus(options: {dataDir?: string; now?: () => number} = {}): Promise<EmbeddedStatus> {
  const dataDir = resolveDataDir(options.dataDir)
  const now = options.now ?? Date.now
  const read = readDiscovery(dataDir)
  if (read.state !== 'found') {
    const status: EmbeddedStatus = {data_dir: dataDir, discovery_file: null, state: 'down', redis: await idleMode('redis'), mongo: await idleMode('mongo')}
    if (read.state === 'invalid') {
      removeDiscovery(dataDir)
      status.state = 'stale'
      status.cleaned = `${read.path} was unreadable (${read.reason}) and was removed`
    }
    return status
  }
  const {discovery} = read
  const describePart = async (part: PartName): Promise<PartStatus> => {
    const server = discovery[part]
    if (!server) return idleMode(part)
    const health = await checkPart(part, server)
    return {
      state: health.answers ? 'running' : health.alive ? 'unresponsive' : 'dead',
      mode: health.answers ? 'embedded' : (await idleMode(part)).mode,
      url: server.url,
      pid: server.pid,
      alive: health.alive,
      port: server.port,
      version: server.version,
      data_dir: server.data_dir,
      persistent: server.persistent,
      ...(server.persistent ? {} : {note: 'keeps its data in memory: it is lost on `tektree down`'}),
    }
  }
  const [redis, mongo] = await Promise.all([describePart('redis'), describePart('mongo')])
  const recorded = [discovery.redis ? redis : null, discovery.mongo ? mongo : null].filter((p): p is PartStatus => p !== null)
  const running = recorded.filter((p) => p.state === 'running').length
  const anyAlive = recorded.some((p) => p.alive)
  const status: EmbeddedStatus = {
    data_dir: dataDir,
    discovery_file: read.path,
    state: running === recorded.length && running > 0 ? 'up' : running > 0 || anyAlive ? 'partial' : 'stale',
    started_at: discovery.started_at,
    uptime_ms: Math.max(0, now() - Date.parse(discovery.started_at)),
    redis,
    mongo,
  }
  if (status.state === 'stale') {
    removeDiscovery(dataDir)
    status.cleaned = `${read.path} named servers that are no longer running (pids ${recorded.map((p) => p.pid).join(', ')}); it was removed`
    status.discovery_file = null
    delete status.uptime_ms
    for (const part of ['redis', 'mongo'] as const) status[part] = {...status[part], mode: (await idleMode(part)).mode}
  }
  return status
}

// ------------------------------------------------------------------------------ down

export interface DownResult {
  state: 'stopped' | 'not-running'
  stopped: Array<{part: PartName; pid: number; how: 'terminated' | 'killed' | 'not-running' | 'survived' | 'pid-reused'}>
  /** Data directories removed with --purge. */
  purged: string[]
  discovery_file_removed: boolean
}

export async function downEmbeddedRuntime(options: {dataDir?: string; graceMs?: number; purge?: boolean} = {}): Promise<DownResult> {
  const dataDir = resolveDataDir(options.dataDir)
  const graceMs = options.graceMs ?? 10_000
  const read = readDiscovery(dataDir)
  const result: DownResult = {state: 'not-running', stopped: [], purged: [], discovery_file_removed: false}
  if (read.state === 'found') {
    const entries = (['redis', 'mongo'] as const).flatMap((part) => (read.discovery[part] ? [[part, read.discovery[part]!] as const] : []))
    result.stopped = await Promise.all(
      entries.map(async ([part, server]) => {
        if (isAlive(server.pid) && !commandMatches(server.pid, server.command)) return {part, pid: server.pid, how: 'pid-reused' as const}
        return {part, pid: server.pid, how: await terminate(server.pid, graceMs)}
      }),
    )
    const survivor = result.stopped.find((s) => s.how === 'survived')
    if (survivor) {
      throw new UserError(`${survivor.part} (pid ${survivor.pid}) is still running after SIGKILL`, {
        code: 'STOP_FAILED',
        hint: `Check it with \`ps -p ${survivor.pid}\`; the discovery file ${read.path} was kept.`,
        exitCode: 1,
      })
    }
    if (result.stopped.some((s) => s.how === 'terminated' || s.how === 'killed')) result.state = 'stopped'
  }
  if (read.state !== 'absent') {
    removeDiscovery(dataDir)
    result.discovery_file_removed = true
  }
  if (options.purge) {
    for (const dir of [join(dataDir, 'redis'), join(dataDir, 'mongo')]) {
      if (existsSync(dir)) {
        rmSync(dir, {recursive: true, force: true})
        result.purged.push(dir)
      }
    }
  }
  return result
}
