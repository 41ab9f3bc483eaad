/**
 * The services workers without a server: how groups are dealt, how a clock is carried to another
 * thread, how metrics recorded elsewhere merge into the parent's, how errors cross postMessage, and
 * the threads' lifecycle (each on a private in-process bus: no events flow between them here; the
 * end-to-end runs are in workers.int.test.ts).
 */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterEach, describe, expect, it} from 'vitest'
import {SystemClock, VirtualClock} from '../../src/core/clock.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {SERVICE_NAMES} from '../../src/services/index.js'
import {
  assignGroups,
  clockFromSpec,
  clockSpec,
  fromWireError,
  GROUP_WEIGHTS,
  startServiceWorkers,
  toWireError,
  toWireEvent,
  type ServiceWorkers,
  type ServiceWorkersOptions,
  type WorkerExit,
} from '../../src/services/workers.js'
import {until} from '../contracts/helpers.js'

describe('assignGroups', () => {
  it('deals whole groups, each once, the two heaviest to different workers', () => {
    const bins = assignGroups(SERVICE_NAMES, 2)
    expect(bins).toHaveLength(2)
    expect(bins.flat().sort()).toEqual([...SERVICE_NAMES].sort())
    const holder = (group: string) => bins.findIndex((b) => b.includes(group))
    expect(holder('gamification')).not.toBe(holder('notification'))
  })

  it('balances the expected load: no worker carries more than the heaviest group over its fair share', () => {
    for (const workers of [2, 3, 4]) {
      const bins = assignGroups(SERVICE_NAMES, workers)
      const loads = bins.map((b) => b.reduce((n, g) => n + GROUP_WEIGHTS[g], 0))
      const fair = loads.reduce((a, b) => a + b, 0) / workers
      const heaviest = Math.max(...Object.values(GROUP_WEIGHTS))
      expect(Math.max(...loads)).toBeLessThanOrEqual(fair + heaviest)
    }
  })

  it('never starts more workers than there are groups, nor none', () => {
    expect(assignGroups(['search', 'cache'], 8)).toHaveLength(2)
    expect(assignGroups(['search'], 0)).toEqual([['search']])
    expect(assignGroups([], 4)).toEqual([])
  })
})

describe('clock specs', () => {
  it('a virtual clock is rebuilt at the same time and speed', () => {
    const parent = new VirtualClock({speed: 3600, start: Date.UTC(2030, 0, 1)})
    const child = clockFromSpec(clockSpec(parent)) as VirtualClock
    expect(child).toBeInstanceOf(VirtualClock)
    expect(child.speed).toBe(3600)
    // Both read within the same few real milliseconds: an hour a second allows seconds of drift.
    expect(Math.abs(child.now() - parent.now())).toBeLessThan(60_000)
  })

  it('the system clock needs no spec', () => {
    expect(clockSpec(new SystemClock())).toBeNull()
    expect(clockFromSpec(null)).toBeNull()
  })
})

describe('metrics from another thread', () => {
  it('a delta carries counters and latency histograms, and merges as if recorded here', () => {
    const worker = createMetrics()
    worker.acked('gamification', 'user.registered', 3, 12)
    worker.acked('gamification', 'user.registered', 1, 400)
    worker.retried('payment', 'user.registered')
    worker.deadLettered('payment', 'user.registered')
    worker.delivered('gamification', 'user.registered', 4)
    worker.published('gamification.xp.earned', 2, 5)

    const parent = createMetrics()
    parent.acked('search', 'knowledge.question.posted', 1, 1)
    // Through structured clone, as postMessage sends it.
    parent.merge(structuredClone(worker.takeDelta()))

    const snap = parent.snapshot()
    expect(snap.acked).toEqual({search: {'knowledge.question.posted': 1}, gamification: {'user.registered': 4}})
    expect(snap.totals).toMatchObject({acked: 5, delivered: 4, retried: 1, deadLettered: 1, published: 2})
    expect(snap.deliveryLatencyMs.count).toBe(5)
    expect(snap.deliveryLatencyMs.max).toBeGreaterThanOrEqual(399)
    expect(snap.publishLatencyMs.count).toBe(2)
  })

  it('takeDelta moves what was recorded: the next delta holds only what came after', () => {
    const worker = createMetrics()
    worker.acked('cache', 'user.profile.updated', 2, 3)
    worker.takeDelta()
    const next = worker.takeDelta()
    expect(next.acked).toEqual({})
    expect(next.deliveryLatency).toBeNull()
    worker.acked('cache', 'user.profile.updated', 1, 3)
    expect(worker.takeDelta().acked).toEqual({cache: {'user.profile.updated': 1}})
  })
})

describe('errors across threads', () => {
  it('keep their name, message and code', () => {
    const error = Object.assign(new Error('lost the connection'), {name: 'BusError', code: 'ECONNRESET'})
    const back = fromWireError(structuredClone(toWireError(error)))
    expect(back).toBeInstanceOf(Error)
    expect(back).toMatchObject({name: 'BusError', message: 'lost the connection', code: 'ECONNRESET'})
  })

  it('a runner event with an error survives structured clone', () => {
    const event = toWireEvent({type: 'bus_error', phase: 'fetch', error: Object.assign(new Error('down'), {code: 'X'}), backoffMs: 50})
    expect(structuredClone(event)).toMatchObject({type: 'bus_error', phase: 'fetch', backoffMs: 50, error: {message: 'down', code: 'X'}})
  })
})

describe('the worker threads themselves (each with a private in-process bus: plumbing only)', () => {
  const started: ServiceWorkers[] = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map((pool) => pool.terminate()))
  })

  function pool(store: string, extra: Partial<ServiceWorkersOptions> = {}): ServiceWorkers {
    const workers = startServiceWorkers({
      endpoints: {bus: 'memory:', store},
      services: ['search', 'cache', 'email'],
      workers: 2,
      clock: new SystemClock(),
      metrics: createMetrics(),
      reportEveryMs: 50,
      ...extra,
    })
    started.push(workers)
    return workers
  }

  it('start, report every group, restart a killed worker with its groups, stop gracefully', {timeout: 60_000}, async () => {
    const exits: WorkerExit[] = []
    const workers = pool(`sqlite:${path.join(mkdtempSync(path.join(tmpdir(), 'tektree-pool-')), 'store.db')}`, {onWorkerExit: (exit) => exits.push(exit)})
    await workers.ready
    await until(() => workers.stats().length === 3, {timeoutMs: 10_000, message: 'a report from every worker'})
    const victim = workers.assignment.findIndex((groups) => groups.includes('search'))
    expect(workers.killWorker(victim)).toBe(true)
    await until(() => exits.length === 1 && workers.stats().filter((s) => s.group === 'search').length === 2, {timeoutMs: 20_000, message: 'the killed worker back'})
    expect(exits[0]).toMatchObject({worker: victim, restarting: true, services: workers.assignment[victim]})
    expect(workers.restarts()).toBe(1)
    await workers.stop()
    expect(exits).toHaveLength(1) // a stop is not a death
    expect(workers.killWorker(0)).toBe(false)
  })

  it('a worker that dies on every start (an uncaught error) is given up, and ready says why', {timeout: 60_000}, async () => {
    const exits: WorkerExit[] = []
    // A store file under a regular file cannot be opened: the worker's start throws.
    const workers = pool(`sqlite:${path.join(fileURLToPath(import.meta.url), 'store.db')}`, {maxStartFailures: 2, onWorkerExit: (exit) => exits.push(exit)})
    await expect(workers.ready).rejects.toThrow(/could not start/)
    await until(() => exits.filter((e) => !e.restarting).length > 0, {timeoutMs: 20_000})
    expect(exits.every((e) => e.error !== null)).toBe(true)
  })
})
