/**
 * A consumer in its own process for the fault tests (run with `node --import tsx`): subscribes, takes
 * deliveries and NEVER acks them, printing one JSON line per batch on stdout, until it is killed.
 * Configuration comes from the environment (see the reads below); every loop is bounded in time.
 */
import {createRedisBus} from '../../src/adapters/redis/bus.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

const bus = await createRedisBus({url: env('CHILD_REDIS_URL'), prefix: env('CHILD_PREFIX'), sessionTimeoutMs: Number(env('CHILD_SESSION_MS'))})
const sub = await bus.subscribe({
  group: env('CHILD_GROUP'),
  consumer: env('CHILD_CONSUMER'),
  topics: [env('CHILD_TOPIC')],
  batchSize: Number(process.env.CHILD_BATCH_SIZE ?? 10),
  blockMs: 100,
  visibilityTimeoutMs: Number(env('CHILD_VISIBILITY_MS')),
})
const deadline = Date.now() + Number(process.env.CHILD_MAX_RUN_MS ?? 120_000)
while (Date.now() < deadline) {
  const batch = await sub.next()
  const line = {
    assignment: sub.assignment(),
    deliveries: batch.map((d) => ({id: d.id, topic: d.topic, partition: d.partition, key: d.key, deliveryCount: d.deliveryCount})),
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
}
// Only reached when nobody killed it in time: leave without acking anything.
process.exit(3)
