/**
 * The bare runtime, no handlers: how fast each adapter carries events, next to the raw server
 * measured in the same run on the same machine.
 *
 *   bus      publish (batches) -> consume (one group, one consumer) -> ack, concurrently; N messages
 *            of a real envelope's size. Adapters: in-process, Redis Streams.
 *   store    append (batches) -> outbox claim -> mark published: the outbox half of the path.
 *            Adapters: in-process, MongoDB (mongod when on PATH, else mongo-java-server).
 *   pipeline store.append -> outbox relay -> bus -> consume -> ack: the whole bare path.
 *   baseline redis-benchmark XADD, pipelined (-P 64), against the same redis-server.
 *
 * Starts its own redis-server and MongoDB wire server (no flags needed). Prints a table on stderr
 * and one JSON line on stdout.
 *
 *   npm run bench:one -- bench/runtime.ts [--messages 200000] [--store-messages 20000] [--mongo-messages N] [--no-mongo]
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {createExampleFactory} from '../src/catalog/example.js'
import {loadCatalog} from '../src/catalog/load.js'
import type {EventEnvelope} from '../src/core/envelope.js'
import {startMongoServer, type MongoServerHandle} from '../src/embedded/mongo-server.js'
import {startRedisServer, type RedisServerHandle} from '../src/embedded/redis-server.js'
import {createMemoryBus, createMemoryStore} from '../src/adapters/memory/index.js'
import {createMongoStore} from '../src/adapters/mongo/index.js'
import type {Bus, OutgoingMessage, Store} from '../src/core/ports.js'
import {createRedisBus} from '../src/adapters/redis/bus.js'
import {createOutboxRelay} from '../src/engine/relay.js'

const {values} = parseArgs({
  options: {
    messages: {type: 'string', default: '200000'},
    'store-messages': {type: 'string', default: '20000'},
    // mongo-java-server (the wire server where no mongod exists) slows as its collections grow, so
    // its sample is smaller; a real mongod takes the full --store-messages.
    'mongo-messages': {type: 'string'},
    'no-mongo': {type: 'boolean', default: false},
  },
})
const N = Number(values.messages)
const STORE_N = Number(values['store-messages'])
const MONGO_N_ARG = values['mongo-messages']
const BATCH = 500

const catalog = await loadCatalog()
const example = createExampleFactory(catalog)
const sample = example('knowledge.question.posted', {seed: 1})
const value = JSON.stringify(sample)

interface Row {
  name: string
  messages: number
  perSecond: number
}
const rows: Row[] = []
const record = (name: string, messages: number, ms: number): Row => {
  const row = {name, messages, perSecond: Math.round(messages / (ms / 1000))}
  rows.push(row)
  process.stderr.write(`${name.padEnd(44)} ${String(row.perSecond).padStart(9)} /s  (${messages} in ${ms.toFixed(0)} ms)\n`)
  return row
}
const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6

/** publish -> consume -> ack, running at the same time; resolves when every message is acked. */
async function busRoundTrip(bus: Bus, n: number): Promise<number> {
  const topic = `bench.bus.${process.pid}.${Date.now()}`
  await bus.ensureTopics([{name: topic, partitions: 8}])
  const subscription = await bus.subscribe({group: 'bench', consumer: 'bench-1', topics: [topic], batchSize: 1000, blockMs: 200})
  const start = process.hrtime.bigint()
  const producing = (async () => {
    for (let sent = 0; sent < n; sent += BATCH) {
      const batch: OutgoingMessage[] = []
      for (let i = sent; i < Math.min(n, sent + BATCH); i++) batch.push({topic, key: `k${i % 997}`, value, headers: {event_type: 'knowledge.question.posted'}})
      await bus.publish(batch)
    }
  })()
  let acked = 0
  const deadline = Date.now() + 300_000
  while (acked < n && Date.now() < deadline) {
    const deliveries = await subscription.next()
    if (deliveries.length === 0) continue
    await subscription.ack(deliveries)
    acked += deliveries.length
  }
  await producing
  const ms = elapsedMs(start)
  await subscription.close()
  if (acked < n) throw new Error(`only ${acked} of ${n} acked within the bound`)
  return ms
}

function envelopes(n: number, tag: string): EventEnvelope[] {
  const out: EventEnvelope[] = []
  for (let i = 0; i < n; i++) {
    const e = example('knowledge.question.posted', {seed: i}) as EventEnvelope
    // Fresh ids per run: the store's append is idempotent by event_id.
    out.push({...e, event_id: crypto.randomUUID(), metadata: {...e.metadata, bench: tag}})
  }
  return out
}

/** append -> claim -> markPublished. */
async function outboxRoundTrip(store: Store, events: EventEnvelope[]): Promise<number> {
  const start = process.hrtime.bigint()
  for (let i = 0; i < events.length; i += BATCH) await store.events.append(events.slice(i, i + BATCH))
  let published = 0
  while (published < events.length) {
    const claimed = await store.outbox.claim({owner: 'bench', limit: BATCH, leaseMs: 30_000})
    if (claimed.length === 0) break
    await store.outbox.markPublished(claimed.map((e) => e.event_id))
    published += claimed.length
  }
  if (published < events.length) throw new Error(`only ${published} of ${events.length} came out of the outbox`)
  return elapsedMs(start)
}

/** append -> relay -> bus -> consume -> ack. */
async function pipeline(store: Store, bus: Bus, events: EventEnvelope[]): Promise<number> {
  await bus.ensureTopics(catalog.topics())
  const topic = catalog.get('knowledge.question.posted')!.topic
  const group = `bench-pipeline-${Date.now()}`
  const subscription = await bus.subscribe({group, consumer: 'bench-1', topics: [topic], batchSize: 1000, blockMs: 200, startFrom: 'latest'})
  const relay = createOutboxRelay({store, bus, catalog, owner: 'bench-relay', batchSize: BATCH, pollMs: 5})
  const start = process.hrtime.bigint()
  relay.start()
  const appending = (async () => {
    for (let i = 0; i < events.length; i += BATCH) {
      await store.events.append(events.slice(i, i + BATCH))
      relay.kick()
    }
  })()
  const ids = new Set(events.map((e) => e.event_id))
  let acked = 0
  const deadline = Date.now() + 300_000
  while (acked < events.length && Date.now() < deadline) {
    const deliveries = await subscription.next()
    if (deliveries.length === 0) continue
    await subscription.ack(deliveries)
    for (const d of deliveries) if (ids.has(d.headers.event_id ?? '')) acked++
  }
  await appending
  const ms = elapsedMs(start)
  await relay.stop()
  await subscription.close()
  if (acked < events.length) throw new Error(`pipeline: only ${acked} of ${events.length} acked within the bound`)
  return ms
}

function redisBenchmarkXadd(port: number, n: number): number {
  // -P 64: 64 commands per round trip, the pipelining the Redis bus uses for a batch.
  const out = execFileSync('redis-benchmark', ['-p', String(port), '-n', String(n), '-P', '64', '-q', 'XADD', 'bench:baseline', '*', 'v', value], {encoding: 'utf8'})
  const match = /([\d.]+) requests per second/.exec(out)
  if (!match) throw new Error(`cannot read redis-benchmark's output: ${out}`)
  return Math.round(Number(match[1]))
}

const dir = mkdtempSync(path.join(tmpdir(), 'tektree-bench-runtime-'))
let redis: RedisServerHandle | undefined
let mongo: MongoServerHandle | undefined
try {
  // In-process.
  const memoryBus = createMemoryBus()
  record('bus: in-process', N, await busRoundTrip(memoryBus, N))
  const memoryStore = createMemoryStore()
  record('store outbox: in-process', STORE_N, await outboxRoundTrip(memoryStore, envelopes(STORE_N, 'mem')))
  record('pipeline: in-process store + bus', STORE_N, await pipeline(memoryStore, memoryBus, envelopes(STORE_N, 'mem-pipe')))
  await memoryBus.close()
  await memoryStore.close()

  // Redis.
  redis = await startRedisServer({dir: path.join(dir, 'redis')})
  const baseline = redisBenchmarkXadd(redis.port, N)
  rows.push({name: `baseline: redis-benchmark XADD -P 64 (${redis.version})`, messages: N, perSecond: baseline})
  process.stderr.write(`${'baseline: redis-benchmark XADD -P 64'.padEnd(44)} ${String(baseline).padStart(9)} /s\n`)
  const redisBus = await createRedisBus({url: redis.url})
  record('bus: Redis Streams', N, await busRoundTrip(redisBus, N))
  const pipeStore = createMemoryStore()
  record('pipeline: in-process store + Redis bus', STORE_N, await pipeline(pipeStore, redisBus, envelopes(STORE_N, 'redis-pipe')))
  await pipeStore.close()

  // MongoDB wire server.
  let mongoServer = 'skipped (--no-mongo)'
  if (!values['no-mongo']) {
    mongo = await startMongoServer({dir: path.join(dir, 'mongo')})
    mongoServer = mongo.server
    const mongoN = Number(MONGO_N_ARG ?? (mongo.server.startsWith('mongod') ? STORE_N : Math.min(STORE_N, 5000)))
    const mongoStore = await createMongoStore({url: mongo.url, database: `bench_${Date.now()}`})
    record(`store outbox: MongoDB (${mongo.server})`, mongoN, await outboxRoundTrip(mongoStore, envelopes(mongoN, 'mongo')))
    record('pipeline: MongoDB store + Redis bus', mongoN, await pipeline(mongoStore, redisBus, envelopes(mongoN, 'mongo-pipe')))
    await mongoStore.close()
  }
  await redisBus.close()

  const table = new Table({head: ['measure', 'messages', 'per second', 'vs XADD baseline']})
  for (const row of rows) table.push([row.name, row.messages, row.perSecond.toLocaleString('en'), (row.perSecond / baseline).toFixed(2)])
  process.stderr.write(`\n${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, envelope ${value.length} bytes\n${table.toString()}\n`)
  process.stdout.write(JSON.stringify({bench: 'runtime', node: process.version, cpus: cpus().length, envelopeBytes: value.length, redis: redis.version, mongo: mongoServer, baselineXadd: baseline, rows}) + '\n')
} finally {
  await redis?.stop()
  await mongo?.stop()
  rmSync(dir, {recursive: true, force: true})
}
