/**
 * `tektree up` and the bus a data dir has, end to end with the built CLI in throwaway data dirs:
 * - a dir remembers its bus across `down` (bus.json): plain `up` brings back the kind it last ran,
 *   `--bus` naming the other kind is refused (exit 2) unless --switch-bus, a command without the
 *   Kafka broker up is refused rather than given an empty redis-server, `down --purge` forgets it;
 * - Ctrl+C while `up` starts a server stops that server and releases the lock (exit 130): the
 *   servers run in their own process group, so the signal never reaches them;
 * - a bus `up` cannot start fails it (exit 2) instead of "The embedded runtime is up".
 */
import {spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {onPath} from '../../src/embedded/child.js'
import {holderOf, isAlive, startServer, stopServer} from '../../src/embedded/index.js'
import type {CliResult} from './run-cli.js'

const kafkaUnavailable = inject('kafkaUnavailable')
const redisUnavailable = inject('redisUnavailable')
const BIN = join(fileURLToPath(import.meta.url), '..', '..', '..', 'bin', 'run.js')

type Run = Pick<CliResult, 'code' | 'stdout' | 'stderr'>

const dirs: string[] = []

/** A fresh dir; its data dir is <dir>/data. Every test downs what it upped (afterEach, too). */
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-up-bus-'))
  dirs.push(dir)
  return dir
}

function env(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = {...process.env}
  for (const key of ['TEKTREE_BUS_URL', 'TEKTREE_STORE_URL', 'TEKTREE_REDIS_URL', 'TEKTREE_MONGO_URL', 'TEKTREE_REDIS_BIN']) delete clean[key]
  return {...clean, NO_COLOR: '1', TEKTREE_DATA_DIR: join(dir, 'data'), TEKTREE_MONGO_BIN: join(dir, 'no-mongod'), ...extra}
}

function start(dir: string, args: string[], extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {cwd: dir, env: env(dir, extra), stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const done = new Promise<Run>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, stdout, stderr})
    })
  })
  return {child, done}
}

const tektree = (dir: string, args: string[], extra: Record<string, string> = {}) => start(dir, args, extra).done

async function ok(dir: string, args: string[]): Promise<Run> {
  const result = await tektree(dir, args)
  expect(result.code, `tektree ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Pids whose command line mentions `word` (the servers of a dir are found by their paths). */
function pidsWith(word: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(word) && isAlive(Number(name))
      } catch {
        return false
      }
    })
    .map(Number)
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) {
    await tektree(dir, ['down', '--grace', '5'])
    // Whatever a failed test left holding its data dir.
    for (const pid of pidsWith(join(dir, 'data'))) process.kill(pid, 'SIGKILL')
    const redis = holderOf('redis', join(dir, 'data', 'redis'))
    if (redis !== null) process.kill(redis, 'SIGKILL')
    rmSync(dir, {recursive: true, force: true})
  }
})

describe.skipIf(Boolean(redisUnavailable) || !onPath('redis-server'))('up and the bus a data dir last ran (redis-server)', () => {
  it('a dir that ran redis-server refuses `up --bus kafka` (exit 2, no broker started) and says how to switch; down --purge forgets it', async () => {
    const dir = freshDir()
    await ok(dir, ['up'])
    await ok(dir, ['down'])
    expect(JSON.parse(readFileSync(join(dir, 'data', 'bus.json'), 'utf8'))).toMatchObject({bus: 'redis'})
    const refused = await tektree(dir, ['up', '--bus', 'kafka'])
    expect(refused.code, refused.stderr).toBe(2)
    expect(refused.stderr).toContain('last ran redis-server as its bus')
    expect(refused.stderr).toContain('--bus kafka --switch-bus')
    expect(refused.stderr).toContain('down --purge')
    expect(refused.stderr).not.toMatch(/\n\s+at /) // no stack trace
    expect(existsSync(join(dir, 'data', 'kafka'))).toBe(false)
    expect(existsSync(join(dir, 'data', 'runtime.json'))).toBe(false)

    const usage = await tektree(dir, ['up', '--switch-bus'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('--switch-bus needs --bus')

    const purge = await ok(dir, ['down', '--purge'])
    expect(purge.stdout).toContain(join(dir, 'data', 'bus.json'))
    expect(existsSync(join(dir, 'data', 'bus.json'))).toBe(false)
  }, 60_000)

  it('a bus dir held by a redis-server runtime.json does not list fails `up` with exit 2, naming the pid; nothing is left up', async () => {
    const dir = freshDir()
    const foreign = await startServer('redis', {dir: join(dir, 'data', 'redis')})
    try {
      const up = await tektree(dir, ['up'])
      expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(2)
      expect(up.stdout).not.toContain('The embedded runtime is up')
      expect(up.stderr).toContain(`in use by another redis-server (pid ${foreign.pid})`)
      expect(up.stderr).toContain(`kill ${foreign.pid}`)
      expect(existsSync(join(dir, 'data', 'runtime.json'))).toBe(false)
    } finally {
      await stopServer('redis', foreign, 5_000)
    }
  }, 60_000)

  it('Ctrl+C while `up` waits for redis-server to answer stops it and releases the lock (exit 130)', async () => {
    const dir = freshDir()
    // A redis-server that takes 2 s to start: long enough to be interrupted while `up` waits for it.
    const slow = join(dir, 'slow-redis-server')
    writeFileSync(slow, `#!/bin/sh\n[ "$1" = "--version" ] || sleep 2\nexec ${onPath('redis-server')} "$@"\n`)
    chmodSync(slow, 0o755)
    const up = start(dir, ['up'], {TEKTREE_REDIS_BIN: slow})
    await until('the slow redis-server to be spawned', () => pidsWith(`${slow}\0--port`).length > 0, 20_000)
    up.child.kill('SIGINT')
    const result = await up.done
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(130)
    expect(existsSync(join(dir, 'data', 'runtime.lock'))).toBe(false)
    // Past the moment it would have become redis-server in <data-dir>/redis:
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    expect(pidsWith(slow)).toEqual([])
    expect(holderOf('redis', join(dir, 'data', 'redis'))).toBeNull()
    const status = JSON.parse((await ok(dir, ['status', '--json'])).stdout) as {state: string}
    expect(status.state).toBe('down')
  }, 60_000)
})

describe.skipIf(Boolean(kafkaUnavailable))(`up and the bus a data dir last ran (Kafka)${kafkaUnavailable ? ` (skipped: ${kafkaUnavailable})` : ''}`, () => {
  it('down then plain up brings the Kafka broker back and says so; --bus redis and a command without the broker are refused (exit 2)', async () => {
    const dir = freshDir()
    await ok(dir, ['up', '--bus', 'kafka'])
    await ok(dir, ['demo', 'registration'])
    await ok(dir, ['down'])

    const status = JSON.parse((await ok(dir, ['status', '--json'])).stdout) as {bus: {kind: string}}
    expect(status.bus.kind).toBe('kafka')
    const refused = await tektree(dir, ['up', '--bus', 'redis'])
    expect(refused.code, refused.stderr).toBe(2)
    expect(refused.stderr).toContain('last ran a Kafka broker as its bus')
    expect(refused.stderr).toContain('--bus redis --switch-bus')
    // Without the broker a command is refused too, rather than given an empty redis-server.
    const verify = await tektree(dir, ['verify'])
    expect(verify.code, verify.stdout).toBe(2)
    expect(verify.stderr).toContain('is a Kafka broker')
    expect(existsSync(join(dir, 'data', 'redis'))).toBe(false)

    const up = await ok(dir, ['up'])
    expect(up.stdout).toMatch(/bus kafka .* started/)
    expect(up.stdout).toContain('note: the bus is Kafka, the one this data dir last ran')
    expect(up.stdout).toContain('none missing')
    const again = JSON.parse((await ok(dir, ['verify', '--json'])).stdout) as {differences: unknown[]; events: number}
    expect(again.events).toBeGreaterThan(0)
    expect(again.differences).toEqual([])
    await ok(dir, ['down'])
    expect(existsSync(join(dir, 'data', 'redis'))).toBe(false)
  }, 90_000)

  it('Ctrl+C while `up --bus kafka` waits for the broker stops the broker and releases the lock (exit 130); the next up starts it', async () => {
    const dir = freshDir()
    const properties = join(dir, 'data', 'kafka', 'server.properties')
    const up = start(dir, ['up', '--bus', 'kafka'])
    // The broker's JVM (not the one-off StorageTool that formats its directory first).
    await until('the broker to be spawned', () => pidsWith(`kafka.Kafka\0${properties}`).length > 0, 45_000)
    up.child.kill('SIGINT')
    const result = await up.done
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(130)
    expect(existsSync(join(dir, 'data', 'runtime.lock'))).toBe(false)
    expect(holderOf('kafka', join(dir, 'data', 'kafka'))).toBeNull()

    const again = await ok(dir, ['up', '--bus', 'kafka'])
    expect(again.stdout).toMatch(/bus kafka .* started/)
    expect(again.stdout).not.toContain('unavailable')
    await ok(dir, ['down'])
  }, 90_000)
})
