/**
 * What the Kafka bus does differently from Redis Streams (src/adapters/kafka/bus.ts, its header),
 * on the integration tier's broker: commits of contiguous offsets only and redelivery after a
 * consumer process dies (killed with -9), a topic that exists with fewer partitions, an
 * unreachable broker, and `stats()` read from Kafka's own offsets agreeing with Kafka's
 * kafka-consumer-groups tool.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {join} from 'node:path'
import {Kafka, logLevel} from 'kafkajs'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {brokersOf, createKafkaBus, type KafkaBus} from '../../src/adapters/kafka/bus.js'
import {openBusUrl} from '../../src/adapters/drivers.js'
import {findJava, kafkaClasspath} from '../../src/embedded/kafka-server.js'
import {METRICS_TOPIC_SPEC} from '../../src/engine/metrics/beacon.js'
import {consumeUntil, uniqueName, until} from '../contracts/helpers.js'
import {isUserError, type UserError} from '../../src/errors.js'

const kafkaUrl = inject('kafkaUrl')

const message = (topic: string, n: number) => ({topic, key: 'agg-1', value: JSON.stringify({n}), headers: {event_id: `e${n}`}})

describe.skipIf(!kafkaUrl)(`KafkaBus backend (${kafkaUrl ? 'kafka broker' : `skipped: ${inject('kafkaUnavailable')}`})`, () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
  })
  const openBus = async (sessionTimeoutMs = 1_000): Promise<KafkaBus> => {
    const bus = await createKafkaBus({brokers: brokersOf(kafkaUrl!), sessionTimeoutMs})
    cleanups.push(() => bus.close())
    return bus
  }
  const committedOffsets = async (group: string, topic: string): Promise<number[]> => {
    const admin = new Kafka({clientId: 'backend-test', brokers: brokersOf(kafkaUrl!), logLevel: logLevel.NOTHING}).admin()
    await admin.connect()
    try {
      const [offsets] = await admin.fetchOffsets({groupId: group, topics: [topic]})
      return offsets.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset))
    } finally {
      await admin.disconnect()
    }
  }

  it('the dashboard\'s metrics topic is bounded on Kafka too: by age (Kafka has no length setting)', async () => {
    const bus = await openBus()
    await bus.ensureTopics([METRICS_TOPIC_SPEC])
    const info = (await bus.topics()).find((t) => t.name === METRICS_TOPIC_SPEC.name)
    expect(info?.retention?.maxAgeMs).toBe(METRICS_TOPIC_SPEC.retention!.maxAgeMs)
  })

  it('commits contiguous offsets only, and a dead consumer\'s partition is delivered again from there, acked or not', async () => {
    const bus = await openBus()
    const topic = uniqueName('topic')
    const group = uniqueName('g')
    await bus.ensureTopics([{name: topic, partitions: 1}])
    await bus.publish(Array.from({length: 10}, (_, n) => message(topic, n)))

    // given a consumer in another process that took all ten, acked 0, 1, 2 and 4 (not 3), and was killed -9
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join('test', 'support', 'kafka-consumer-child.ts')], {
      cwd: process.cwd(),
      env: {...process.env, CHILD_KAFKA_URL: kafkaUrl!, CHILD_SESSION_MS: '1000', CHILD_GROUP: group, CHILD_CONSUMER: 'doomed', CHILD_TOPIC: topic, CHILD_ACK: '0,1,2,4'},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const report = await until(() => stdout.split('\n').find((line) => line.startsWith('{')), {timeoutMs: 60_000, message: `the child reports (stderr: ${stderr.slice(-500)})`})
    expect(JSON.parse(report)).toEqual({delivered: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], acked: ['0', '1', '2', '4']})
    // the commit stops at the first unacked delivery: 4 is acked, but 3 holds it back
    expect(await committedOffsets(group, topic)).toEqual([3])
    const [before] = await bus.stats({group, topic})
    expect(before.partitions[0]).toMatchObject({lag: 0, pending: 6, owner: 'doomed', acked: 3})
    child.kill('SIGKILL')

    // when another consumer of the group takes the partition over (after the dead one's session)
    const next = await bus.subscribe({group, consumer: 'next', topics: [topic], blockMs: 100, visibilityTimeoutMs: 60_000})
    const got = await consumeUntil(next, (all) => all.length >= 7, {timeoutMs: 30_000})
    // then it gets everything from offset 3 again, 4 included, marked as redeliveries, in order
    expect(got.map((d) => [d.id, d.deliveryCount])).toEqual(['3', '4', '5', '6', '7', '8', '9'].map((id) => [id, 2]))
    expect(await committedOffsets(group, topic)).toEqual([10])
  }, 90_000)

  it('refuses a topic that exists with fewer partitions than the catalog asks, naming both counts', async () => {
    const bus = await openBus()
    const topic = uniqueName('topic')
    await bus.ensureTopics([{name: topic, partitions: 2}])
    const error = await bus.ensureTopics([{name: topic, partitions: 4}]).then(() => null, (e: unknown) => e as Error)
    expect(error?.message).toContain(`Topic "${topic}" exists on the Kafka broker with 2 partitions; tektree expects 4`)
    // a topic made elsewhere with fewer partitions (kafka-topics, another tool) is refused the same way
    const admin = new Kafka({clientId: 'backend-test', brokers: brokersOf(kafkaUrl!), logLevel: logLevel.NOTHING}).admin()
    await admin.connect()
    const other = uniqueName('topic')
    await admin.createTopics({topics: [{topic: other, numPartitions: 1}], waitForLeaders: true})
    await admin.disconnect()
    await expect(bus.ensureTopics([{name: other, partitions: 3}])).rejects.toThrow(/with 1 partition; tektree expects 3/)
  })

  it('an unreachable broker is a UserError naming the URL, its password masked', async () => {
    const url = 'kafka://user:s3cret@127.0.0.1:1'
    const error = await openBusUrl(url, {connectTimeoutMs: 5_000, source: '--bus-url'}).then(() => null, (e: unknown) => e)
    expect(isUserError(error)).toBe(true)
    const e = error as UserError
    expect(e.code).toBe('KAFKA_UNREACHABLE')
    expect(e.exitCode).toBe(2)
    expect(e.message).toContain('Cannot reach Kafka at kafka://user:****@127.0.0.1:1 (--bus-url)')
    expect(e.message).not.toContain('s3cret')
  })

  it('a consumer woken by each batch as it waits leaves no listener behind (no MaxListenersExceededWarning in `tektree services`)', async () => {
    const bus = await openBus()
    const topic = uniqueName('topic')
    await bus.ensureTopics([{name: topic, partitions: 12}])
    const sub = await bus.subscribe({group: uniqueName('g'), consumer: 'woken', topics: [topic], batchSize: 500, blockMs: 100, visibilityTimeoutMs: 60_000})
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`)
    process.on('warning', onWarning)
    cleanups.push(async () => void process.off('warning', onWarning))
    // given a consumer that calls next() again at once (acking apart, as the services' runner does),
    // so that each partition's batch of a fetch wakes a next() waiting for it
    let got = 0
    let stop = false
    const acks: Array<Promise<void>> = []
    const consuming = (async () => {
      while (!stop) {
        const batch = await sub.next()
        got += batch.length
        acks.push(sub.ack(batch))
      }
    })()
    for (let round = 0; round < 3; round++) {
      await bus.publish(Array.from({length: 100}, (_, n) => ({topic, key: `key-${n}`, value: String(n), headers: {event_id: `e${round}-${n}`}})))
    }
    await until(() => got >= 300, {timeoutMs: 30_000, message: `all 300 consumed (got ${got})`})
    stop = true
    await consuming
    await Promise.all(acks)
    // then each wait let go of the subscription's signal when it was woken, not up to 100 ms later
    await new Promise((resolve) => setImmediate(resolve))
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([])
  }, 60_000)

  it('an ack whose commit did not go through (refused in a rebalance, not sent while the consumer restarts) is committed again: the group does not stay behind on a quiet partition', async () => {
    const bus = await openBus()
    const topic = uniqueName('topic')
    const group = uniqueName('g')
    await bus.ensureTopics([{name: topic, partitions: 1}])
    await bus.publish(Array.from({length: 4}, (_, n) => message(topic, n)))
    const sub = await bus.subscribe({group, consumer: 'refused', topics: [topic], batchSize: 10, blockMs: 100, visibilityTimeoutMs: 60_000})
    cleanups.push(() => sub.close())
    const got = await consumeUntil(sub, (all) => all.length >= 4, {ack: false})
    await (sub as unknown as {flushCommits: () => Promise<void>}).flushCommits()
    // given commits that do not go through: refused while the group rebalances (a commit of the
    // old generation) and while the consumer is not initialized again after a broker restart,
    // and one kafkajs resolves without sending (its runner's commitOffsets() while the consumer
    // restarts after a crash). The moments cannot be reproduced with a real broker, so they are
    // made in kafkajs's consumer: what the broker answers, what kafkajs then does.
    const consumer = (sub as unknown as {consumer: {commitOffsets: (offsets: unknown) => Promise<void>}}).consumer
    const commitOffsets = consumer.commitOffsets.bind(consumer)
    const refusals: Array<() => Promise<void>> = [
      async () => {
        throw Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), {type: 'REBALANCE_IN_PROGRESS', retriable: false})
      },
      async () => {
        throw new Error('Consumer group was not initialized, consumer#run must be called first')
      },
      async () => undefined,
    ]
    consumer.commitOffsets = async (offsets) => {
      const refusal = refusals.shift()
      return refusal ? refusal() : commitOffsets(offsets)
    }
    // when the consumer acks everything it took, and nothing more arrives on the partition
    await sub.ack(got.slice(0, 1))
    await sub.ack(got.slice(1, 2))
    await sub.ack(got.slice(2))
    expect(refusals).toEqual([])
    // then what was acked reaches the broker once it accepts commits again (it stayed at 0, for good)
    await until(async () => (await committedOffsets(group, topic))[0] === 4, {timeoutMs: 10_000, message: 'the acked offsets committed'})
    // and, the broker's answer seen, nothing is left to commit again (no commit on every tick)
    await until(() => (sub as unknown as {unconfirmed: Set<string>}).unconfirmed.size === 0, {timeoutMs: 5_000, message: 'no commit left unconfirmed'})
    const [stats] = await bus.stats({group, topic})
    expect(stats.pending).toBe(0)
    expect(stats.lag).toBe(0)
  }, 60_000)

  it('stats() agrees with kafka-consumer-groups --describe: offsets, lag and owners', async () => {
    const bus = await openBus(3_000)
    const topic = uniqueName('topic')
    const group = uniqueName('g')
    await bus.ensureTopics([{name: topic, partitions: 3}])
    const keys = Array.from({length: 12}, (_, i) => `key-${i}`)
    await bus.publish(keys.flatMap((key) => Array.from({length: 5}, (_, n) => ({topic, key, value: String(n), headers: {event_id: `${key}-${n}`}}))))
    const sub = await bus.subscribe({group, consumer: 'lag-consumer', topics: [topic], batchSize: 25, blockMs: 100, visibilityTimeoutMs: 60_000})
    const got = await consumeUntil(sub, (all) => all.length >= 25, {ack: false})
    await sub.ack(got.slice(0, 10))
    const ackedAt = Date.now()
    await bus.publish([{topic, key: 'key-1', value: 'late', headers: {event_id: 'late'}}])
    await until(() => Date.now() > ackedAt + 20)

    const [stats] = await bus.stats({group, topic})
    // Kafka keeps no idle time: it is the time since the consumer's last delivery or ack (commit metadata)
    expect(stats.consumers).toHaveLength(1)
    expect(stats.consumers[0].idleMs).toBeGreaterThan(0)
    const java = findJava()!
    const classpath = await kafkaClasspath({provision: false})
    const output = await new Promise<string>((resolve, reject) =>
      execFile(java, ['-Xmx64m', '-XX:TieredStopAtLevel=1', '-cp', classpath, 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', '--bootstrap-server', brokersOf(kafkaUrl!)[0], '--describe', '--group', group], {timeout: 60_000}, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(String(stdout)),
      ),
    )
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    const rows = output
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols[0] === group && cols[1] === topic)
      .map((cols) => ({partition: Number(cols[2]), current: Number(cols[3]), end: Number(cols[4]), lag: Number(cols[5]), client: cols[8]}))
      .sort((a, b) => a.partition - b.partition)
    expect(rows).toHaveLength(3)
    for (const row of rows) {
      const mine = stats.partitions[row.partition]
      // Kafka's LAG counts what is not committed: tektree's lag (never delivered) plus pending (delivered, unacked)
      expect(mine.lag + mine.pending).toBe(row.lag)
      expect(mine.acked).toBe(row.current)
      expect(mine.owner).toBe(row.client)
    }
    expect(rows.reduce((sum, r) => sum + r.lag, 0)).toBe(61 - 10)
    expect(stats.lag + stats.pending).toBe(51)
    expect(stats.pending).toBe(got.length - 10)
  }, 90_000)
})
