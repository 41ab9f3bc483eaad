/**
 * `tektree up --bus kafka`, end to end with the built CLI in a throwaway data dir: a single-node
 * broker under <data-dir>/kafka, shown by status; the three choreography demos attach to it and
 * verify finds 0 differences (the leaderboards live in the store), and so does the chaos scenario;
 * topics, tail and trace read it; the DLQ's entries of one group are redriven to that group only and
 * a group is replayed from scratch while the services run in another process, verify 0 again;
 * lag reads Kafka's offsets; a
 * second `up` keeps it, asking for redis-server meanwhile is refused; `down` stops it and leaves no
 * process. Needs Java and the provisioned Kafka jars (the tier's shared broker comes from the same
 * code: when it could not start, neither can this one).
 */
import {spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, describe, expect, inject, it} from 'vitest'
import {isAlive} from '../../src/embedded/discovery.js'

const unavailable = inject('kafkaUnavailable')
const BIN = join(fileURLToPath(import.meta.url), '..', '..', '..', 'bin', 'run.js')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

describe.skipIf(Boolean(unavailable))(`tektree up --bus kafka${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tektree-up-kafka-'))
  const env = () => {
    const clean = {...process.env}
    for (const key of ['TEKTREE_BUS_URL', 'TEKTREE_STORE_URL', 'TEKTREE_REDIS_URL', 'TEKTREE_MONGO_URL']) delete clean[key]
    return {...clean, NO_COLOR: '1', TEKTREE_DATA_DIR: join(dir, 'data'), TEKTREE_MONGO_BIN: join(dir, 'no-mongod')}
  }
  const tektree = (args: string[], timeoutMs = 120_000) =>
    new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], {cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe']})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk) => (stdout += chunk))
      child.stderr.on('data', (chunk) => (stderr += chunk))
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({code, stdout, stderr})
      })
    })
  const ok = async (args: string[]) => {
    const result = await tektree(args)
    expect(result.code, `tektree ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0)
    return result
  }

  afterAll(async () => {
    await tektree(['down', '--grace', '5']).catch(() => undefined)
    rmSync(dir, {recursive: true, force: true})
  })

  it('up, status, the three demos, verify (0 differences), a chaos run (0 differences), lag; up again keeps it; down leaves no process', async () => {
    const up = JSON.parse((await ok(['up', '--bus', 'kafka', '--json'])).stdout) as {started: string[]; discovery: {kafka?: {pid: number; url: string; data_dir: string}}}
    expect(up.started).toContain('kafka')
    const broker = up.discovery.kafka!
    expect(broker.url).toMatch(/^kafka:\/\/127\.0\.0\.1:\d+$/)
    expect(broker.data_dir).toBe(join(dir, 'data', 'kafka'))
    expect(isAlive(broker.pid)).toBe(true)

    const status = JSON.parse((await ok(['status', '--json'])).stdout) as {state: string; bus: {kind: string; state: string; pid: number}}
    expect(status).toMatchObject({state: 'up', bus: {kind: 'kafka', state: 'running', pid: broker.pid}})

    for (const pattern of ['registration', 'engagement', 'achievement']) {
      const demo = await ok(['demo', pattern])
      expect(demo.stderr).toBe('') // attached to the runtime's broker: no per-command server line
    }
    const verify = JSON.parse((await ok(['verify', '--json'])).stdout) as {differences: unknown[]; events: number}
    expect(verify.events).toBeGreaterThan(0)
    expect(verify.differences).toEqual([])

    // The chaos scenario on the broker: poison pills, duplicates, reordering, handler failures and
    // consumer crashes; its assertions (verify 0 differences, retries, a DLQ) make the exit code.
    const chaos = await ok(['simulate', '--scenario', 'chaos', '--report', join(dir, 'chaos.json')])
    const report = JSON.parse(readFileSync(join(dir, 'chaos.json'), 'utf8')) as {runtime: string; verify: {differences: number}; dlq: number}
    expect(report.runtime, chaos.stdout).toMatch(/^bus kafka \(kafka:\/\/127\.0\.0\.1:\d+\)/)
    expect(report.verify.differences).toBe(0)
    expect(report.dlq).toBeGreaterThan(0)

    // The operator's console on Kafka: topics, tail, trace, the DLQ redriven to its own group only,
    // a replay from scratch, with the services running in another process; verify still 0.
    const topics = JSON.parse((await ok(['topics', '--json'])).stdout) as Array<{name: string; partitions: number; groups: string[]}>
    expect(topics.find((t) => t.name === 'tektree.user')).toMatchObject({partitions: expect.any(Number), groups: expect.arrayContaining(['gamification'])})
    expect(topics.map((t) => t.name)).not.toContain('tektree.metrics')
    const tail = (await ok(['tail', '--from', 'beginning', '--limit', '3'])).stdout.trim().split('\n').map((line) => JSON.parse(line) as {event_id: string})
    expect(tail).toHaveLength(3)
    const trace = JSON.parse((await ok(['trace', tail[0].event_id, '--json'])).stdout) as {roots: Array<{event_id: string; hops: Array<{group: string; outcome: string}>}>}
    expect(trace.roots[0].event_id).toBe(tail[0].event_id)
    expect(trace.roots[0].hops.length).toBeGreaterThan(0)
    const failed = {group: 'notification', code: 'SIMULATED_PERMANENT_FAILURE'}
    const dlqOf = async () => JSON.parse((await ok(['dlq', 'list', '--group', failed.group, '--code', failed.code, '--json'])).stdout) as {total: number}
    const dlqTotal = async () => (JSON.parse((await ok(['dlq', 'list', '--json'])).stdout) as {total: number}).total
    const before = await dlqOf()
    expect(before.total).toBeGreaterThan(0)
    const othersBefore = (await dlqTotal()) - before.total
    const services = spawn(process.execPath, [BIN, 'services', '--status-every', '0'], {cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe']})
    let servicesOut = ''
    services.stdout.on('data', (chunk) => (servicesOut += chunk))
    services.stderr.on('data', (chunk) => (servicesOut += chunk))
    const servicesDone = new Promise<number | null>((resolve) => services.on('close', (code) => resolve(code)))
    try {
      // The simulator's permanent failures were its own faults: the services handle them now.
      const redrive = JSON.parse((await ok(['dlq', 'redrive', '--group', failed.group, '--code', failed.code, '--yes', '--json'])).stdout) as {matched: number; sent: number}
      expect(redrive).toMatchObject({matched: before.total, sent: before.total})
      await ok(['replay', '--group', 'search', '--from-scratch', '--yes'])
      const deadline = Date.now() + 90_000
      let caughtUp = false
      while (!caughtUp && Date.now() < deadline) {
        const gate = await tektree(['lag', '--max-lag', '0', '--json'])
        caughtUp = gate.code === 0 && (await dlqOf()).total === 0
        if (!caughtUp) await new Promise((resolve) => setTimeout(resolve, 1_000))
      }
      expect(caughtUp, `the services did not catch up with the redrive and the replay:\n${servicesOut}`).toBe(true)
    } finally {
      services.kill('SIGINT')
      expect(await servicesDone).toBe(0)
    }
    expect(await dlqTotal()).toBe(othersBefore) // only that group's entries left the DLQ
    const after = JSON.parse((await ok(['verify', '--json'])).stdout) as {differences: unknown[]}
    expect(after.differences).toEqual([])

    const lag = await ok(['lag', '--interval', '100ms'])
    expect(lag.stdout).toContain('gamification')
    expect(lag.stdout).toContain('Kafka: LAG + PENDING = kafka-consumer-groups LAG')

    const again = JSON.parse((await ok(['up', '--json'])).stdout) as {state: string; kept: string[]}
    expect(again).toMatchObject({state: 'already-up', kept: ['kafka']})
    const other = await tektree(['up', '--bus', 'redis'])
    expect(other.code).toBe(2)
    expect(other.stderr).toContain('runs the bus (kafka 4.1.2 (KRaft)')

    const down = await ok(['down'])
    expect(down.stdout).toContain(`bus   (pid ${broker.pid}): stopped`)
    expect(isAlive(broker.pid)).toBe(false)
    expect(existsSync(join(dir, 'data', 'runtime.json'))).toBe(false)
    // its data stays for the next `up`
    expect(existsSync(join(dir, 'data', 'kafka', 'data', 'meta.properties'))).toBe(true)
  }, 300_000)
})
