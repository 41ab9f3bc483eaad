/**
 * A process that uses a Kafka bus as `tektree services` does, then closes it after its broker was
 * stopped (run with `node --import tsx`): a subscription that consumed and acked, and the bus-health
 * probe's read (src/ops/bus-health.ts) still under way at close(). It prints "ready" once it has
 * consumed, waits for "close" on stdin (the broker is gone by then), probes, closes the bus, prints
 * "closed", and then ends by itself, as a command does: no process.exit(), so whatever the bus
 * leaves running keeps it alive.
 */
import {createInterface} from 'node:readline'
import {brokersOf, createKafkaBus} from '../../src/adapters/kafka/bus.js'

const url = process.env.CHILD_KAFKA_URL
const topic = process.env.CHILD_TOPIC
if (!url || !topic) throw new Error('CHILD_KAFKA_URL and CHILD_TOPIC are required')

const bus = await createKafkaBus({brokers: brokersOf(url), sessionTimeoutMs: 3_000})
await bus.ensureTopics([{name: topic, partitions: 2}])
const sub = await bus.subscribe({group: `${topic}-g`, consumer: 'closer', topics: [topic], blockMs: 100, visibilityTimeoutMs: 60_000})
await bus.publish([{topic, key: 'k', value: 'v', headers: {event_id: 'e1'}}])
for (let got = 0; got < 1; ) {
  const batch = await sub.next()
  await sub.ack(batch)
  got += batch.length
}
process.stdout.write('ready\n')

const lines = createInterface({input: process.stdin})
for await (const line of lines) if (line.trim() === 'close') break
lines.close()
process.stdin.destroy()

// The probe `tektree services` runs every few seconds: abandoned by it after its own timeout, not by the bus.
void bus.positionAt(topic, 0, 'end').catch(() => undefined)
await new Promise((resolve) => setTimeout(resolve, 500))
const started = Date.now()
await bus.close()
process.stdout.write(`closed in ${Date.now() - started} ms\n`)
