/**
 * The bare Kafka bus, no handlers, next to Kafka's own producer performance tool on the same broker
 * in the same run (issue 15):
 *
 *   baseline  org.apache.kafka.tools.ProducerPerformance (kafka-tools jar): N records of the
 *             envelope's size, acks=all, as fast as it can, into an 8-partition topic.
 *   publish   KafkaBus.publish in batches of 500 (tektree's partitioning, bounded in-flight sends).
 *   bus       publish -> consume (one group, one consumer) -> ack (commits), concurrently, as
 *             bench/runtime.ts measures the other buses.
 *
 * Starts its own single-node broker (src/embedded/kafka-server.ts) in a temp dir. Prints a table on
 * stderr and one JSON line on stdout.
 *
 *   npm run bench:one -- bench/kafka.ts [--messages 200000]
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {createExampleFactory} from '../src/catalog/example.js'
import {loadCatalog} from '../src/catalog/load.js'
import {brokersOf, createKafkaBus} from '../src/adapters/kafka/bus.js'
import {findJava, kafkaClasspath, startKafkaServer, type KafkaServerHandle} from '../src/embedded/kafka-server.js'
import type {Bus, OutgoingMessage} from '../src/core/ports.js'

const {values} = parseArgs({options: {messages: {type: 'string', default: '200000'}}})
const N = Number(values.messages)
const BATCH = 500
const catalog = await loadCatalog()
const value = JSON.stringify(createExampleFactory(catalog)('knowledge.question.posted', {seed: 1}))

interface Row {
  name: string
  messages: number
  perSecond: number
}
const rows: Row[] = []
const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6
const record = (name: string, messages: number, ms: number): Row => {
  const row = {name, messages, perSecond: Math.round(messages / (ms / 1000))}
  rows.push(row)
  process.stderr.write(`${name.padEnd(44)} ${String(row.perSecond).padStart(9)} /s  (${messages} in ${ms.toFixed(0)} ms)\n`)
  return row
}

function batchOf(topic: string, from: number): OutgoingMessage[] {
  const batch: OutgoingMessage[] = []
  for (let i = from; i < Math.min(N, from + BATCH); i++) batch.push({topic, key: `k${i % 997}`, value, headers: {event_type: 'knowledge.question.posted'}})
  return batch
}

async function publishOnly(bus: Bus): Promise<number> {
  const topic = `bench.publish.${Date.now()}`
  await bus.ensureTopics([{name: topic, partitions: 8}])
  const start = process.hrtime.bigint()
  for (let sent = 0; sent < N; sent += BATCH) await bus.publish(batchOf(topic, sent))
  return elapsedMs(start)
}

async function roundTrip(bus: Bus): Promise<number> {
  const topic = `bench.bus.${Date.now()}`
  await bus.ensureTopics([{name: topic, partitions: 8}])
  const subscription = await bus.subscribe({group: `bench-${Date.now()}`, consumer: 'bench-1', topics: [topic], batchSize: 1000, blockMs: 200})
  const start = process.hrtime.bigint()
  const producing = (async () => {
    for (let sent = 0; sent < N; sent += BATCH) await bus.publish(batchOf(topic, sent))
  })()
  let acked = 0
  const deadline = Date.now() + 300_000
  while (acked < N && Date.now() < deadline) {
    const deliveries = await subscription.next()
    if (deliveries.length === 0) continue
    await subscription.ack(deliveries)
    acked += deliveries.length
  }
  await producing
  const ms = elapsedMs(start)
  await subscription.close()
  if (acked < N) throw new Error(`only ${acked} of ${N} acked within the bound`)
  return ms
}

async function producerPerformance(server: KafkaServerHandle, bus: Bus): Promise<number> {
  const topic = `bench.baseline.${Date.now()}`
  await bus.ensureTopics([{name: topic, partitions: 8}])
  const classpath = await kafkaClasspath({provision: false})
  const args = ['-Xmx256m', '-cp', classpath, 'org.apache.kafka.tools.ProducerPerformance', '--topic', topic, '--num-records', String(N), '--record-size', String(value.length), '--throughput', '-1', '--producer-props', `bootstrap.servers=127.0.0.1:${server.port}`, 'acks=all']
  const out = await new Promise<string>((resolve, reject) =>
    execFile(findJava()!, args, {maxBuffer: 16 * 1024 * 1024, timeout: 600_000}, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(String(stdout)))),
  )
  // The last line: "200000 records sent, 123456.7 records/sec (...), ..."
  const match = /(\d+) records sent, ([\d.]+) records\/sec/.exec(out.trim().split('\n').pop() ?? '')
  if (!match) throw new Error(`cannot read ProducerPerformance's output: ${out.slice(-500)}`)
  return Math.round(Number(match[2]))
}

const dir = mkdtempSync(path.join(tmpdir(), 'tektree-bench-kafka-'))
let server: KafkaServerHandle | undefined
try {
  server = await startKafkaServer({dir})
  const bus = await createKafkaBus({brokers: brokersOf(server.url)})
  const baseline = await producerPerformance(server, bus)
  rows.push({name: `baseline: ProducerPerformance (${server.version})`, messages: N, perSecond: baseline})
  process.stderr.write(`${'baseline: ProducerPerformance'.padEnd(44)} ${String(baseline).padStart(9)} /s\n`)
  record('publish: KafkaBus.publish (batches of 500)', N, await publishOnly(bus))
  record('bus: Kafka (publish -> consume -> commit)', N, await roundTrip(bus))
  await bus.close()

  const table = new Table({head: ['measure', 'messages', 'per second', 'vs ProducerPerformance']})
  for (const row of rows) table.push([row.name, row.messages, row.perSecond.toLocaleString('en'), (row.perSecond / baseline).toFixed(2)])
  process.stderr.write(`\n${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, envelope ${value.length} bytes\n${table.toString()}\n`)
  process.stdout.write(`${JSON.stringify({bench: 'kafka', envelopeBytes: value.length, rows})}\n`)
} finally {
  await server?.stop()
  rmSync(dir, {recursive: true, force: true})
}
