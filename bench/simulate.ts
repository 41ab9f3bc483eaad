/**
 * Simulator throughput: runs `tektree simulate` at increasing target rates on the in-process engine
 * (and on Redis when TEKTREE_REDIS_URL / --redis-url is given) and prints what was achieved:
 * simulated events/s, all events/s incl. derived, publish and delivery p95, backlog.
 *
 *   npm run bench:one -- bench/simulate.ts [--rates 500,1000,2000,5000] [--seconds 10] [--targets in-process,redis,sqlite,kafka] [--redis-url URL [--mongo-url URL | --full]] [--kafka-url kafka://HOST:PORT]
 *                             [--services tektree|sink|none] [--workers 1,2] [--max-backlog N] [--json] [--alloc]
 *
 * --services sink runs one no-op consumer group on every type, to measure the bus alone (the default
 * when the TekTree services are not part of the build). --targets sqlite is the Redis bus with a
 * SQLite store file (the embedded default): shareable, so --workers N runs the services in N worker
 * threads (1 = on the generator's thread); on the other targets the services always share its thread.
 * --max-backlog 0 (the default here) measures what the services carry without the generator ever
 * being held back; give a bound to see backpressure.
 *
 * "cpu us/event": CPU time of this process (every thread: generator, relay, workers, GC) plus
 * redis-server's (INFO cpu) over the run, divided by the events it carried (simulated + derived).
 * Below saturation every run carries the same seeded work, so this is the figure to compare two
 * builds by on a noisy machine: it moves far less than the rates do.
 */
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {Redis} from 'ioredis'
import type {Runtime} from '../src/core/runtime.js'
import {runSimulation} from '../src/simulator/run.js'
import {parseScenario} from '../src/simulator/scenario.js'
import {redisBusWithMemoryStore, busWithSqliteStore} from './redis-runtime.js'
import {allocatedBytes} from './allocation.js'
import {servicesAvailable, type SimService} from '../src/simulator/services-bridge.js'

const {values} = parseArgs({
  options: {
    rates: {type: 'string', default: '500,1000,2000,5000'},
    seconds: {type: 'string', default: '10'},
    'redis-url': {type: 'string', default: process.env.TEKTREE_REDIS_URL},
    'mongo-url': {type: 'string', default: process.env.TEKTREE_MONGO_URL},
    /** The Kafka bus with the SQLite store (`tektree up --bus kafka` prints a broker's URL). */
    'kafka-url': {type: 'string'},
    services: {type: 'string'},
    full: {type: 'boolean', default: false},
    /** in-process, redis, sqlite, kafka (the Redis targets need --redis-url, kafka --kafka-url). */
    targets: {type: 'string', default: 'in-process,redis'},
    /** Worker threads for the services, one run per value (shareable targets only; else 1). */
    workers: {type: 'string', default: '1'},
    'max-backlog': {type: 'string', default: '0'},
    /** Consumer runners per service (per worker thread): the scenario's `consumers`. */
    consumers: {type: 'string', default: '1'},
    /** One JSON line per measured run on stdout instead of the table (bench/ab.ts reads them). */
    json: {type: 'boolean', default: false},
    /** Also sample what is allocated on this thread (bench/allocation.ts): "alloc B/event". */
    alloc: {type: 'boolean', default: false},
  },
})

const mode = values.services ?? ((await servicesAvailable()) ? 'tektree' : 'sink')
const sink: SimService = {name: 'bench-sink', consumes: ['**'], handle: () => undefined}
const services: SimService[] | undefined = mode === 'sink' ? [sink] : mode === 'none' ? [] : undefined
const rates = values.rates!.split(',').map(Number)
const seconds = Number(values.seconds)
type Target = {key: string; name: string; redisUrl?: string; mongoUrl?: string; inProcess?: boolean; runtime?: () => Promise<Runtime>}
const targets: Target[] = [{key: 'in-process', name: 'in-process', inProcess: true}]
if (values['redis-url']) {
  const url = values['redis-url']
  // The Redis bus alone: in-process store, so the numbers are the bus's, not the store's.
  targets.push({
    key: 'redis',
    name: 'redis bus + in-process store',
    runtime: () => redisBusWithMemoryStore(url),
  })
  targets.push({key: 'sqlite', name: 'redis bus + sqlite store', runtime: () => busWithSqliteStore(url)})
  // The full path on servers: with --mongo-url, or the store openRuntime finds (discovery / its own server).
  if (values['mongo-url'] || values['full']) targets.push({key: 'redis', name: 'redis + mongodb', redisUrl: url, mongoUrl: values['mongo-url']})
}

if (values['kafka-url']) targets.push({key: 'kafka', name: 'kafka bus + sqlite store', runtime: () => busWithSqliteStore(values['kafka-url']!)})

const wanted = values.targets!.split(',')
const selected = targets.filter((t) => wanted.includes(t.key))
const workerCounts = values.workers!.split(',').map(Number)
const maxBacklog = Number(values['max-backlog'])
const table = new Table({head: ['runtime', 'workers', 'target/s', 'simulated/s', 'all/s', 'publish p95', 'delivery p95', 'max backlog', 'generator behind', 'services behind', 'drained', 'cpu us/event', ...(values.alloc ? ['alloc B/event'] : [])]})
for (const target of selected) for (const workers of target.key === 'sqlite' || target.key === 'kafka' ? workerCounts : [1]) {
  // A short unrecorded run first: the first measured rate would otherwise pay for JIT warm-up.
  for (const [rate, warmUp] of [[rates[0], true] as const, ...rates.map((r) => [r, false] as const)]) {
    const scenario = parseScenario(
      {
        name: `bench-${rate}`,
        seed: 1,
        population: {users: 20_000, areas: 40},
        rate: {shape: 'step', stages: [{duration: `${warmUp ? Math.min(3, seconds) : seconds}s`, target: rate}]},
        clock: {speed: 1},
        consumers: Number(values.consumers),
      },
      'bench',
    )
    const runtime = target.runtime ? await target.runtime() : undefined
    const cpuBefore = process.cpuUsage()
    const redisBefore = await redisCpuMs(values['redis-url'], target.key)
    const simulate = () =>
      runSimulation(
        {scenario, runtime, redisUrl: target.redisUrl, mongoUrl: target.mongoUrl, inProcess: target.inProcess, drainTimeoutMs: 60_000, services, workers, maxBacklog},
        {onProgress: (p) => process.stderr.write(`\r${target.name} x${workers} ${rate}/s${warmUp ? ' (warm-up)' : ''}: sent ${p.sent} lag ${p.backlog}${p.heldBack ? ' held back' : ''}   `)},
      )
    const sampled = values.alloc && !warmUp ? await allocatedBytes(simulate) : {result: await simulate(), bytes: null}
    const report = sampled.result
    const cpu = process.cpuUsage(cpuBefore)
    const redisMs = (await redisCpuMs(values['redis-url'], target.key)) - redisBefore
    await runtime?.close()
    process.stderr.write('\n')
    if (warmUp) continue
    const cpuUsPerEvent = ((cpu.user + cpu.system) / 1000 + redisMs) * 1000 / Math.max(1, report.events.total)
    const allocPerEvent = sampled.bytes === null ? null : sampled.bytes / Math.max(1, report.events.total)
    if (values.json) {
      console.log(
        JSON.stringify({
          target: target.key,
          workers: report.workers,
          rate,
          simulated: report.rate.achieved,
          all: report.rate.achievedTotal,
          publishP95: report.latency.publish.count ? report.latency.publish.p95 : null,
          deliveryP95: report.latency.delivery.count ? report.latency.delivery.p95 : null,
          maxBacklog: report.maxBacklog,
          drained: report.drained,
          cpuUsPerEvent,
          ...(allocPerEvent === null ? {} : {allocPerEvent}),
        }),
      )
      continue
    }
    table.push([
      target.name,
      report.workers === 0 ? 'main thread' : report.workers,
      rate,
      report.rate.achieved.toFixed(0),
      report.rate.achievedTotal.toFixed(0),
      report.latency.publish.count ? `${report.latency.publish.p95.toFixed(2)} ms` : 'n/a',
      report.latency.delivery.count ? `${report.latency.delivery.p95.toFixed(2)} ms` : 'n/a',
      report.maxBacklog,
      report.rate.fellBehind ? (report.rate.heldBackMs > 0 ? `yes (held back ${(report.rate.heldBackMs / 1000).toFixed(1)} s)` : 'yes') : 'no',
      report.servicesFellBehind ? 'yes' : 'no',
      report.drained ? 'yes' : `no (${report.drainMs} ms)`,
      cpuUsPerEvent.toFixed(0),
      ...(allocPerEvent === null ? [] : [allocPerEvent.toFixed(0)]),
    ])
  }
}
if (!values.json) {
  console.log(table.toString())
  console.log(`node ${process.version}, ${seconds}s per rate, services: ${mode}`)
}

/** redis-server's CPU so far (ms, user + sys), for the targets on the Redis bus; 0 elsewhere. */
async function redisCpuMs(url: string | undefined, key: string): Promise<number> {
  if (!url || (key !== 'redis' && key !== 'sqlite') || !url.startsWith('redis')) return 0
  const redis = new Redis(url, {lazyConnect: true, maxRetriesPerRequest: 1})
  try {
    await redis.connect()
    const info = await redis.info('cpu')
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
    return (field('used_cpu_user') + field('used_cpu_sys')) * 1000
  } finally {
    redis.disconnect()
  }
}
