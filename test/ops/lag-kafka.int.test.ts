/**
 * `tektree lag` on Kafka (the built CLI, --bus-url kafka://) against Kafka's own
 * kafka-consumer-groups tool (ConsumerGroupCommand, from the provisioned jars) on the same group:
 * per partition, tektree's lag + pending is the tool's LAG, the acked counter its CURRENT-OFFSET
 * and the owner its CLIENT-ID. Needs the integration tier's broker and `npm run build`.
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {brokersOf, createKafkaBus, type KafkaBus} from '../../src/adapters/kafka/bus.js'
import {findJava, kafkaClasspath} from '../../src/embedded/kafka-server.js'
import {consumeUntil, uniqueName} from '../contracts/helpers.js'
import {requireBuild, runCli} from '../cli/run-cli.js'
import type {LagResult} from '../../src/commands/lag.js'

const kafkaUrl = inject('kafkaUrl')

describe.skipIf(!kafkaUrl)(`tektree lag on Kafka (${kafkaUrl ? 'kafka broker' : `skipped: ${inject('kafkaUnavailable')}`})`, () => {
  let bus: KafkaBus | undefined
  // The CLI opens a store too: a throwaway data dir, not the repository's .tektree/.
  const dataDir = mkdtempSync(join(tmpdir(), 'tektree-lag-kafka-'))
  const env = {TEKTREE_DATA_DIR: dataDir}
  afterAll(async () => {
    await bus?.close()
    rmSync(dataDir, {recursive: true, force: true})
  })

  it('agrees with kafka-consumer-groups --describe, partition by partition', async () => {
    requireBuild()
    bus = await createKafkaBus({brokers: brokersOf(kafkaUrl!)})
    const topic = uniqueName('topic')
    const group = uniqueName('g')
    await bus.ensureTopics([{name: topic, partitions: 3}])
    const keys = Array.from({length: 9}, (_, i) => `key-${i}`)
    await bus.publish(keys.flatMap((key) => Array.from({length: 4}, (_, n) => ({topic, key, value: String(n), headers: {event_id: `${key}-${n}`}}))))
    const sub = await bus.subscribe({group, consumer: 'lag-cli', topics: [topic], batchSize: 20, blockMs: 100, visibilityTimeoutMs: 60_000})
    const got = await consumeUntil(sub, (all) => all.length >= 20, {ack: false})
    await sub.ack(got.slice(0, 8))
    await bus.publish([{topic, key: 'key-2', value: 'late', headers: {event_id: 'late'}}])

    const cli = await runCli(['lag', group, '--partitions', '--json', '--interval', '100ms', '--bus-url', kafkaUrl!], {env})
    expect(cli.code, cli.stderr).toBe(0)
    const result = JSON.parse(cli.stdout) as LagResult
    const text = await runCli(['lag', group, '--interval', '100ms', '--bus-url', kafkaUrl!], {env})
    expect(text.stdout).toContain('Kafka: LAG + PENDING = kafka-consumer-groups LAG')

    const classpath = await kafkaClasspath({provision: false})
    const tool = await new Promise<string>((resolve, reject) =>
      execFile(
        findJava()!,
        ['-Xmx64m', '-XX:TieredStopAtLevel=1', '-cp', classpath, 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', '--bootstrap-server', brokersOf(kafkaUrl!)[0], '--describe', '--group', group],
        {timeout: 60_000},
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(String(stdout))),
      ),
    )
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    const rows = tool
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((cols) => cols[0] === group && cols[1] === topic)
      .map((cols) => ({partition: Number(cols[2]), lag: Number(cols[5]), client: cols[8]}))
      .sort((a, b) => a.partition - b.partition)
    expect(rows).toHaveLength(3)
    const partitionRows = result.rows.filter((r) => r.partition !== null).sort((a, b) => a.partition! - b.partition!)
    expect(partitionRows.map((r) => ({partition: r.partition, lag: r.lag + r.pending, client: r.consumers[0]}))).toEqual(rows)
    const total = result.rows.find((r) => r.partition === null)!
    expect(total.lag + total.pending).toBe(37 - 8)
    await sub.close()
  }, 90_000)
})
