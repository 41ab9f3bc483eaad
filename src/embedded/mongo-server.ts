/**
 * Starts a local MongoDB wire-protocol server for the integration tests and the benchmarks (the
 * embedded runtime starts mongod itself, in index.ts, and never mongo-java-server).
 *
 * Preference order:
 *   1. a real mongod (MONGOMS_SYSTEM_BINARY, else `mongod` on PATH), with --dbpath <dir>;
 *   2. mongo-java-server (in-memory, pure Java) when `java` and its jars are available. The jars come
 *      from TEKTREE_MONGO_JAVA_SERVER_CP (a Java classpath), else the provision cache
 *      test/support/.cache/mongo-java-server-<version>/ that scripts/provision-mongo.sh fills with
 *      Maven (run here on demand when `mvn` exists and `provision` is not false);
 *   3. otherwise rejects with what was tried and how to get each.
 *
 * Only 127.0.0.1 is ever bound. Readiness is a bounded ping loop, never a fixed sleep.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {MongoClient} from 'mongodb'
import {errorMessage, findJava, freePort, onPath, packageRoot, runProgram as run} from './child.js'

export const MONGO_JAVA_SERVER_VERSION = '1.47.0'

export interface StartMongoServerOptions {
  /** Data directory for mongod (created when missing). mongo-java-server keeps everything in memory. */
  dir: string
  /** 0 or absent: a free port. */
  port?: number
  /** Skip candidates (tests of the fallback, or to force the Java server). */
  skip?: ReadonlyArray<'mongod' | 'mongo-java-server'>
  /** Run the Maven provisioning step when the jars are missing and `mvn` exists (default true). */
  provision?: boolean
  /** Bound on the whole start of one candidate (default 60 s: a cold JVM compiles the launcher). */
  readyTimeoutMs?: number
}

export interface MongoServerHandle {
  /** mongodb://127.0.0.1:<port> */
  url: string
  port: number
  pid: number
  /** e.g. "mongod 7.0.14" or "mongo-java-server 1.47.0 (memory backend)". */
  server: string
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL: a crash, for fault tests. */
  kill9(): Promise<void>
}

/** Where scripts/provision-mongo.sh puts the jars of mongo-java-server. */
export function mongoJavaServerCacheDir(root = packageRoot()): string {
  return join(root, 'test', 'support', '.cache', `mongo-java-server-${MONGO_JAVA_SERVER_VERSION}`)
}

export async function startMongoServer(options: StartMongoServerOptions): Promise<MongoServerHandle> {
  const skip = new Set(options.skip ?? [])
  const tried: string[] = []

  if (!skip.has('mongod')) {
    const mongod = findMongod()
    if (mongod) {
      try {
        return await startMongod(mongod, options)
      } catch (error) {
        tried.push(`mongod (${mongod}): ${errorMessage(error)}`)
      }
    } else {
      tried.push(
        'mongod: not found on PATH and MONGOMS_SYSTEM_BINARY is not set ' +
          '(install MongoDB Community Server 7.0: https://www.mongodb.com/try/download/community)',
      )
    }
  }

  if (!skip.has('mongo-java-server')) {
    try {
      return await startJavaServer(options)
    } catch (error) {
      tried.push(`mongo-java-server: ${errorMessage(error)}`)
    }
  }

  throw new Error(`No MongoDB wire-protocol server could be started. Tried:\n  - ${tried.join('\n  - ')}`)
}

// -------------------------------------------------------------------------------------- mongod

function findMongod(): string | null {
  const explicit = process.env.MONGOMS_SYSTEM_BINARY
  if (explicit) return explicit
  return onPath('mongod')
}

async function startMongod(binary: string, options: StartMongoServerOptions): Promise<MongoServerHandle> {
  const versionText = await run(binary, ['--version'], 15_000)
  const version = /db version v?(\S+)/.exec(versionText)?.[1] ?? 'unknown version'
  mkdirSync(options.dir, {recursive: true})
  const port = options.port || (await freePort())
  const child = spawn(
    binary,
    ['--dbpath', options.dir, '--bind_ip', '127.0.0.1', '--port', String(port), '--logpath', join(options.dir, 'mongod.log')],
    {stdio: ['ignore', 'ignore', 'pipe']},
  )
  const output = captureTail(child)
  return await becomeReady(child, port, `mongod ${version}`, output, options.readyTimeoutMs ?? 60_000)
}

// ---------------------------------------------------------------------------- mongo-java-server

async function startJavaServer(options: StartMongoServerOptions): Promise<MongoServerHandle> {
  const java = findJava()
  if (!java) throw new Error('java not found on PATH or in JAVA_HOME (install a JDK 17+, e.g. `apt-get install openjdk-17-jdk-headless`)')
  const root = packageRoot()
  const launcher = join(root, 'test', 'support', 'mongo-java-server', 'MongoServerLauncher.java')
  if (!existsSync(launcher)) throw new Error(`its launcher is missing (${launcher}); it ships only with the tektree repository`)
  const classpath = await javaServerClasspath(root, options.provision !== false)

  const child = spawn(java, ['-cp', classpath, launcher, String(options.port ?? 0), '--watch-stdin'], {
    // stdin stays open: the launcher exits when it closes, so a dead parent leaves no server behind.
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const output = captureTail(child)
  const timeoutMs = options.readyTimeoutMs ?? 60_000
  const port = await new Promise<number>((resolvePort, reject) => {
    let stdout = ''
    const timer = setTimeout(() => finish(new Error(`no READY line within ${timeoutMs} ms`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
      const match = /READY (\d+)/.exec(stdout)
      if (match) finish(null, Number(match[1]))
    }
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`java exited (${signal ?? `code ${code}`}) before it was ready: ${output.tail()}`))
    const finish = (error: Error | null, value?: number) => {
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      child.off('exit', onExit)
      child.stdout!.resume() // keep draining: a full pipe would block the server
      if (error) {
        child.kill('SIGKILL')
        reject(error)
      } else resolvePort(value!)
    }
    child.stdout!.on('data', onData)
    child.once('exit', onExit)
  })
  return await becomeReady(child, port, `mongo-java-server ${MONGO_JAVA_SERVER_VERSION} (memory backend)`, output, timeoutMs)
}

async function javaServerClasspath(root: string, provision: boolean): Promise<string> {
  const explicit = process.env.TEKTREE_MONGO_JAVA_SERVER_CP
  if (explicit) return explicit
  const cache = mongoJavaServerCacheDir(root)
  if (!jarsPresent(cache)) {
    const script = join(root, 'scripts', 'provision-mongo.sh')
    if (!provision || !onPath('mvn') || !existsSync(script)) {
      throw new Error(
        `its jars are not in ${cache} and TEKTREE_MONGO_JAVA_SERVER_CP is not set ` +
          '(run `bash scripts/provision-mongo.sh`: it needs Maven and access to Maven Central)',
      )
    }
    try {
      await run('bash', [script], 300_000)
    } catch (error) {
      throw new Error(`provisioning its jars with Maven failed: ${errorMessage(error)}`)
    }
    if (!jarsPresent(cache)) throw new Error(`scripts/provision-mongo.sh ran but ${cache} has no jars`)
  }
  return `${cache}/*`
}

function jarsPresent(cache: string): boolean {
  // .complete is written last by the provision script, so a half-finished download does not count.
  if (!existsSync(join(cache, '.complete'))) return false
  return readdirSync(cache).some((name) => name.startsWith('mongo-java-server-memory-backend') && name.endsWith('.jar'))
}

// ---------------------------------------------------------------------------------- shared

async function becomeReady(
  child: ChildProcess,
  port: number,
  server: string,
  output: {tail(): string},
  timeoutMs: number,
): Promise<MongoServerHandle> {
  const url = `mongodb://127.0.0.1:${port}`
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit()
    else child.once('exit', () => resolveExit())
  })
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  let ready = false
  for (let attempt = 0; attempt < 10_000 && Date.now() < deadline; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${server} exited before it was ready (${child.signalCode ?? `code ${child.exitCode}`}): ${output.tail()}`)
    }
    const client = new MongoClient(url, {serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000, directConnection: true})
    try {
      await client.db('admin').command({ping: 1})
      ready = true
      break
    } catch (error) {
      last = error
    } finally {
      await client.close().catch(() => undefined)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  if (!ready) {
    child.kill('SIGKILL')
    throw new Error(`${server} did not answer ping on ${url} within ${timeoutMs} ms (last error: ${errorMessage(last)}) ${output.tail()}`)
  }

  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), graceMs)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) {
      child.kill('SIGKILL')
      await exited
    }
  }
  return {
    url,
    port,
    pid: child.pid!,
    server,
    stop: () => signalAndWait('SIGTERM', 10_000),
    kill9: () => signalAndWait('SIGKILL', 10_000),
  }
}

/** Keeps the last few KB of stderr for error messages, draining the pipe so it never fills. */
function captureTail(child: ChildProcess): {tail(): string} {
  let buffer = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    buffer = (buffer + chunk.toString('utf8')).slice(-4_000)
  })
  return {
    tail: () => {
      const text = buffer
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('SLF4J'))
        .join('\n')
        .trim()
      return text ? `(stderr: ${text.slice(-1_500)})` : ''
    },
  }
}



