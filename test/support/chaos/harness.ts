/**
 * The chaos suite's harness (test/chaos/*.int.test.ts): a real system to break, faults to break it
 * with, and the checks every scenario ends with.
 *
 * - A redis-server of its own (AOF, fsync every second) on a free port, so a scenario may kill,
 *   restart and damage it without touching the tier's shared server; a SQLite store file in a temp
 *   directory; the parent's runtime on both (the load generator and the checks use it).
 *   Or ({bus: 'kafka'}) a Kafka broker of its own (src/embedded/kafka-server.ts: its directory and
 *   free ports) in place of redis-server, and the parent's runtime opened as the product opens one
 *   on a kafka:// URL (openRuntime: the leaderboards in the store, as Kafka has no sorted sets).
 * - Services in child processes: test/support/services-child.ts (every service, short leases, a
 *   retry budget no kill storm spends), or the real `tektree services` command.
 * - Load: the simulator with no services of its own (the children consume), and poison pills
 *   written straight to the bus, each remembered with the groups that must dead-letter it.
 * - The checks (after a drain): the oracle finds 0 differences, the DLQ holds exactly the expected
 *   poison (per group, by its bytes), nothing is stuck (lag 0 and pending 0 for every service
 *   group, the outbox empty).
 *
 * Sizes come from the environment so that `npm run chaos` runs the same scenarios longer
 * (scripts/chaos.sh): TEKTREE_CHAOS_SCALE (every scenario's faults and events times this),
 * TEKTREE_CHAOS_ROUNDS / TEKTREE_CHAOS_EVENTS (or exactly this many), TEKTREE_CHAOS_SEED (the seed of the load and of every random choice; default: fresh,
 * printed), TEKTREE_CHAOS_RESULTS (a file each scenario appends one JSON line of results to),
 * TEKTREE_CHAOS_KEEP=1 (keep the temp directory: store.db and the AOF, for a post-mortem).
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {appendFileSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {loadCatalog} from '../../../src/catalog/load.js'
import type {Catalog} from '../../../src/catalog/types.js'
import {SystemClock} from '../../../src/core/clock.js'
import type {Runtime} from '../../../src/core/runtime.js'
import type {Bus, Store} from '../../../src/core/ports.js'
import {openRuntime} from '../../../src/adapters/open.js'
import {startKafkaServer, type KafkaServerHandle} from '../../../src/embedded/kafka-server.js'
import {createMetrics} from '../../../src/engine/metrics/index.js'
import {resolveSubscription} from '../../../src/engine/consumer.js'
import {createRedisBus, type RedisBus} from '../../../src/adapters/redis/bus.js'
import {createRedisLeaderboards} from '../../../src/adapters/redis/leaderboards.js'
import {createSqliteStore, type SqliteStore} from '../../../src/adapters/sqlite/index.js'
import {startRedisServer, type RedisServerHandle} from '../../../src/embedded/redis-server.js'
import {createServices} from '../../../src/services/index.js'
import {SERVICE_NAMES} from '../../../src/services/types.js'
import {verifyProjections, type Difference} from '../../../src/services/verify.js'
import {makePoison} from '../../../src/simulator/faults.js'
import {createRandom, type Random} from '../../../src/simulator/random.js'
import {runSimulation} from '../../../src/simulator/run.js'
import {parseScenario} from '../../../src/simulator/scenario.js'
import type {SimulationReport} from '../../../src/simulator/report.js'

const ROOT = resolve(import.meta.dirname, '..', '..', '..')

/** A positive integer from the environment, else the CI default. */
export function envCount(name: string, ciDefault: number): number {
  const value = Number(process.env[name])
  return Number.isInteger(value) && value > 0 ? value : ciDefault
}

/** Every scenario's CI size times this (TEKTREE_CHAOS_SCALE, default 1): `npm run chaos` runs 3. */
const scale = () => envCount('TEKTREE_CHAOS_SCALE', 1)
/** How many faults a scenario injects: TEKTREE_CHAOS_ROUNDS, else its CI count times the scale. */
export const rounds = (ciDefault: number) => envCount('TEKTREE_CHAOS_ROUNDS', ciDefault * scale())
/** How many events a scenario's load sends: TEKTREE_CHAOS_EVENTS, else its CI count times the scale. */
export const eventCount = (ciDefault: number) => envCount('TEKTREE_CHAOS_EVENTS', ciDefault * scale())

/** The seed of a scenario: TEKTREE_CHAOS_SEED, else a fresh one (printed, and in the results). */
export function chaosSeed(): number {
  const given = Number(process.env.TEKTREE_CHAOS_SEED)
  return Number.isInteger(given) ? given : Math.floor(Math.random() * 1_000_000)
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

/** One scenario's line in TEKTREE_CHAOS_RESULTS (scripts/chaos-report.ts makes RELIABILITY.md of them). */
export interface ScenarioResult {
  scenario: string
  /** The test file, for the reproduction line. */
  file: string
  seed: number
  /** What was injected, and how often: {"kill -9 of the services": 10, ...}. */
  injected: Record<string, number>
  events: number
  checks: CheckResult
  durationMs: number
  notes?: string[]
  /** 'loss': the scenario shows a fault's damage on purpose (no repair): differences are its result. */
  expect?: 'loss'
}

export function recordResult(result: ScenarioResult): void {
  const file = process.env.TEKTREE_CHAOS_RESULTS
  if (file) appendFileSync(file, `${JSON.stringify({...result, at: new Date().toISOString()})}\n`)
}

/** Commits the children's runners saw refused as stale reads (each child's last stats line). */
export function staleReads(children: readonly ServicesChild[]): number {
  let total = 0
  for (const {lines} of children) {
    for (let i = lines.length - 1; i >= 0; i--) {
      const count = lines[i]!.staleReads
      if (typeof count === 'number') {
        total += count
        break
      }
    }
  }
  return total
}

export interface ServicesChild {
  readonly child: ChildProcess
  readonly pid: number
  /** Resolves once every runner is subscribed (rejects if the process ends first). */
  readonly ready: Promise<void>
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
  /** JSON lines the child printed (runner events it reports, stats). */
  readonly lines: Array<Record<string, unknown>>
  /** Everything it wrote to stdout and stderr (bounded), for a failure's message. */
  output(): string
  kill9(): Promise<void>
  /** SIGTERM: drain and exit. */
  stop(): Promise<void>
  signal(signal: NodeJS.Signals): void
}

export interface ExpectedDeadLetter {
  group: string
  raw: string
}

export interface CheckResult {
  /** The oracle's values compared, and the differences it found (the first few). */
  checked: number
  differences: number
  /** Differences per projection (only those with some). */
  differing: Record<string, number>
  sample: Difference[]
  /** Dead letters nobody expected, and expected ones missing (group + error code). */
  unexpectedDeadLetters: Array<{group: string; code: string; event_type: string | null}>
  missingDeadLetters: number
  /** The groups of the missing ones. */
  missingDeadLetterGroups: string[]
  expectedDeadLetters: number
  /** Service groups with lag or pending entries left, and the outbox's unpublished events. */
  stuck: Array<{group: string; topic: string; lag: number; pending: number}>
  outbox: number
  drained: boolean
  ok: boolean
}

/** What every chaos system has, whatever its bus. */
export interface ChaosSystemBase {
  readonly dir: string
  readonly storePath: string
  readonly runtime: Runtime
  readonly bus: Bus
  readonly store: Store
  /** The bus URL the services processes are given (redis://... or kafka://...). */
  readonly busUrl: string
  readonly catalog: Catalog
  readonly random: Random
  readonly seed: number
  /** Poison written to the bus so far, per group that must dead-letter it. */
  readonly expectedDeadLetters: ExpectedDeadLetter[]
  /** test/support/services-child.ts in a process of its own (redis-server only). */
  startServicesChild(options?: {env?: Record<string, string>; name?: string}): ServicesChild
  /** The real `tektree services` (dist: build first) on this system's bus and store. */
  startServicesCommand(args?: string[]): ServicesChild
  /** The simulator's load, no services of its own: the children consume it. */
  startLoad(options: {events: number; rate: number; users?: number; seed?: number}): Promise<SimulationReport>
  /** `count` poison pills straight to the bus, each remembered with the groups that must dead-letter it. */
  poison(count: number): Promise<void>
  /** Service groups' lag + pending, plus the outbox. */
  backlog(): Promise<number>
  /** Waits until backlog() is 0 three looks in a row (500 ms apart); false at the deadline. */
  drain(timeoutMs?: number): Promise<boolean>
  /** The after-each checks: verify, the DLQ, nothing stuck. */
  check(options?: {drained?: boolean}): Promise<CheckResult>
  close(): Promise<void>
}

/** On redis-server (the default). */
export interface ChaosSystem extends ChaosSystemBase {
  readonly redis: RedisServerHandle
  readonly bus: RedisBus
  readonly store: SqliteStore
}

/** On a Kafka broker of its own ({bus: 'kafka'}). */
export interface KafkaChaosSystem extends ChaosSystemBase {
  readonly kafka: KafkaServerHandle
}

const serviceGroups = new Set<string>(SERVICE_NAMES)

/**
 * A redis-server with AOF, a SQLite store file, and the parent's runtime on both; with
 * {bus: 'kafka'}, a Kafka broker in place of the redis-server.
 */
export async function openChaosSystem(name: string, options?: {seed?: number; sessionTimeoutMs?: number; bus?: 'redis'; redisFsync?: 'everysec' | 'always'}): Promise<ChaosSystem>
export async function openChaosSystem(name: string, options: {seed?: number; bus: 'kafka'}): Promise<KafkaChaosSystem>
export async function openChaosSystem(
  name: string,
  options: {seed?: number; sessionTimeoutMs?: number; bus?: 'redis' | 'kafka'; redisFsync?: 'everysec' | 'always'} = {},
): Promise<ChaosSystem | KafkaChaosSystem> {
  const seed = options.seed ?? chaosSeed()
  const random = createRandom(seed)
  const dir = mkdtempSync(join(tmpdir(), `tektree-chaos-${name}-`))
  const storePath = join(dir, 'store.db')
  let server: {kafka: KafkaServerHandle} | {redis: RedisServerHandle}
  let runtime: Runtime
  let busUrl: string
  if (options.bus === 'kafka') {
    const kafka = await startKafkaServer({dir: join(dir, 'kafka')}).catch((error: unknown) => {
      rmSync(dir, {recursive: true, force: true})
      throw error
    })
    server = {kafka}
    busUrl = kafka.url
    // The product's assembly for a kafka:// bus and a store file (the leaderboards in the store).
    runtime = await openRuntime({busUrl, storeUrl: `sqlite:${storePath}`, ephemeral: true}).catch(async (error: unknown) => {
      await kafka.stop()
      rmSync(dir, {recursive: true, force: true})
      throw error
    })
  } else {
    const redis = await startRedisServer({dir: join(dir, 'redis'), appendonly: true, appendfsync: options.redisFsync})
    server = {redis}
    busUrl = redis.url
    const redisBus = await createRedisBus({url: redis.url, sessionTimeoutMs: options.sessionTimeoutMs ?? 1_000})
    const redisLeaderboards = await createRedisLeaderboards({url: redis.url})
    const sqliteStore = await createSqliteStore({path: storePath})
    runtime = {
      bus: redisBus,
      store: sqliteStore,
      leaderboards: redisLeaderboards,
      clock: new SystemClock(),
      metrics: createMetrics(),
      endpoints: {bus: null, store: null},
      describe: () => {
        const part = {kind: 'test', location: 'parent', origin: 'external' as const}
        return {bus: part, store: part, leaderboards: part}
      },
      close: async () => {
        await redisLeaderboards.close()
        await redisBus.close()
        await sqliteStore.close()
      },
    }
  }
  const {bus, store, leaderboards} = runtime
  const catalog = await loadCatalog()
  await bus.ensureTopics(catalog.topics())
  const children = new Set<ChildProcess>()
  const expectedDeadLetters: ExpectedDeadLetter[] = []
  // Which groups take (and so dead-letter) a poison pill of a type: those that accept the type.
  const acceptors = createServices({catalog, clock: runtime.clock, emailDir: null}).map((service) => ({
    group: service.name,
    accepts: resolveSubscription(catalog, service.consumes).accepts,
  }))
  const poisonTypes = catalog.events.filter((definition) => acceptors.some((a) => a.accepts(definition))).map((d) => d.type)

  const watch = (child: ChildProcess): ServicesChild => {
    children.add(child)
    const lines: Array<Record<string, unknown>> = []
    let output = ''
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000)
    }
    const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((done) => child.once('exit', (code, signal) => done({code, signal})))
    void exited.then(() => children.delete(child))
    let buffered = ''
    const ready = new Promise<void>((resolveReady, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        keep(chunk)
        buffered += chunk.toString()
        let newline = buffered.indexOf('\n')
        while (newline >= 0) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          if (line === 'ready' || line.startsWith('Running ')) resolveReady()
          else if (line.startsWith('{')) {
            try {
              lines.push(JSON.parse(line) as Record<string, unknown>)
            } catch {
              // a partial line of a killed process
            }
          }
          newline = buffered.indexOf('\n')
        }
      })
      void exited.then(({code, signal}) => reject(new Error(`the services process exited (${code ?? signal}) before it was ready:\n${output}`)))
    })
    ready.catch(() => undefined)
    child.stderr!.on('data', keep)
    return {
      child,
      pid: child.pid!,
      ready,
      exited,
      lines,
      output: () => output,
      async kill9() {
        child.kill('SIGKILL')
        await exited
      },
      async stop() {
        child.kill('SIGCONT')
        child.kill('SIGTERM')
        await exited
      },
      signal: (signal) => void child.kill(signal),
    }
  }

  const system: ChaosSystemBase = {
    dir,
    storePath,
    runtime,
    busUrl,
    bus,
    store,
    catalog,
    random,
    seed,
    expectedDeadLetters,
    startServicesChild(childOptions = {}) {
      // services-child.ts opens the Redis bus and leaderboards itself; on Kafka, run the real command.
      if (!('redis' in server)) throw new Error('startServicesChild() runs on redis-server only: on Kafka use startServicesCommand()')
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'support', 'services-child.ts')], {
        cwd: ROOT,
        env: {...process.env, CHILD_REDIS_URL: busUrl, CHILD_STORE: storePath, CHILD_TIMEOUT_MS: '1000', CHILD_NAME: childOptions.name ?? 'services', ...childOptions.env},
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      return watch(child)
    },
    startServicesCommand(args = []) {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), 'services', '--bus-url', busUrl, '--store-url', `sqlite:${storePath}`, '--mail-dir', join(dir, 'mail'), '--status-every', '0', ...args], {
        cwd: dir,
        env: {...process.env, NO_COLOR: '1'},
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      return watch(child)
    },
    startLoad({events, rate, users = 40, seed: loadSeed = seed}) {
      const seconds = Math.max(1, Math.ceil(events / rate))
      const scenario = parseScenario(
        {name: `chaos-${name}`, seed: loadSeed, population: {users, areas: 4}, rate: {shape: 'step', stages: [{duration: `${seconds}s`, target: rate}]}, events, clock: {speed: 1}, services: 'all'},
        `chaos-${name}`,
      )
      // No services here (the children consume); no backpressure: the faults may stall the consumers.
      return runSimulation({scenario, runtime, services: [], verify: false, drainTimeoutMs: 1_000, maxBacklog: 0})
    },
    async poison(count) {
      for (let i = 0; i < count; i++) {
        const type = random.pick(poisonTypes)
        const definition = catalog.get(type)!
        const {kind: _kind, ...message} = makePoison(random, definition.topic, type)
        await bus.publish([message])
        for (const acceptor of acceptors) if (acceptor.accepts(definition)) expectedDeadLetters.push({group: acceptor.group, raw: message.value})
      }
    },
    async backlog() {
      const stats = await bus.stats()
      return stats.filter((s) => serviceGroups.has(s.group)).reduce((n, s) => n + s.lag + s.pending, 0) + (await store.outbox.pending())
    },
    async drain(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs
      let quiet = 0
      while (quiet < 3 && Date.now() < deadline) {
        let busy = 1
        try {
          busy = await system.backlog()
        } catch {
          // the bus or store is recovering: not quiet
        }
        quiet = busy === 0 ? quiet + 1 : 0
        if (quiet < 3) await sleep(500)
      }
      return quiet >= 3
    },
    async check(checkOptions = {}) {
      const verify = await verifyProjections({store, leaderboards, catalog})
      const records = await store.dlq.list({limit: 1_000_000})
      const expected = new Map<string, number>()
      for (const e of expectedDeadLetters) expected.set(`${e.group}\u0000${e.raw}`, (expected.get(`${e.group}\u0000${e.raw}`) ?? 0) + 1)
      const unexpected: CheckResult['unexpectedDeadLetters'] = []
      for (const record of records) {
        const key = `${record.group}\u0000${record.raw}`
        const left = expected.get(key) ?? 0
        if (left > 0) expected.set(key, left - 1)
        else unexpected.push({group: record.group, code: record.error.error.code, event_type: record.event_type})
      }
      const missing = [...expected.values()].reduce((n, left) => n + left, 0)
      const missingGroups = [...expected.entries()].filter(([, left]) => left > 0).map(([key]) => key.split('\u0000')[0])
      const stats = await bus.stats()
      const stuck = stats.filter((s) => serviceGroups.has(s.group) && (s.lag > 0 || s.pending > 0)).map((s) => ({group: s.group, topic: s.topic, lag: s.lag, pending: s.pending}))
      const outbox = await store.outbox.pending()
      const drained = checkOptions.drained ?? true
      return {
        checked: verify.checked,
        differences: verify.differences.length,
        differing: Object.fromEntries(Object.entries(verify.projections ?? {}).filter(([, p]) => p.differences > 0).map(([name, p]) => [name, p.differences])),
        sample: verify.differences.slice(0, 5),
        unexpectedDeadLetters: unexpected.slice(0, 20),
        missingDeadLetters: missing,
        missingDeadLetterGroups: missingGroups,
        expectedDeadLetters: expectedDeadLetters.length,
        stuck,
        outbox,
        drained,
        ok: drained && verify.differences.length === 0 && unexpected.length === 0 && missing === 0 && stuck.length === 0 && outbox === 0,
      }
    },
    async close() {
      for (const child of children) {
        child.kill('SIGCONT')
        child.kill('SIGKILL')
      }
      await runtime.close().catch(() => undefined)
      if ('kafka' in server) await server.kafka.stop()
      else await server.redis.stop()
      // TEKTREE_CHAOS_KEEP=1 keeps the store and the AOF for a post-mortem.
      if (process.env.TEKTREE_CHAOS_KEEP === '1') process.stderr.write(`[chaos ${name}] kept ${dir}\n`)
      else rmSync(dir, {recursive: true, force: true})
    },
  }
  process.stderr.write(`[chaos ${name}] seed ${seed} (TEKTREE_CHAOS_SEED=${seed} repeats its choices), ${'kafka' in server ? 'kafka' : 'redis'} ${busUrl}, store ${storePath}\n`)
  // The Redis system's bus and store are the concrete adapters (ChaosSystem's types say so).
  return Object.assign(system, server) as ChaosSystem | KafkaChaosSystem
}

/** A readable failure message for expect(): what the checks found. */
export function describeCheck(check: CheckResult): string {
  return JSON.stringify({...check, sample: check.sample.slice(0, 3)}, null, 1)
}
