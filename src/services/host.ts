/**
 * Runs TekTree services on a runtime: the engine's pipeline (src/engine/pipeline.ts: a publisher and
 * an outbox relay for their derived events) and one consumer runner per service (per instance). Several hosts (processes) share each service's
 * work through its consumer group. stop() drains: runners finish and ack what they hold, the
 * relay publishes what the handlers emitted, then everything closes.
 */
import {hostname} from 'node:os'
import {threadId} from 'node:worker_threads'
import type {Catalog} from '../catalog/types.js'
import type {ConsumerHandle, ConsumerOptions, ConsumerStats, RunnerEvent} from '../engine/consumer.js'
import {createPipeline} from '../engine/pipeline.js'
import type {Publisher} from '../engine/publisher.js'
import type {OutboxRelay} from '../engine/relay.js'
import type {Runtime} from '../core/runtime.js'
import type {ServiceDefinition} from './types.js'

export interface ServicesHostOptions {
  runtime: Runtime
  catalog: Catalog
  services: ServiceDefinition[]
  /** Consumer runners per service in this process (default 1). */
  instances?: number
  consumerOptions?: Omit<ConsumerOptions, 'consumer' | 'onEvent'>
  /** Run an outbox relay here (default true): derived events reach the bus without another process. */
  relay?: boolean
  onEvent?: (service: string, event: RunnerEvent) => void
  onRelayError?: (error: unknown) => void
  /** Share this process's metrics with `tektree dashboard` (the main thread's host only). */
  beacon?: {role: string; workers?: () => number}
}

export interface ServicesHost {
  readonly publisher: Publisher
  readonly relay: OutboxRelay | null
  /** Every runner's stats, crashed ones included (their counts happened). */
  stats(): ConsumerStats[]
  /**
   * A simulated crash of one runner of `service`: it stops at once without acking what it holds
   * (the bus redelivers that after the visibility timeout) and a fresh runner takes its place.
   * False when no runner of that service runs here.
   */
  crash(service: string): boolean
  /** Graceful: stop fetching, finish and ack in-flight work, publish the derived events, stop. */
  stop(options?: {drainTimeoutMs?: number}): Promise<void>
  readonly done: Promise<void>
}

export function startServices(options: ServicesHostOptions): ServicesHost {
  const {runtime, catalog} = options
  // Unique per thread too: worker threads share the pid, and both the relay's lease owner and the
  // bus's consumer names must tell them apart (a restarted worker gets a new threadId).
  const where = `${hostname()}-${process.pid}${threadId === 0 ? '' : `-t${threadId}`}`
  const pipeline = createPipeline({runtime, catalog, producerId: `tektree-services-${where}`, relay: options.relay, onRelayError: options.onRelayError, beacon: options.beacon})

  interface Runner {
    service: ServiceDefinition
    handle: ConsumerHandle
    crash: AbortController
  }
  /** Every runner ever started (stats), and the live ones per service (stop, crash). */
  const all: Runner[] = []
  const live = new Map<string, Runner[]>()
  let seq = 0
  const startRunner = (service: ServiceDefinition): Runner => {
    const crash = new AbortController()
    const handle = pipeline.startConsumer(service, {
      ...options.consumerOptions,
      consumer: `${service.name}-${where}-${seq++}`,
      signal: crash.signal,
      onEvent: (event) => options.onEvent?.(service.name, event),
    })
    const runner = {service, handle, crash}
    all.push(runner)
    return runner
  }
  const instances = Math.max(1, options.instances ?? 1)
  for (const service of options.services) {
    live.set(service.name, Array.from({length: instances}, () => startRunner(service)))
  }
  let stopping: Promise<void> | null = null
  const liveHandles = () => [...live.values()].flat().map((r) => r.handle)
  return {
    publisher: pipeline.publisher,
    relay: pipeline.relay,
    stats: () => all.map((r) => r.handle.stats()),
    crash(name) {
      const runners = live.get(name)
      if (!runners || runners.length === 0 || stopping) return false
      const victim = runners.shift()!
      victim.crash.abort(new Error('simulated consumer crash'))
      runners.push(startRunner(victim.service))
      return true
    },
    get done() {
      return Promise.all(liveHandles().map((h) => h.done)).then(() => undefined)
    },
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        await Promise.all(liveHandles().map((h) => h.stop()))
        await pipeline.stop(stopOptions)
      })()
      return stopping
    },
  }
}

/** Sums runner stats per service (several instances of one service add up). */
export function statsByService(stats: readonly ConsumerStats[]): Map<string, ConsumerStats> {
  const out = new Map<string, ConsumerStats>()
  for (const s of stats) {
    const sum = out.get(s.group)
    if (!sum) {
      out.set(s.group, {...s})
      continue
    }
    for (const key of Object.keys(s) as Array<keyof ConsumerStats>) {
      if (typeof s[key] === 'number') (sum[key] as number) += s[key] as number
    }
  }
  return out
}

/**
 * Resolves when every service group has nothing left: no lag or pending on the bus, nothing held
 * by the runners, an empty outbox. For demos and tests that wait for a choreography to settle.
 */
export async function waitForQuiet(runtime: Runtime, host: ServicesHost, options: {timeoutMs?: number; groups?: string[]} = {}): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let quietRounds = 0
  while (Date.now() < deadline) {
    const held = host.stats().reduce((n, s) => n + s.buffered, 0)
    const outbox = await runtime.store.outbox.pending()
    const groups = await runtime.bus.stats()
    const busy = groups.filter((g) => !options.groups || options.groups.includes(g.group)).reduce((n, g) => n + g.lag + g.pending, 0)
    // A group not on the bus yet has not subscribed (its runner subscribes in the background; on
    // Kafka the first join takes a moment): what it will read shows no lag until then.
    const present = new Set(groups.map((g) => g.group))
    const unsubscribed = options.groups?.some((group) => !present.has(group)) ?? false
    quietRounds = held === 0 && outbox === 0 && busy === 0 && !unsubscribed ? quietRounds + 1 : 0
    // Two quiet looks in a row: a handler's derived events may be between append and relay.
    if (quietRounds >= 2) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}
