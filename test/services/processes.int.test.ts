/**
 * `tektree services` in two processes on one runtime (redis-server + the MongoDB wire server of the
 * integration tier): the consumer groups split the work between them, and the oracle finds every
 * projection as the event log says. Load comes from `tektree simulate` with no services of its own.
 * Redis database 11 and a fresh MongoDB database keep this run apart from the other tests.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {until} from '../contracts/helpers.js'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const redisUrl = inject('redisUrl')
const mongoUrl = inject('mongoUrl')
const missing = [!redisUrl && `redis: ${inject('redisUnavailable')}`, !mongoUrl && `mongo: ${inject('mongoUnavailable')}`].filter(Boolean).join('; ')

interface Proc {
  child: ChildProcess
  stdout: string
  stderr: string
  exited: Promise<number | null>
}

const started: Proc[] = []
afterEach(() => {
  for (const p of started.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL')
})

function start(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', ...env}})
  const proc: Proc = {child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('close', resolve))}
  child.stdout!.on('data', (chunk) => (proc.stdout += chunk))
  child.stderr!.on('data', (chunk) => (proc.stderr += chunk))
  started.push(proc)
  return proc
}

describe.skipIf(missing !== '')(`tektree services in two processes ${missing ? `(skipped: ${missing})` : `(${inject('mongoServer')})`}`, () => {
  it('the groups split the work between the processes, and verify finds no difference', {timeout: 240_000}, async () => {
    const env = {TEKTREE_REDIS_URL: `${redisUrl}/11`, TEKTREE_MONGO_URL: mongoUrl!, TEKTREE_MONGO_DB: `procs_${randomUUID().slice(0, 8)}`}
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-procs-'))
    const services = [1, 2].map((n) => start(['services', '--status-every', '0', '--mail-dir', path.join(dir, `mail-${n}`)], env))
    await until(() => services.every((s) => s.stdout.includes('Running gamification')), {timeoutMs: 60_000, intervalMs: 250, message: 'both services processes running'})

    // Load with no services in the simulating process: the two above do all the handling.
    const scenario = path.join(dir, 'load.yaml')
    writeFileSync(
      scenario,
      ['name: two-processes', 'seed: 3', 'population: {users: 60, areas: 3}', 'rate: {shape: step, stages: [{duration: 10s, target: 100}]}', 'events: 300', 'services: []', ''].join('\n'),
    )
    const sim = start(['simulate', '--scenario', scenario, '--json'], env)
    expect(await sim.exited, sim.stderr).toBe(0)
    expect(JSON.parse(sim.stdout).events.simulated).toBe(300)

    // Wait until the services have caught up: verify reports zero differences.
    let last = ''
    await until(
      async () => {
        const verify = start(['verify', '--json'], env)
        const code = await verify.exited
        last = verify.stdout + verify.stderr
        return code === 0
      },
      {timeoutMs: 150_000, intervalMs: 250, message: 'verify to find no difference'},
    ).catch((error: Error) => {
      // What each process said (retries, refusals, errors): a difference seen once must be explainable.
      const said = services.map((s, i) => `services ${i + 1} stderr:\n${s.stderr.slice(-4000)}\nservices ${i + 1} stdout:\n${s.stdout.slice(-2000)}`).join('\n')
      throw new Error(`${error.message}\nlast verify:\n${last.slice(0, 3000)}\n${said}`)
    })
    const verdict = JSON.parse(last)
    expect(verdict.differences).toEqual([])
    expect(verdict.checked).toBeGreaterThan(100)

    for (const s of services) s.child.kill('SIGTERM')
    const codes = await Promise.all(services.map((s) => s.exited))
    expect(codes).toEqual([0, 0])
    const handled = services.map((s) => Number(/Stopped: (\d+) events handled/.exec(s.stdout)?.[1] ?? -1))
    // Both took part: each handled a share.
    expect(handled.every((n) => n > 0), services.map((s) => s.stdout.slice(-400)).join('\n---\n')).toBe(true)
  })
})
