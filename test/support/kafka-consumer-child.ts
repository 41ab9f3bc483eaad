/**
 * A Kafka consumer in its own process for the Kafka backend tests (run with `node --import tsx`):
 * subscribes, takes one batch, acks the deliveries whose ids CHILD_ACK lists (comma-separated),
 * prints one JSON line, then keeps polling without acking anything more until it is killed.
 */
import {brokersOf, createKafkaBus} from '../../src/adapters/kafka/bus.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

const bus = await createKafkaBus({brokers: brokersOf(env('CHILD_KAFKA_URL')), sessionTimeoutMs: Number(env('CHILD_SESSION_MS'))})
const sub = await bus.subscribe({group: env('CHILD_GROUP'), consumer: env('CHILD_CONSUMER'), topics: [env('CHILD_TOPIC')], batchSize: 100, blockMs: 100, visibilityTimeoutMs: 600_000})
const toAck = new Set(env('CHILD_ACK').split(','))
const deadline = Date.now() + Number(process.env.CHILD_MAX_RUN_MS ?? 120_000)
let reported = false
while (Date.now() < deadline) {
  const batch = await sub.next()
  if (batch.length === 0 || reported) continue
  const acked = batch.filter((d) => toAck.has(d.id))
  await sub.ack(acked)
  process.stdout.write(`${JSON.stringify({delivered: batch.map((d) => d.id), acked: acked.map((d) => d.id)})}\n`)
  reported = true
}
// Only reached when nobody killed it in time.
process.exit(3)
