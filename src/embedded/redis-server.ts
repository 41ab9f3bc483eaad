/**
 * Starts a redis-server child process for the tests and benchmarks (the integration tier's shared
 * server, and the fault tests that stop, restart and crash their own).
 *
 * Only 127.0.0.1 is bound. Readiness is a bounded PING loop, never a fixed sleep. The child is not
 * detached (Ctrl-C reaches the whole process group, which suits a test run); whoever starts it calls
 * stop(). The servers tektree itself starts (`tektree up`, or for one command) come from index.ts,
 * detached in their own process group.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {pingRedis} from './discovery.js'
import {exited, freePort, onPath, sleep, waitExit} from './child.js'

export interface StartRedisServerOptions {
  /** Default: TEKTREE_REDIS_BIN, else `redis-server` on PATH. */
  bin?: string
  /** 0 or absent: a free port. */
  port?: number
  /** Working directory (AOF files, log); created when missing. */
  dir: string
  /** AOF with fsync every second (survives a restart; default false: nothing is persisted). */
  appendonly?: boolean
  /**
   * With appendonly: `always` fsyncs the AOF before Redis answers. With `everysec` (the default)
   * Redis postpones writing the AOF for up to 2 s while a background fsync is slow and answers all
   * the same, so a kill -9 under disk pressure loses writes it acknowledged.
   */
  appendfsync?: 'everysec' | 'always'
  /** Default <dir>/redis.log. */
  logFile?: string
  /** Bound on start-up (default 15 s). */
  readyTimeoutMs?: number
}

export interface RedisServerHandle {
  /** redis://127.0.0.1:<port> */
  url: string
  port: number
  /** Pid of the current process (changes after restart()). */
  pid: number
  /** e.g. "redis-server 7.0.15". */
  version: string
  dir: string
  logFile: string
  /** SIGTERM, wait for exit, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL: a crash (fault tests). */
  kill9(): Promise<void>
  /** Stops (if running) and starts again on the same port and directory. */
  restart(): Promise<void>
}

export const REDIS_SERVER_INSTALL_HINT = 'install it with `apt-get install -y redis-server` (Debian/Ubuntu), or set TEKTREE_REDIS_BIN to a redis-server binary'

function resolveBin(bin: string | undefined): string {
  const wanted = bin ?? process.env.TEKTREE_REDIS_BIN
  if (wanted) {
    if (wanted.includes('/')) {
      if (!existsSync(wanted)) throw new Error(`redis-server not found at ${wanted}: ${REDIS_SERVER_INSTALL_HINT}`)
      return wanted
    }
    const found = onPath(wanted)
    if (!found) throw new Error(`${wanted} not found on PATH: ${REDIS_SERVER_INSTALL_HINT}`)
    return found
  }
  const found = onPath('redis-server')
  if (!found) throw new Error(`redis-server not found on PATH: ${REDIS_SERVER_INSTALL_HINT}`)
  return found
}

function versionOf(bin: string): Promise<string> {
  return new Promise((resolveVersion, reject) => {
    execFile(bin, ['--version'], {timeout: 10_000}, (error, stdout) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code
        reject(new Error(code === 'ENOENT' || code === 'EACCES' ? `cannot run ${bin} (${code}): ${REDIS_SERVER_INSTALL_HINT}` : `${bin} --version failed: ${error.message}`))
        return
      }
      resolveVersion(`redis-server ${/v=(\S+)/.exec(String(stdout))?.[1] ?? 'unknown'}`)
    })
  })
}

function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n').slice(-8)
    return lines.length > 0 && lines[0] ? `\n--- last lines of ${file} ---\n${lines.join('\n')}` : ''
  } catch {
    return ''
  }
}

export async function startRedisServer(options: StartRedisServerOptions): Promise<RedisServerHandle> {
  const bin = resolveBin(options.bin)
  const version = await versionOf(bin)
  mkdirSync(options.dir, {recursive: true})
  const port = options.port && options.port > 0 ? options.port : await freePort()
  const logFile = options.logFile ?? join(options.dir, 'redis.log')
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', options.dir,
    '--save', '',
    '--daemonize', 'no',
    '--logfile', logFile,
    ...(options.appendonly ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec'] : ['--appendonly', 'no']),
  ]

  let child: ChildProcess | undefined

  const launch = async (): Promise<void> => {
    const spawned = spawn(bin, args, {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    spawned.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4_000) stderr += chunk.toString('utf8')
    })
    const spawnError = new Promise<Error>((resolveError) => spawned.once('error', resolveError))
    spawned.on('error', () => undefined) // reported through spawnError
    child = spawned
    const deadline = Date.now() + readyTimeoutMs
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)])
      if (failed) throw new Error(`cannot start ${bin}: ${failed.message} (${REDIS_SERVER_INSTALL_HINT})`)
      if (exited(spawned)) {
        throw new Error(`${version} exited with ${spawned.exitCode ?? spawned.signalCode} before answering PING on port ${port}${stderr ? `: ${stderr.trim()}` : ''}${logTail(logFile)}`)
      }
      if (await pingRedis(port, 500)) return
      if (Date.now() >= deadline) break
      await sleep(50)
    }
    spawned.kill('SIGKILL')
    await waitExit(spawned, 5_000)
    throw new Error(`${version} did not answer PING on 127.0.0.1:${port} within ${readyTimeoutMs} ms${logTail(logFile)}`)
  }

  const stop = async (): Promise<void> => {
    const current = child
    if (!current || exited(current)) return
    current.kill('SIGTERM')
    if (await waitExit(current, 5_000)) return
    current.kill('SIGKILL')
    await waitExit(current, 5_000)
  }

  await launch()

  const handle: RedisServerHandle = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? -1
    },
    version,
    dir: options.dir,
    logFile,
    stop,
    async kill9() {
      const current = child
      if (!current || exited(current)) return
      current.kill('SIGKILL')
      await waitExit(current, 5_000)
    },
    async restart() {
      await stop()
      // The port may linger briefly after exit; launch() retries PING until the deadline.
      await launch()
    },
  }
  return handle
}
