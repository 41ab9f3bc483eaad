/**
 * A process that closes its Kafka bus after the broker was stopped ends soon after, as
 * `tektree services` must after Ctrl+C once `tektree down` stopped the broker. It stayed alive for
 * minutes: a read under way at close() (the bus-health probe's) went on retrying, 50 attempts of
 * kafkajs's own retries, and kafkajs restarted the crashed consumer on a timer its disconnect()
 * missed, again and again. Its own broker, not the tier's shared one (it is stopped here).
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {startKafkaServer, type KafkaServerHandle} from '../../src/embedded/kafka-server.js'
import {uniqueName, until} from '../contracts/helpers.js'

const unavailable = inject('kafkaUnavailable')
/** kafkajs's retries of what was under way (about 3 s against a closed port) and the close's bounded waits, with room on a busy machine. */
const EXIT_WITHIN_MS = 15_000

describe.skipIf(Boolean(unavailable))(`Kafka bus closed after its broker stopped${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-kafka-close-'))
  let server: KafkaServerHandle | undefined
  afterAll(async () => {
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('the process ends within seconds of close(), with nothing left retrying', async () => {
    server = await startKafkaServer({dir})
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'support', 'kafka-close-child.ts')], {
      cwd: process.cwd(),
      env: {...process.env, CHILD_KAFKA_URL: server.url, CHILD_TOPIC: uniqueName('topic')},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const exited = new Promise<number>((resolve) => child.on('exit', () => resolve(Date.now())))
    try {
      // given a process that consumed from the broker
      await until(() => output.includes('ready\n'), {timeoutMs: 60_000, message: `the child is ready (it said: ${output.slice(-1_000)})`})
      // when the broker stops and the process closes its bus
      await server.stop()
      const closeAt = Date.now()
      child.stdin.end('close\n')
      // then it ends by itself within the bound
      const exitAt = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), EXIT_WITHIN_MS))])
      expect(exitAt, `the process still runs ${EXIT_WITHIN_MS} ms after close was asked; it said:\n${output.slice(-2_000)}`).not.toBeNull()
      expect(output).toMatch(/closed in \d+ ms/)
      expect(child.exitCode).toBe(0)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  }, 90_000)
})
