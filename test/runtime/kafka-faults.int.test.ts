/**
 * A Kafka broker killed (-9) and restarted on its ports and directory while a producer and a
 * consumer group run: both recover by themselves and the group gets every message published,
 * before, during and after the outage (publishes refused while it is down are retried, as the
 * outbox relay retries them). Its own broker in a throwaway directory, not the tier's shared one.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {brokersOf, createKafkaBus, type KafkaBus} from '../../src/adapters/kafka/bus.js'
import {startKafkaServer, type KafkaServerHandle} from '../../src/embedded/kafka-server.js'
import {uniqueName, until} from '../contracts/helpers.js'
import type {Delivery} from '../../src/core/ports.js'

const unavailable = inject('kafkaUnavailable')

describe.skipIf(Boolean(unavailable))(`Kafka broker restart${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-kafka-fault-'))
  let server: KafkaServerHandle | undefined
  let bus: KafkaBus | undefined
  afterAll(async () => {
    await bus?.close()
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('producer and consumer recover from a broker killed -9 and restarted; nothing is lost', async () => {
    server = await startKafkaServer({dir})
    bus = await createKafkaBus({brokers: brokersOf(server.url), sessionTimeoutMs: 3_000})
    const topic = uniqueName('topic')
    await bus.ensureTopics([{name: topic, partitions: 3}])
    const sub = await bus.subscribe({group: uniqueName('g'), consumer: 'survivor', topics: [topic], batchSize: 50, blockMs: 100, visibilityTimeoutMs: 60_000})
    const got = new Map<string, Delivery>()
    let stop = false
    const consuming = (async () => {
      while (!stop) {
        const batch = await sub.next().catch(() => [] as Delivery[])
        for (const d of batch) got.set(d.headers.event_id, d)
        await sub.ack(batch).catch(() => undefined)
      }
    })()
    const publish = async (n: number) => {
      const message = {topic, key: `agg-${n % 7}`, value: String(n), headers: {event_id: `e${n}`}}
      // As the relay does: a bus that is down is retried, never charged to the event.
      await until(async () => (await bus!.publish([message]).then(() => true, () => false)), {timeoutMs: 60_000, intervalMs: 200, message: `publish e${n}`})
    }
    try {
      for (let n = 0; n < 20; n++) await publish(n)
      await until(() => got.size >= 20, {timeoutMs: 30_000, message: 'the first 20 consumed'})
      await server.kill9()
      const during = (async () => {
        for (let n = 20; n < 30; n++) await publish(n)
      })()
      await server.restart()
      await during
      for (let n = 30; n < 40; n++) await publish(n)
      await until(() => got.size >= 40, {timeoutMs: 60_000, message: `all 40 consumed after the restart (got ${got.size})`})
      expect([...got.keys()].sort()).toEqual(Array.from({length: 40}, (_, n) => `e${n}`).sort())
    } finally {
      stop = true
      await consuming
    }
  }, 120_000)
})
