/**
 * kill -9, many times, at random points of the consumers' batches: every TekTree service runs in a
 * child process on the real Redis bus and the SQLite store (test/support/services-child.ts) while
 * the simulator publishes; the child is SIGKILLed after a random delay, a new one takes over (the
 * dead one's partitions and pending entries move after the short lease), again and again; a last
 * child drains everything. Then the oracle: not one projection may differ from the event log.
 * A small population makes the profiles hot (hundreds of writes each), past the 256-id
 * per-document guard: only the unit of work (effects, derived events and ledger mark in one
 * commit) keeps a redelivery after a kill from applying twice, and the new owner of a dead consumer's partition takes its pending entries before any
 * newer one (order-dependent projections such as a user's tier depend on it).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import {SystemClock} from '../../src/core/clock.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {createRedisLeaderboards} from '../../src/adapters/redis/leaderboards.js'
import type {Runtime} from '../../src/core/runtime.js'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'
import {verifyProjections} from '../../src/services/verify.js'
import {SERVICE_NAMES} from '../../src/services/types.js'
import {runSimulation} from '../../src/simulator/run.js'
import {parseScenario} from '../../src/simulator/scenario.js'
import {deleteTestKeys} from '../support/redis-server.js'

const redisUrl = inject('redisUrl')
const KILLS = 10

describe.skipIf(!redisUrl)(`kill -9 of the services, then verify (${redisUrl ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  const prefix = `kill9-${randomUUID()}:`
  const dir = mkdtempSync(join(tmpdir(), 'tektree-kill9-'))
  const storePath = join(dir, 'store.db')
  const children = new Set<ChildProcess>()
  let runtime: Runtime

  beforeAll(async () => {
    const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
    const leaderboards = await createRedisLeaderboards({url: redisUrl!, prefix})
    const store = await createSqliteStore({path: storePath})
    runtime = {
      bus,
      store,
      leaderboards,
      clock: new SystemClock(),
      metrics: createMetrics(),
      endpoints: {bus: null, store: null},
      describe: () => {
        const part = {kind: 'test', location: 'parent', origin: 'external' as const}
        return {bus: part, store: part, leaderboards: part}
      },
      close: async () => {
        await leaderboards.close()
        await bus.close()
        await store.close()
      },
    }
  })

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    await runtime?.close()
    await deleteTestKeys(redisUrl!, prefix)
    rmSync(dir, {recursive: true, force: true})
  })

  const startChild = (): {child: ChildProcess; ready: Promise<void>; exited: Promise<void>} => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'support', 'services-child.ts')], {
      env: {...process.env, CHILD_REDIS_URL: redisUrl!, CHILD_PREFIX: prefix, CHILD_STORE: storePath, CHILD_TIMEOUT_MS: '1000'},
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.add(child)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    void exited.then(() => children.delete(child))
    const ready = new Promise<void>((resolve, reject) => {
      let out = ''
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('ready\n')) resolve()
      })
      void exited.then(() => reject(new Error('the services child exited before it was ready')))
    })
    return {child, ready, exited}
  }

  const backlog = async () => {
    const stats = await runtime.bus.stats()
    return stats.filter((s) => (SERVICE_NAMES as readonly string[]).includes(s.group)).reduce((n, s) => n + s.lag + s.pending, 0)
  }

  it(`${KILLS} kills mid-batch leave zero differences`, {timeout: 300_000}, async () => {
    // given traffic from the simulator (no services in this process) on a small, hot population
    const scenario = parseScenario(
      {name: 'kill9', seed: 5, population: {users: 40, areas: 4}, rate: {shape: 'step', stages: [{duration: '24s', target: 250}]}, events: 6_000, clock: {speed: 1}, services: 'all'},
      'kill9',
    )
    const simulation = runSimulation({scenario, runtime, services: [], verify: false, drainTimeoutMs: 1_000})
    // when the services' process is killed -9 again and again at random points of its work
    let killedBusy = 0
    for (let kill = 0; kill < KILLS; kill++) {
      const {child, ready, exited} = startChild()
      await ready
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.floor(Math.random() * 1_200)))
      if ((await backlog()) > 0) killedBusy++
      child.kill('SIGKILL')
      await exited
    }
    // then a last process takes over until the simulation ends and drains everything (the dead
    // ones' pending entries come back to it)
    const last = startChild()
    await last.ready
    const report = await simulation
    expect(report.events.simulated).toBe(6_000)
    const deadline = Date.now() + 180_000
    let quiet = 0
    while (quiet < 3 && Date.now() < deadline) {
      const busy = (await backlog()) + (await runtime.store.outbox.pending())
      quiet = busy === 0 ? quiet + 1 : 0
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    expect(quiet, 'the services drained the backlog').toBe(3)
    last.child.kill('SIGTERM')
    await last.exited
    expect(killedBusy, 'kills that hit the services with work pending').toBeGreaterThan(KILLS / 2)
    // and the oracle finds every projection as the event log says
    const catalog = await loadCatalog()
    const result = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})
    expect(result.differences.slice(0, 5)).toEqual([])
    expect(result.checked).toBeGreaterThan(1_000)
    expect(await runtime.store.dlq.count()).toBe(0)
  })
})
