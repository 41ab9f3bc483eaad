/**
 * The TekTree services spread over worker threads, so that every core works: each worker opens its
 * own runtime from the parent's endpoints (its own Redis connections, its own store connection) and
 * runs whole consumer groups with its own publisher and outbox relay (src/services/worker-entry.ts).
 * The parent keeps what must stay in one place: its RuntimeMetrics (workers send deltas, merged
 * here, so the report and the Prometheus endpoint read the parent's), the runner events, the stats.
 *
 * Whole groups, never a group split over threads of one process: a group's unit of work keeps a
 * read overlay per process. Groups are dealt by expected load (GROUP_WEIGHTS).
 *
 * A worker that dies (an uncaught error, process.exit in the thread, terminate) is started again
 * with its groups: what it held unacked is redelivered by the bus after the visibility timeout, and
 * the group's unit of work (effects, derived events and handled record committed together) keeps the
 * effects to once. Threads, not processes: one
 * process keeps one set of metrics, one Ctrl+C and one exit code, and a thread starts in a fraction
 * of a process's time; nothing the services do needs a process of its own.
 */
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {Worker} from 'node:worker_threads'
import {VirtualClock} from '../core/clock.js'
import type {ConsumerOptions, ConsumerStats, RunnerEvent} from '../engine/consumer.js'
import type {MetricsDelta, RuntimeMetrics} from '../core/metrics.js'
import type {Clock} from '../core/ports.js'
import type {Runtime} from '../core/runtime.js'

/**
 * Relative cost of each group, measured: the event-loop utilization of its thread with one group
 * per worker (9 workers, Redis bus + SQLite store, 100 simulated events/s with every service, the
 * default journeys; busy % over 20 s). It includes each runner's fixed cost (blocking reads,
 * heartbeats, commits), which is why cache and email are not near zero. Only the ratios matter.
 */
export const GROUP_WEIGHTS: Readonly<Record<string, number>> = {
  gamification: 35,
  notification: 35,
  analytics: 23,
  realtime: 19,
  payment: 16,
  user: 14,
  search: 13,
  email: 9,
  cache: 8,
}

/**
 * Where worker threads can attach to `runtime`'s bus and store, or null when a part lives in this
 * process only (in-process adapters): then the services run on this thread.
 */
export function shareableEndpoints(runtime: Runtime): {bus: string; store: string} | null {
  const {bus, store} = runtime.endpoints
  return bus !== null && store !== null ? {bus, store} : null
}

/**
 * Deals whole groups to `workers` workers, heaviest first, each to the least loaded worker (LPT):
 * the two heaviest groups land on different workers. Never more workers than groups.
 */
export function assignGroups(groups: readonly string[], workers: number, weights: Readonly<Record<string, number>> = GROUP_WEIGHTS): string[][] {
  const n = Math.max(1, Math.min(Math.floor(workers), groups.length))
  const bins = Array.from({length: n}, () => ({load: 0, groups: [] as string[]}))
  // A group the table does not know (another service set) counts as a light one.
  const weight = (group: string) => weights[group] ?? 5
  const order = [...groups].sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))
  for (const group of order) {
    const lightest = bins.reduce((best, bin) => (bin.load < best.load ? bin : best))
    lightest.load += weight(group)
    lightest.groups.push(group)
  }
  return bins.map((bin) => bin.groups).filter((g) => g.length > 0)
}

/** A clock another thread can rebuild: virtual time at a moment of wall-clock time, and its speed. */
export type ClockSpec = {speed: number; virtualNow: number; realNow: number} | null

/** The spec of `clock`; null = the system clock (also for a clock that keeps wall time). */
export function clockSpec(clock: Clock): ClockSpec {
  const realNow = Date.now()
  if (clock instanceof VirtualClock) return {speed: clock.speed, virtualNow: clock.now(), realNow}
  const offset = clock.now() - realNow
  return Math.abs(offset) < 1_000 ? null : {speed: 1, virtualNow: realNow + offset, realNow}
}

/**
 * A clock agreeing with the one `spec` was taken from: same time now, same speed. A virtual clock
 * moved by hand (advance()) cannot be followed from another thread.
 */
export function clockFromSpec(spec: ClockSpec): Clock | null {
  if (spec === null) return null
  return new VirtualClock({speed: spec.speed, start: spec.virtualNow + (Date.now() - spec.realNow) * spec.speed})
}

/** Consumer options that cross postMessage (no signal, no callback). */
export type WorkerConsumerOptions = Omit<ConsumerOptions, 'consumer' | 'signal' | 'onEvent'>

/** Handler failures to inject per service (the simulator's faults): rates in [0, 1]. */
export interface WorkerFaults {
  transient?: Record<string, number>
  permanent?: Record<string, number>
}

export interface FailureCounts {
  transient: number
  permanent: number
}

/** What a worker starts from (its workerData). */
export interface WorkerSetup {
  kind: 'tektree-services-worker'
  index: number
  endpoints: {bus: string; store: string}
  catalogPath?: string
  services: string[]
  instances: number
  consumerOptions: WorkerConsumerOptions
  clock: ClockSpec
  emailDir: string | null
  faults: WorkerFaults
  reportEveryMs: number
}

/** An error as it crosses threads (an Error's own fields do not all survive structured clone). */
export interface WireError {
  name: string
  message: string
  code?: string
  stack?: string
}

export type ToWorker = {type: 'stop'; drainTimeoutMs: number} | {type: 'crash'; service: string}

export type FromWorker =
  | {type: 'ready'}
  | {
      type: 'report'
      stats: ConsumerStats[]
      metrics: MetricsDelta
      failures: FailureCounts
      events: Array<{service: string; event: RunnerEvent}>
      relayErrors: WireError[]
      /** The thread's event-loop utilization since its last report (0..1): how busy it was. */
      busy: number
    }
  | {type: 'log'; line: string}
  | {type: 'stopped'}

export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    const code = (error as {code?: unknown}).code
    return {name: error.name, message: error.message, ...(typeof code === 'string' ? {code} : {}), ...(error.stack ? {stack: error.stack} : {})}
  }
  return {name: 'Error', message: String(error)}
}

export function fromWireError(wire: WireError): Error {
  const error = new Error(wire.message)
  error.name = wire.name
  if (wire.code !== undefined) (error as Error & {code?: string}).code = wire.code
  if (wire.stack !== undefined) error.stack = wire.stack
  return error
}

/** A runner event made safe for postMessage: its errors become WireErrors. */
export function toWireEvent(event: RunnerEvent): RunnerEvent {
  return 'error' in event ? ({...event, error: toWireError(event.error)} as RunnerEvent) : event
}

function fromWireEvent(event: RunnerEvent): RunnerEvent {
  return 'error' in event ? ({...event, error: fromWireError(event.error as WireError)} as RunnerEvent) : event
}

export interface WorkerExit {
  worker: number
  services: string[]
  /** The uncaught error, when there was one. */
  error: Error | null
  exitCode: number
  /** False when it kept dying before it ever ran, and was given up on. */
  restarting: boolean
}

export interface ServiceWorkersOptions {
  /** Where every worker attaches: the parent runtime's endpoints (both shareable). */
  endpoints: {bus: string; store: string}
  /** The catalog file (default: the TekTree one). */
  catalogPath?: string
  /** The groups to run, by name. */
  services: readonly string[]
  workers: number
  /** Runners per service, in the worker that owns it. */
  instances?: number
  consumerOptions?: WorkerConsumerOptions
  /** The parent's clock: each worker gets one that agrees with it. */
  clock: Clock
  emailDir?: string | null
  faults?: WorkerFaults
  /** The parent's metrics: the workers' deltas are merged into it. */
  metrics: RuntimeMetrics
  onEvent?: (service: string, event: RunnerEvent) => void
  onRelayError?: (error: Error) => void
  /** A worker ended without being asked to. */
  onWorkerExit?: (exit: WorkerExit) => void
  /** Lines a worker wants said (its runtime's notices). */
  onLog?: (line: string) => void
  /** How often each worker sends its stats and metrics (ms; default 250). */
  reportEveryMs?: number
  /** Consecutive deaths before a worker has run at all, after which it is given up (default 5). */
  maxStartFailures?: number
}

export interface ServiceWorkers {
  /** The groups of each worker. */
  readonly assignment: readonly string[][]
  /** Resolves when every worker runs its groups; rejects when one was given up before it ever ran. */
  readonly ready: Promise<void>
  /** Every runner's stats, as last reported (those of dead workers included). */
  stats(): ConsumerStats[]
  /** Handler failures injected so far (faults). */
  failures(): FailureCounts
  /** Workers started again after dying. */
  restarts(): number
  /** How busy each worker's thread was over its last report interval (0..1; event-loop utilization). */
  busy(): number[]
  /** A simulated crash of one runner of `service`, in the worker that owns it. */
  crash(service: string): boolean
  /**
   * Terminates worker `index` at once, as a crash of the whole thread would end it: it is started
   * again like any worker that died (chaos, tests). False when it is not running.
   */
  killWorker(index: number): boolean
  /**
   * Graceful: every worker stops fetching, finishes and acks what it holds, publishes its derived
   * events, reports a last time and ends. A worker not done within drainTimeoutMs + 5 s is terminated.
   */
  stop(options?: {drainTimeoutMs?: number}): Promise<void>
  /** At once: every worker is terminated; what they held unacked is redelivered later. */
  terminate(): Promise<void>
}

/**
 * The worker's entry and how to start it: the compiled .js beside this file, or under tsx (tests,
 * `bin/dev`) the .ts through tsx's loader, registered inside the thread before the entry loads
 * (Node 20 does not apply `--import` hooks to a worker's own entry).
 */
function workerScript(setup: WorkerSetup): Worker {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker-entry.js', here), {workerData: setup})
  const tsxDir = dirname(createRequire(here).resolve('tsx/package.json'))
  const api = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href
  const entry = new URL('./worker-entry.ts', here).href
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(boot, {eval: true, workerData: setup})
}

interface Slot {
  index: number
  services: string[]
  worker: Worker | null
  /** Stats of the running generation, and of the generations that died (gauges zeroed). */
  stats: ConsumerStats[]
  retired: ConsumerStats[]
  failures: FailureCounts
  retiredFailures: FailureCounts
  /** Deaths in a row before the worker ran. */
  startFailures: number
  busy: number
  running: boolean
  /** Set once stop() asked it to end: an exit is then not a death. */
  stopping: boolean
  givenUp: boolean
  restartTimer: NodeJS.Timeout | null
  lastError: Error | null
  /** Resolves when this slot has no worker left (after stop, terminate or giving up). */
  ended: Promise<void>
  end: () => void
}

const zeroGauges = (s: ConsumerStats): ConsumerStats => ({...s, inFlight: 0, parked: 0, buffered: 0})

export function startServiceWorkers(options: ServiceWorkersOptions): ServiceWorkers {
  const assignment = assignGroups(options.services, options.workers)
  const reportEveryMs = options.reportEveryMs ?? 250
  const maxStartFailures = options.maxStartFailures ?? 5
  let restarts = 0
  let stopping = false

  let readyCount = 0
  let resolveReady!: () => void
  let rejectReady!: (error: Error) => void
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  // A caller that never awaits `ready` must not see an unhandled rejection.
  ready.catch(() => undefined)
  if (assignment.length === 0) resolveReady()

  const slots: Slot[] = assignment.map((services, index) => {
    let end!: () => void
    const ended = new Promise<void>((resolve) => (end = resolve))
    return {
      index,
      services,
      worker: null,
      stats: [],
      retired: [],
      failures: {transient: 0, permanent: 0},
      retiredFailures: {transient: 0, permanent: 0},
      startFailures: 0,
      busy: 0,
      running: false,
      stopping: false,
      givenUp: false,
      restartTimer: null,
      lastError: null,
      ended,
      end,
    }
  })

  const onMessage = (slot: Slot, message: FromWorker) => {
    switch (message.type) {
      case 'ready':
        if (!slot.running) {
          slot.running = true
          slot.startFailures = 0
          if (++readyCount === slots.length) resolveReady()
        }
        return
      case 'report':
        slot.stats = message.stats
        slot.failures = message.failures
        slot.busy = message.busy
        options.metrics.merge(message.metrics)
        for (const {service, event} of message.events) options.onEvent?.(service, fromWireEvent(event))
        for (const error of message.relayErrors) options.onRelayError?.(fromWireError(error))
        return
      case 'log':
        options.onLog?.(message.line)
        return
      case 'stopped':
        // Its last report is in: nothing it holds matters any more.
        slot.stopping = true
        void slot.worker?.terminate()
        return
    }
  }

  const spawn = (slot: Slot) => {
    slot.restartTimer = null
    const setup: WorkerSetup = {
      kind: 'tektree-services-worker',
      index: slot.index,
      endpoints: options.endpoints,
      catalogPath: options.catalogPath,
      services: slot.services,
      instances: Math.max(1, options.instances ?? 1),
      consumerOptions: options.consumerOptions ?? {},
      // Taken at each start: a restarted worker agrees with the parent's clock as it is now.
      clock: clockSpec(options.clock),
      emailDir: options.emailDir ?? null,
      faults: options.faults ?? {},
      reportEveryMs,
    }
    const worker = workerScript(setup)
    slot.worker = worker
    slot.running = false
    slot.lastError = null
    worker.on('message', (message: FromWorker) => onMessage(slot, message))
    worker.on('error', (error) => {
      slot.lastError = error
    })
    worker.on('exit', (exitCode) => onExit(slot, worker, exitCode))
  }

  const onExit = (slot: Slot, worker: Worker, exitCode: number) => {
    if (slot.worker !== worker) return
    slot.worker = null
    // What the dead generation did stays counted; what it held is no longer held.
    slot.retired.push(...slot.stats.map(zeroGauges))
    slot.stats = []
    slot.retiredFailures = {transient: slot.retiredFailures.transient + slot.failures.transient, permanent: slot.retiredFailures.permanent + slot.failures.permanent}
    slot.failures = {transient: 0, permanent: 0}
    if (slot.stopping || stopping) {
      slot.end()
      return
    }
    if (!slot.running) slot.startFailures++
    const restarting = slot.startFailures < maxStartFailures
    const error = slot.lastError ?? (exitCode === 0 ? null : new Error(`worker ${slot.index} exited with code ${exitCode}`))
    options.onWorkerExit?.({worker: slot.index, services: slot.services, error, exitCode, restarting})
    if (!restarting) {
      slot.givenUp = true
      slot.end()
      rejectReady(new Error(`the services worker for ${slot.services.join(', ')} could not start: ${error?.message ?? `exit code ${exitCode}`}`))
      return
    }
    restarts++
    // Back off while it keeps dying on start; at once after a worker that had been running.
    const delay = slot.startFailures === 0 ? 0 : Math.min(5_000, 100 * 2 ** slot.startFailures)
    slot.restartTimer = setTimeout(() => spawn(slot), delay)
  }

  for (const slot of slots) spawn(slot)

  const ownerOf = (service: string) => slots.find((s) => s.services.includes(service))

  return {
    assignment,
    ready,
    stats: () => slots.flatMap((s) => [...s.retired, ...s.stats]),
    failures: () =>
      slots.reduce(
        (sum, s) => ({
          transient: sum.transient + s.retiredFailures.transient + s.failures.transient,
          permanent: sum.permanent + s.retiredFailures.permanent + s.failures.permanent,
        }),
        {transient: 0, permanent: 0},
      ),
    restarts: () => restarts,
    busy: () => slots.map((s) => (s.worker ? s.busy : 0)),
    crash(service) {
      const slot = ownerOf(service)
      if (!slot?.worker || !slot.running || stopping) return false
      slot.worker.postMessage({type: 'crash', service} satisfies ToWorker)
      return true
    },
    killWorker(index) {
      const slot = slots[index]
      if (!slot?.worker || stopping) return false
      void slot.worker.terminate()
      return true
    },
    async stop(stopOptions = {}) {
      stopping = true
      const drainTimeoutMs = stopOptions.drainTimeoutMs ?? 10_000
      await Promise.all(
        slots.map(async (slot) => {
          if (slot.restartTimer) {
            clearTimeout(slot.restartTimer)
            slot.restartTimer = null
          }
          const worker = slot.worker
          if (!worker) return slot.end()
          worker.postMessage({type: 'stop', drainTimeoutMs} satisfies ToWorker)
          let timer: NodeJS.Timeout | undefined
          const late = new Promise<void>((resolve) => {
            timer = setTimeout(resolve, drainTimeoutMs + 5_000)
          })
          await Promise.race([slot.ended, late])
          clearTimeout(timer)
          if (slot.worker) await slot.worker.terminate()
          await slot.ended
        }),
      )
    },
    async terminate() {
      stopping = true
      await Promise.all(
        slots.map(async (slot) => {
          if (slot.restartTimer) clearTimeout(slot.restartTimer)
          slot.restartTimer = null
          if (slot.worker) await slot.worker.terminate()
          else slot.end()
          await slot.ended
        }),
      )
    },
  }
}
