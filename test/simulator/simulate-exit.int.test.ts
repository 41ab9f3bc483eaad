/**
 * `tektree simulate` as a child process (./bin/run.js, the built dist/): how it ends when things go
 * wrong. redis-server killed mid-run: the drain cannot finish and verify must not run (exit 1, said
 * why); Ctrl+C: a brief drain, the report, exit 130 (SIGTERM 143). Each test starts its own
 * redis-server (AOF everysec, as the embedded one) or none at all.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import {startRedisServer, type RedisServerHandle} from '../../src/embedded/redis-server.js'
import {until} from '../contracts/helpers.js'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const dir = mkdtempSync(path.join(tmpdir(), 'tektree-sim-exit-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

interface Proc {
  child: ChildProcess
  stdout: string
  stderr: string
  exited: Promise<number | null>
}
const started: Proc[] = []
const servers: RedisServerHandle[] = []
afterEach(async () => {
  for (const p of started.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

function simulate(args: string[], name: string): Proc {
  const dataDir = mkdtempSync(path.join(dir, `${name}-`))
  const child = spawn(process.execPath, [BIN, 'simulate', ...args], {
    cwd: ROOT,
    // Its own data directory: no embedded runtime of this checkout is attached to.
    env: {...process.env, NO_COLOR: '1', TEKTREE_DATA_DIR: dataDir, TEKTREE_BUS_URL: '', TEKTREE_STORE_URL: '', TEKTREE_REDIS_URL: '', TEKTREE_MONGO_URL: ''},
  })
  const proc: Proc = {child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('close', (code) => resolve(code)))}
  child.stdout!.on('data', (chunk) => (proc.stdout += chunk))
  child.stderr!.on('data', (chunk) => (proc.stderr += chunk))
  started.push(proc)
  return proc
}

function scenarioFile(name: string, seconds: number, rate: number): string {
  const file = path.join(dir, `${name}.yaml`)
  writeFileSync(file, [`name: ${name}`, 'seed: 9', 'population: {users: 50, areas: 2}', `rate: {shape: step, stages: [{duration: ${seconds}s, target: ${rate}}]}`, ''].join('\n'))
  return file
}

describe('tektree simulate: exit codes when a run cannot finish', () => {
  it('redis-server killed during the run: the drain fails, verify is skipped, exit 1', {timeout: 180_000}, async () => {
    const redis = await startRedisServer({dir: mkdtempSync(path.join(dir, 'redis-')), appendonly: true})
    servers.push(redis)
    const store = path.join(mkdtempSync(path.join(dir, 'store-')), 'store.db')
    const sim = simulate(
      ['--scenario', scenarioFile('killed', 4, 150), '--bus-url', redis.url, '--store-url', `sqlite:${store}`, '--verify', '--drain-timeout', '3s', '--workers', '1'],
      'killed',
    )
    // Progress lines (every 2 s without a TTY) say it is generating: then the bus dies.
    await until(() => /[1-9][0-9,]* events sent/.test(sim.stderr), {timeoutMs: 60_000, intervalMs: 100, message: `a progress line\n${sim.stderr}`})
    await redis.kill9()
    // It must end by itself (a consumer left polling a dead bus once kept the process alive).
    await until(() => sim.child.exitCode !== null, {timeoutMs: 90_000, intervalMs: 200, message: `simulate to exit\n${sim.stderr.slice(-2000)}`})
    const code = await sim.exited
    expect(code, sim.stderr).toBe(1)
    expect(sim.stderr).toMatch(/The drain did not finish: the backlog could not be read/)
    expect(sim.stderr).toMatch(/verify skipped: not drained/)
  })

  for (const [signal, exit] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} stops it: a brief drain, the report, exit ${exit}`, {timeout: 60_000}, async () => {
      const sim = simulate(['--scenario', scenarioFile(`signal-${signal}`, 60, 100), '--in-process'], `signal-${signal}`)
      await until(() => /[1-9][0-9,]* events sent/.test(sim.stderr), {timeoutMs: 40_000, intervalMs: 100, message: `a progress line\n${sim.stderr}`})
      sim.child.kill(signal)
      expect(await sim.exited, sim.stderr).toBe(exit)
      expect(sim.stderr).toMatch(/Stopping: draining briefly/)
      expect(sim.stdout).toMatch(/interrupted/)
    })
  }
})
