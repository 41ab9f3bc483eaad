/**
 * Memory over a long run: the simulator with every TekTree service at a steady rate for --minutes,
 * sampling the heap after a forced GC every --every seconds.
 *
 * --store sqlite (the default: the embedded default, Redis bus + a SQLite store file, the services in
 * --workers threads): the log is on disk, so the process's resident memory itself must stay flat;
 * the report gives its growth after the first minute, and the seed-000 latencies over the run.
 *
 * --store memory: the in-process store (one thread), as sessions 4-5 measured it:
 * With no mongod here the event log lives in the in-process store and grows by design, so the question
 * this answers is whether anything ELSE grows. At the end the store is dropped and the heap measured
 * again: what was freed is the store's share (c bytes per stored event: the log, its indexes, the
 * projections and the groups' ledgers, which a 10-minute window never expires within a 10-minute run).
 * The heap outside the store at each sample is then heap - c x events stored; flat means that figure
 * stays put from the first sample to the last taken while the services run.
 *
 *   npm run bench:soak -- [--redis-url URL] [--store sqlite|memory] [--workers N] [--rate 300] [--minutes 10] [--every 60]
 * Without --redis-url it starts its own redis-server. --rate is simulated events/s; the bus carries
 * about 3.5 times that once the services' derived events are counted.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {startRedisServer} from '../src/embedded/redis-server.js'
import type {Runtime} from '../src/core/runtime.js'
import {runSimulation} from '../src/simulator/run.js'
import {parseScenario} from '../src/simulator/scenario.js'
import {redisBusWithMemoryStore, busWithSqliteStore} from './redis-runtime.js'

const {values} = parseArgs({
  options: {
    'redis-url': {type: 'string'},
    rate: {type: 'string', default: '300'},
    minutes: {type: 'string', default: '10'},
    every: {type: 'string', default: '60'},
    store: {type: 'string', default: 'sqlite'},
    workers: {type: 'string'},
  },
})
const gc = (globalThis as {gc?: () => void}).gc
if (!gc) {
  console.error('Run with node --expose-gc: the samples are taken after a full collection.')
  process.exit(2)
}
const rate = Number(values.rate)
const minutes = Number(values.minutes)
const everyMs = Number(values.every) * 1000
const MB = 2 ** 20

let redis: Awaited<ReturnType<typeof startRedisServer>> | undefined
let dir: string | undefined
let url = values['redis-url']
if (!url) {
  dir = mkdtempSync(path.join(tmpdir(), 'tektree-soak-'))
  redis = await startRedisServer({dir})
  url = redis.url
}

interface Sample {
  minute: number
  events: number
  heapMB: number
  rssMB: number
}

const onDisk = values.store === 'sqlite'
let runtime: Runtime | undefined = onDisk ? await busWithSqliteStore(url) : await redisBusWithMemoryStore(url)
const samples: Sample[] = []
const t0 = performance.now()
const sample = async () => {
  gc()
  const memory = process.memoryUsage()
  samples.push({minute: (performance.now() - t0) / 60_000, events: await runtime!.store.events.count(), heapMB: memory.heapUsed / MB, rssMB: memory.rss / MB})
  process.stderr.write(`\r${samples.length} samples, ${samples.at(-1)!.events} events stored, heap ${samples.at(-1)!.heapMB.toFixed(0)} MB   `)
}
const timer = setInterval(() => void sample(), everyMs)
try {
  const scenario = parseScenario(
    {
      name: `soak-${rate}`,
      seed: 1,
      population: {users: 20_000, areas: 40},
      rate: {start: 0, stages: [{duration: '10s', target: rate}, {duration: `${minutes * 60 - 10}s`, target: rate}]},
      clock: {speed: 1},
    },
    'soak',
  )
  const workers = values.workers === undefined ? undefined : Number(values.workers)
  const report = await runSimulation({scenario, runtime, drainTimeoutMs: 120_000, ...(workers === undefined ? {} : {workers})})
  clearInterval(timer)
  const lastRunning = samples.at(-1)!
  if (onDisk) {
    const firstMinute = samples.find((s) => s.minute >= 1) ?? samples[0]
    const table = new Table({head: ['minute', 'events stored', 'heap MB', 'rss MB']})
    for (const s of samples) table.push([s.minute.toFixed(1), s.events, s.heapMB.toFixed(0), s.rssMB.toFixed(0)])
    console.log(table.toString())
    const growth = (lastRunning.rssMB - firstMinute.rssMB) / firstMinute.rssMB
    console.log(
      [
        `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
        `Redis bus + SQLite store file, every service (${report.workers > 0 ? `${report.workers} worker threads` : 'on the main thread'}), ${rate} simulated/s for ${minutes} min: ${report.rate.achieved.toFixed(0)} simulated/s, ${report.rate.achievedTotal.toFixed(0)} events/s on the bus`,
        `publish p95 ${report.latency.publish.p95.toFixed(0)} ms, delivery p95 ${report.latency.delivery.p95.toFixed(0)} ms, max backlog ${report.maxBacklog}, services fell behind: ${report.servicesFellBehind ? 'yes' : 'no'}`,
        `resident memory: ${firstMinute.rssMB.toFixed(0)} MB at minute ${firstMinute.minute.toFixed(1)}, ${lastRunning.rssMB.toFixed(0)} MB at minute ${lastRunning.minute.toFixed(1)} (${(growth * 100).toFixed(1)}%)`,
      ].join('\n'),
    )
    console.log(JSON.stringify({bench: 'soak', store: 'sqlite', rate, minutes, samples, achieved: report.rate.achieved, achievedTotal: report.rate.achievedTotal, publishP95: report.latency.publish.p95, deliveryP95: report.latency.delivery.p95, maxBacklog: report.maxBacklog, rssGrowth: growth}))
  } else {
    await sample() // after the drain, with the services stopped
    const atEnd = samples.at(-1)!
    await runtime.close()
    runtime = undefined
    gc()
    const withoutStore = process.memoryUsage().heapUsed / MB
    const perEvent = ((atEnd.heapMB - withoutStore) * MB) / atEnd.events
    process.stderr.write('\n')

    const table = new Table({head: ['minute', 'events stored', 'heap MB', 'rss MB', 'heap outside the store MB']})
    for (const s of samples) table.push([s === atEnd ? 'end (services stopped)' : s.minute.toFixed(1), s.events, s.heapMB.toFixed(0), s.rssMB.toFixed(0), ((s.heapMB * MB - perEvent * s.events) / MB).toFixed(1)])
    console.log(table.toString())
    const first = samples[0]
    const outside = (s: Sample) => s.heapMB - (perEvent * s.events) / MB
    console.log(
      [
        `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
        `Redis bus + in-process store, every service, ${rate} simulated/s for ${minutes} min: ${report.rate.achieved.toFixed(0)} simulated/s, ${report.rate.achievedTotal.toFixed(0)} events/s on the bus`,
        `publish p95 ${report.latency.publish.p95.toFixed(0)} ms, delivery p95 ${report.latency.delivery.p95.toFixed(0)} ms, max backlog ${report.maxBacklog}, services fell behind: ${report.servicesFellBehind ? 'yes' : 'no'}`,
        `the store's share: ${perEvent.toFixed(0)} bytes per stored event (heap ${atEnd.heapMB.toFixed(0)} MB with it, ${withoutStore.toFixed(0)} MB without)`,
        `heap outside the store, services running: ${outside(first).toFixed(1)} MB at minute ${first.minute.toFixed(1)}, ${outside(lastRunning).toFixed(1)} MB at minute ${lastRunning.minute.toFixed(1)} (${(((outside(lastRunning) - outside(first)) / outside(first)) * 100).toFixed(1)}%)`,
      ].join('\n'),
    )
    console.log(JSON.stringify({bench: 'soak', rate, minutes, perEvent, withoutStoreMB: withoutStore, samples, achieved: report.rate.achieved, achievedTotal: report.rate.achievedTotal}))
  }
} finally {
  clearInterval(timer)
  await runtime?.close()
  await redis?.stop()
  if (dir) rmSync(dir, {recursive: true, force: true})
}
