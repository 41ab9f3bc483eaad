/**
 * Every TekTree service in a process of its own, for the chaos suite (test/chaos, through
 * test/support/chaos/harness.ts; run with `node --import tsx`): the Redis bus and leaderboards at
 * CHILD_REDIS_URL (keys under CHILD_PREFIX when given), the SQLite store at CHILD_STORE, short lease
 * and visibility timeouts so a killed or stopped process's work moves on quickly. Prints "ready"
 * once subscribed, then JSON lines: what it handled (every second), and the runner events a chaos
 * test wants to see (dead letters, store errors). Exits on SIGTERM after draining, and is bounded in
 * time however it is left.
 */
import {loadCatalog} from '../../src/catalog/load.js'
import {SystemClock} from '../../src/core/clock.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {createRedisLeaderboards} from '../../src/adapters/redis/leaderboards.js'
import type {Runtime} from '../../src/core/runtime.js'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'
import {startServices} from '../../src/services/host.js'
import {createServices} from '../../src/services/index.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

const url = env('CHILD_REDIS_URL')
const prefix = process.env.CHILD_PREFIX || undefined
const timeoutMs = Number(process.env.CHILD_TIMEOUT_MS ?? 1_000)
const catalog = await loadCatalog()
const clock = new SystemClock()
const bus = await createRedisBus({url, prefix, sessionTimeoutMs: timeoutMs, defaultVisibilityTimeoutMs: timeoutMs})
const leaderboards = await createRedisLeaderboards({url, prefix})
const store = await createSqliteStore({path: env('CHILD_STORE')})
const runtime: Runtime = {
  bus,
  store,
  leaderboards,
  clock,
  metrics: createMetrics(),
  endpoints: {bus: null, store: null},
  describe: () => {
    const part = {kind: 'test', location: 'child', origin: 'external' as const}
    return {bus: part, store: part, leaderboards: part}
  },
  close: async () => {
    await leaderboards.close()
    await bus.close()
    await store.close()
  },
}
const services = createServices({catalog, clock, emailDir: null})
function retryDelays(): number[] | undefined {
  const given = process.env.CHILD_RETRY_DELAYS_MS
  if (given === 'default') return undefined
  if (given) return given.split(',').map(Number)
  return Array.from({length: 15}, () => 0)
}
let subscribed = 0
let reported = 0
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`)
const host = startServices({
  runtime,
  catalog,
  services,
  // The kills are the test's, not the events': a budget no kill storm of the test can spend (every
  // kill counts as a delivery of what the dead process held), so nothing is dead-lettered for them.
  // CHILD_RETRY_DELAYS_MS=default: the product's schedule (0 s, 10 s, 60 s), which outlasts a
  // Redis restart; or a comma-separated list.
  consumerOptions: {visibilityTimeoutMs: timeoutMs, retryDelaysMs: retryDelays()},
  onEvent: (service, event) => {
    if (event.type === 'subscribed' && ++subscribed === services.length) process.stdout.write('ready\n')
    if (event.type === 'dead_lettered') say({dead_lettered: service, code: event.record.error.error.code, event_id: event.record.event_id})
    if (event.type === 'store_error' && reported++ < 50) say({store_error: service, phase: event.phase, message: (event.error as Error)?.message ?? String(event.error)})
  },
})
const ticker = setInterval(() => {
  const stats = host.stats()
  say({handled: stats.reduce((n, s) => n + s.handled, 0), staleReads: stats.reduce((n, s) => n + s.staleReads, 0)})
}, 1_000)
const stop = async () => {
  clearInterval(ticker)
  await host.stop()
  await runtime.close()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
setTimeout(() => void stop(), Number(process.env.CHILD_MAX_RUN_MS ?? 120_000)).unref()
