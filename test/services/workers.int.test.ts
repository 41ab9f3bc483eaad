/**
 * The TekTree services in worker threads, on a shareable runtime (redis-server from the integration
 * tier + a SQLite store file): the simulator's faults and metrics reach the parent, a worker that
 * dies is started again and its work still takes effect once (the oracle finds no difference), and
 * `tektree services` runs its groups in workers (realtime beside its WebSocket endpoint) and drains
 * on SIGTERM.
 * Redis databases 12 and 13 (flushed first) keep these runs apart from the other suites.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Redis} from 'ioredis'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {WebSocket} from 'ws'
import {loadCatalog} from '../../src/catalog/load.js'
import {VirtualClock} from '../../src/core/clock.js'
import {openRuntime} from '../../src/adapters/open.js'
import type {Runtime} from '../../src/core/runtime.js'
import {statsByService} from '../../src/services/host.js'
import {verifyProjections} from '../../src/services/verify.js'
import {startServiceWorkers, type ServiceWorkers, type WorkerExit} from '../../src/services/workers.js'
import {SERVICE_NAMES} from '../../src/services/index.js'
import {runSimulation} from '../../src/simulator/run.js'
import {parseScenario} from '../../src/simulator/scenario.js'
import {until} from '../contracts/helpers.js'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = path.join(ROOT, 'bin', 'run.js')
const redisUrl = inject('redisUrl')

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A fresh Redis database and store file, on a virtual clock (retries of 10 s and 60 s pass at once). */
async function sharedRuntime(db: number): Promise<Runtime> {
  const admin = new Redis(`${redisUrl}/${db}`)
  await admin.flushdb()
  admin.disconnect()
  const dir = mkdtempSync(path.join(tmpdir(), 'tektree-workers-'))
  const runtime = await openRuntime({busUrl: `${redisUrl}/${db}`, storeUrl: `sqlite:${path.join(dir, 'store.db')}`, ephemeral: true, clock: new VirtualClock({speed: 3600})})
  cleanups.push(() => runtime.close())
  return runtime
}

describe.skipIf(!redisUrl)(`services in worker threads ${redisUrl ? '' : `(skipped: ${inject('redisUnavailable')})`}`, () => {
  it('simulate with two workers: faults, retries on the virtual clock, crashes and metrics reach the report; verify finds no difference', {timeout: 180_000}, async () => {
    const runtime = await sharedRuntime(12)
    const scenario = parseScenario(
      {
        name: 'workers',
        seed: 11,
        population: {users: 300, areas: 4},
        rate: {shape: 'step', stages: [{duration: '6s', target: 150}]},
        clock: {speed: 3600},
        faults: {handler_failure: {gamification: 0.1}, permanent_failure: {search: 0.05}, consumer_crash_every: '1500ms'},
      },
      'workers.yaml',
    )
    let endpoint = ''
    let scrape: Promise<string> | undefined
    const report = await runSimulation(
      {scenario, runtime, workers: 2, verify: true, metricsPort: 0, visibilityTimeoutMs: 1000, drainTimeoutMs: 90_000},
      {
        onMetricsEndpoint: (url) => (endpoint = url),
        // Once generation is over, while the endpoint still serves the run.
        onProgress: (p) => {
          if (p.phase !== 'generating' && !scrape) scrape = fetch(endpoint).then((r) => r.text())
        },
      },
    )

    expect(report.workers).toBe(2)
    expect(report.errors).toEqual([])
    expect(report.drained).toBe(true)
    expect(report.verify).toMatchObject({differences: 0})
    expect(report.verify!.checked).toBeGreaterThan(100)
    // Counted in the workers, merged into the parent's metrics.
    expect(report.deliveries.acked).toBeGreaterThan(report.events.simulated)
    expect(report.latency.delivery.count).toBe(report.deliveries.acked)
    expect(report.faults.transientFailures).toBeGreaterThan(0)
    expect(report.retries).toBeGreaterThanOrEqual(report.faults.transientFailures)
    // Permanent failures wait 10 s and 60 s of virtual time: the workers' clocks run at the parent's speed.
    expect(report.dlq).toBeGreaterThan(0)
    expect(report.deliveries.deadLettered).toBe(report.dlq)
    expect(report.faults.consumerCrashes).toBeGreaterThan(0)
    // The Prometheus endpoint reads the parent's metrics, which hold the workers' acks.
    expect(await scrape).toMatch(/tektree_event_processed_total\{group="gamification",event_type="[^"]+"\} [1-9]/)
  })

  it('a worker that dies is started again with its groups; its unacked work is redelivered and applies once', {timeout: 180_000}, async () => {
    const runtime = await sharedRuntime(13)
    const exits: WorkerExit[] = []
    const pool: ServiceWorkers = startServiceWorkers({
      endpoints: runtime.endpoints as {bus: string; store: string},
      services: SERVICE_NAMES,
      workers: 2,
      clock: runtime.clock,
      metrics: runtime.metrics,
      consumerOptions: {visibilityTimeoutMs: 1000},
      onWorkerExit: (exit) => exits.push(exit),
    })
    cleanups.push(() => pool.terminate())
    await pool.ready
    const victim = pool.assignment.findIndex((groups) => groups.includes('gamification'))

    // Load from the simulator with no services of its own: the pool does all the handling.
    const scenario = parseScenario(
      {name: 'kill', seed: 12, population: {users: 300, areas: 4}, rate: {shape: 'step', stages: [{duration: '5s', target: 150}]}, clock: {speed: 3600}, services: []},
      'kill.yaml',
    )
    let killed = false
    const report = await runSimulation(
      {scenario, runtime, drainTimeoutMs: 90_000},
      {
        onProgress: (p) => {
          // Mid-stream: it has handled some, and more keeps coming.
          if (!killed && p.phase === 'generating' && p.processed > 200) killed = pool.killWorker(victim)
        },
      },
    )
    expect(killed).toBe(true)
    expect(report.drained).toBe(true)
    expect(exits).toHaveLength(1)
    expect(exits[0]).toMatchObject({worker: victim, restarting: true})
    expect(exits[0].services).toContain('gamification')
    expect(pool.restarts()).toBe(1)

    const result = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog: await loadCatalog()})
    expect(result.differences).toEqual([])
    expect(result.checked).toBeGreaterThan(100)
    await pool.stop()
    // The dead generation's counts stay in the stats beside the new one's.
    const gamification = statsByService(pool.stats()).get('gamification')!
    expect(gamification.handled).toBeGreaterThan(0)
    expect(pool.stats().filter((s) => s.group === 'gamification')).toHaveLength(2)
  })

  it('tektree services runs its groups in worker threads, writes the mails there, pushes over WebSocket from the main thread, and drains on SIGTERM', {timeout: 240_000}, async () => {
    const admin = new Redis(`${redisUrl}/12`)
    await admin.flushdb()
    admin.disconnect()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-services-workers-'))
    const env = {TEKTREE_BUS_URL: `${redisUrl}/12`, TEKTREE_STORE_URL: `sqlite:${path.join(dir, 'store.db')}`, TEKTREE_DATA_DIR: path.join(dir, 'data')}
    const mailDir = path.join(dir, 'mail')
    const services = start(['services', '--workers', '2', '--status-every', '0', '--mail-dir', mailDir, '--ws-port', '0'], env)
    await until(() => services.stdout.includes('Running gamification'), {timeoutMs: 60_000, intervalMs: 100, message: 'services running'})
    expect(services.stdout).toContain('in 2 worker thread(s)')
    // Realtime runs beside the WebSocket endpoint, on the main thread; its pushes reach a client.
    expect(services.stdout).toContain('main thread: realtime')
    const wsUrl = /Real-time pushes: (ws:\/\/[^/]+)\/ws\/notifications/.exec(services.stdout)![1]
    // The endpoint wants the token it printed; the leaderboard is the channel for everyone.
    const token = /clients show this token \(Authorization: Bearer TOKEN, or \?token=TOKEN\):\n\s+(\S+)/.exec(services.stdout)![1]
    const pushes: string[] = []
    const client = new WebSocket(`${wsUrl}/ws/leaderboard`, {headers: {authorization: `Bearer ${token}`}})
    client.on('message', (data) => pushes.push(String(data)))
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject))
    cleanups.push(() => client.terminate())

    const scenario = path.join(dir, 'load.yaml')
    writeFileSync(scenario, ['name: threads', 'seed: 5', 'population: {users: 60, areas: 3}', 'rate: {shape: step, stages: [{duration: 10s, target: 100}]}', 'events: 300', 'services: []', ''].join('\n'))
    const sim = start(['simulate', '--scenario', scenario, '--json'], env)
    expect(await sim.exited, sim.stderr).toBe(0)

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
      throw new Error(`${error.message}\nlast verify:\n${last.slice(0, 3000)}`)
    })
    expect(readdirSync(mailDir).some((name) => name.endsWith('.eml'))).toBe(true)
    expect(pushes.length).toBeGreaterThan(0)

    services.child.kill('SIGTERM')
    expect(await services.exited, services.stderr).toBe(0)
    expect(services.stdout).toContain('SIGTERM: draining')
    expect(Number(/Stopped: (\d+) events handled/.exec(services.stdout)?.[1])).toBeGreaterThan(300)
  })
})

interface Proc {
  child: ChildProcess
  stdout: string
  stderr: string
  exited: Promise<number | null>
}

function start(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', ...env}})
  const proc: Proc = {child, stdout: '', stderr: '', exited: new Promise((resolve) => child.on('close', resolve))}
  child.stdout!.on('data', (chunk) => (proc.stdout += chunk))
  child.stderr!.on('data', (chunk) => (proc.stderr += chunk))
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  return proc
}
