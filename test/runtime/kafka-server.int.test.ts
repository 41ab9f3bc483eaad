/**
 * The embedded Kafka broker (src/embedded/kafka-server.ts) on its own, in a throwaway directory:
 * it starts as a single-node KRaft broker a client can use, a restart on the same directory keeps
 * what it had, and stop() leaves no process. The integration tier's shared broker comes from the
 * same code (test/support/kafka-server.ts).
 */
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createServer} from 'node:net'
import {Kafka, logLevel} from 'kafkajs'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {isAlive} from '../../src/embedded/discovery.js'
import {startKafkaServer, type KafkaServerHandle} from '../../src/embedded/kafka-server.js'
import {freePort} from '../../src/embedded/child.js'

const unavailable = inject('kafkaUnavailable')

describe.skipIf(Boolean(unavailable))(`embedded Kafka broker${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-kafka-own-'))
  let server: KafkaServerHandle | undefined

  afterAll(async () => {
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('starts on loopback with the small-footprint settings, keeps its topics over a restart, and stop() leaves no process', async () => {
    server = await startKafkaServer({dir})
    expect(server.url).toMatch(/^kafka:\/\/127\.0\.0\.1:\d+$/)
    const config = readFileSync(join(dir, 'server.properties'), 'utf8')
    for (const line of ['process.roles=broker,controller', 'group.initial.rebalance.delay.ms=0', 'offsets.topic.replication.factor=1', 'transaction.state.log.min.isr=1', 'auto.create.topics.enable=false']) {
      expect(config).toContain(line)
    }
    expect(config).toMatch(/^log\.cleaner\.dedupe\.buffer\.size=\d{1,7}$/m)

    const admin = () => new Kafka({clientId: 'kafka-server-test', brokers: [`127.0.0.1:${server!.port}`], logLevel: logLevel.NOTHING}).admin()
    const first = admin()
    await first.connect()
    await first.createTopics({topics: [{topic: 'kept', numPartitions: 3}], waitForLeaders: true})
    await first.disconnect()

    const pidBefore = server.pid
    await server.restart()
    expect(isAlive(pidBefore)).toBe(false)
    const second = admin()
    await second.connect()
    const [meta] = (await second.fetchTopicMetadata({topics: ['kept']})).topics
    await second.disconnect()
    expect(meta.partitions).toHaveLength(3)

    const pid = server.pid
    await server.stop()
    expect(isAlive(pid)).toBe(false)
  })

  it('a port it chose that someone else binds first (the race CI saw) is chosen again', async () => {
    const taken = createServer()
    await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening))
    const takenPort = (taken.address() as {port: number}).port
    const raceDir = mkdtempSync(join(tmpdir(), 'tektree-kafka-race-'))
    let handed = 0
    let raced: KafkaServerHandle | undefined
    try {
      // The first port handed out is already bound, as when another server took it in between.
      raced = await startKafkaServer({dir: raceDir, choosePort: async () => (handed++ === 0 ? takenPort : freePort())})
      expect(raced.port).not.toBe(takenPort)
      expect(handed).toBeGreaterThan(2)
      const admin = new Kafka({clientId: 'kafka-race-test', brokers: [`127.0.0.1:${raced.port}`], logLevel: logLevel.NOTHING}).admin()
      await admin.connect()
      expect((await admin.describeCluster()).brokers).toHaveLength(1)
      await admin.disconnect()
    } finally {
      await raced?.stop()
      await new Promise((closed) => taken.close(closed))
      rmSync(raceDir, {recursive: true, force: true})
    }
  }, 180_000)
})
