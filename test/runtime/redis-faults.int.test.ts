/**
 * Redis-only fault tests. They live outside the Bus contract because the faults themselves are
 * backend mechanics the in-process bus cannot have: an unreachable server, a server that goes away
 * and comes back (its own redis-server with AOF, stopped and restarted mid-run), and a consumer
 * PROCESS killed with SIGKILL while it holds unacked deliveries.
 *
 * They need the redis-server binary (the same reason the tier's server needs it), so they are skipped
 * with the tier's reason when it is missing.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Redis} from 'ioredis'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {deleteTestKeys} from '../support/redis-server.js'
import {uniqueName, until} from '../contracts/helpers.js'
import {freePort} from '../../src/embedded/child.js'
import {startRedisServer, type RedisServerHandle} from '../../src/embedded/redis-server.js'
import {createRedisBus, type RedisBus} from '../../src/adapters/redis/bus.js'
import {createRedisLeaderboards} from '../../src/adapters/redis/leaderboards.js'
import {UserError} from '../../src/errors.js'
import type {Delivery, OutgoingMessage} from '../../src/core/ports.js'

const redisUrl = inject('redisUrl')
const reason = redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

function message(topic: string, n: number): OutgoingMessage {
  const key = `agg-${n % 17}`
  return {topic, key, value: JSON.stringify({n}), headers: {event_type: 'test.fault.sent', event_id: `ev-${n}`, published_at: String(Date.now())}}
}

const eventId = (d: Delivery) => d.headers.event_id
/** Stream entry ids are unique within a partition only (like Kafka offsets). */
const where = (d: {partition: number; id: string}) => `${d.partition}/${d.id}`

describe('Redis unreachable (no server needed)', () => {
  it('createRedisBus rejects with a UserError naming the URL with the password masked', async () => {
    const port = await freePort() // nothing listens there
    const url = `redis://tektree:s3cret-pw@127.0.0.1:${port}/0`
    const error = await createRedisBus({url}).then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(UserError)
    const userError = error as UserError
    expect(userError.code).toBe('REDIS_UNREACHABLE')
    expect(userError.exitCode).toBe(2)
    expect(userError.message).toContain(`redis://tektree:****@127.0.0.1:${port}`)
    expect(userError.message).not.toContain('s3cret-pw')
    expect(JSON.stringify(userError.toContract())).not.toContain('s3cret-pw')
    expect(userError.hint).toMatch(/redis-server/)
  })

  it('createRedisLeaderboards rejects the same way', async () => {
    const port = await freePort()
    await expect(createRedisLeaderboards({url: `redis://:pw-123@127.0.0.1:${port}`})).rejects.toThrow(`Cannot reach Redis at redis://:****@127.0.0.1:${port}`)
  })
})

describe.skipIf(!redisUrl)(`Redis faults (${reason})`, () => {
  it('a server stopped and restarted mid-run: everything published is delivered and acked, nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-redis-fault-'))
    const server: RedisServerHandle = await startRedisServer({dir, appendonly: true})
    cleanups.push(async () => {
      await server.stop()
      rmSync(dir, {recursive: true, force: true})
    })
    const bus: RedisBus = await createRedisBus({url: server.url, sessionTimeoutMs: 1_000})
    cleanups.push(() => bus.close())
    const topic = uniqueName('tektree.fault')
    await bus.ensureTopics([{name: topic, partitions: 4}])
    const group = uniqueName('g')
    const sub = await bus.subscribe({group, consumer: 'survivor', topics: [topic], batchSize: 25, blockMs: 100, visibilityTimeoutMs: 2_000})

    const total = 600
    const batch = 20
    const published = new Set<string>()
    const firstSeen = new Set<string>()
    let duplicates = 0
    let publishFailures = 0
    let consumeErrors = 0
    let restarted = false
    const deadline = Date.now() + 90_000

    const produce = async () => {
      for (let next = 0; next < total && Date.now() < deadline; ) {
        const messages = Array.from({length: batch}, (_, i) => message(topic, next + i))
        try {
          await bus.publish(messages)
          for (const m of messages) published.add(m.headers.event_id)
          next += batch
        } catch {
          // The batch may be partly written: publish all of it again (the consumer dedupes).
          publishFailures++
          await new Promise((r) => setTimeout(r, 100))
        }
        await new Promise((r) => setTimeout(r, 5))
      }
    }

    const consume = async () => {
      while (Date.now() < deadline && (published.size < total || firstSeen.size < total)) {
        try {
          const got = await sub.next()
          for (const d of got) {
            if (firstSeen.has(eventId(d))) duplicates++
            else firstSeen.add(eventId(d))
          }
          if (got.length > 0) await sub.ack(got)
        } catch {
          // An ack cut by the restart: those deliveries come back after the visibility timeout.
          consumeErrors++
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    }

    const restartMidRun = async () => {
      await until(() => published.size >= total / 3 && firstSeen.size > 0, {timeoutMs: 60_000, message: 'a third published'})
      await server.restart()
      restarted = true
    }

    await Promise.all([produce(), consume(), restartMidRun()])
    expect(restarted).toBe(true)
    expect(published.size).toBe(total)
    // Every event id was delivered (dedupe: counted once however many times it came).
    expect(firstSeen.size).toBe(total)
    expect([...published].every((id) => firstSeen.has(id))).toBe(true)
    // And acked: nothing pending, nothing left to deliver.
    await until(
      async () => {
        const got = await sub.next()
        for (const d of got) duplicates += firstSeen.has(eventId(d)) ? 1 : 0
        if (got.length > 0) await sub.ack(got)
        const [stats] = await bus.stats({group, topic})
        return stats.pending === 0 && stats.lag === 0
      },
      {timeoutMs: 30_000, message: 'everything acked after the restart'},
    )
    const retained = (await bus.topics()).find((t) => t.name === topic)!
    // Retried batches may have been written twice; never fewer entries than events.
    expect(retained.length).toBeGreaterThanOrEqual(total)
    console.info(`[redis-faults] restart mid-run: ${total} events, ${duplicates} duplicate deliveries, ${publishFailures} publish retries, ${consumeErrors} consumer errors, ${retained.length} stream entries`)
  }, 150_000)

  it('the blocking connection killed server-side while next() waits: reads resume on a new connection', async () => {
    const prefix = uniqueName('t')
    const admin = new Redis(redisUrl!, {lazyConnect: true, maxRetriesPerRequest: 1})
    await admin.connect()
    cleanups.push(async () => {
      admin.disconnect()
      await deleteTestKeys(redisUrl!, prefix)
    })
    const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
    cleanups.push(() => bus.close())
    await bus.ensureTopics([{name: 'topic', partitions: 2}])
    const group = uniqueName('g')
    const sub = await bus.subscribe({group, consumer: 'blocked', topics: ['topic'], blockMs: 5_000})
    const waiting = sub.next()
    const name = `name=tektree:${group}:blocked`
    const line = await until(async () => ((await admin.client('LIST')) as string).split('\n').find((l) => l.includes(name) && l.includes('cmd=xreadgroup')), {
      message: 'the subscription blocks in XREADGROUP',
    })
    const id = /(?:^|\s)id=(\d+)/.exec(line)![1]
    expect(await admin.client('KILL', 'ID', id)).toBe(1)
    await bus.publish([{topic: 'topic', key: 'k', value: 'after-kill', headers: {event_id: 'e1'}}])
    // The next() that was blocked settles (with the message or empty), and reading goes on.
    const got = [...(await waiting)]
    await until(
      async () => {
        if (!got.some((d) => d.value === 'after-kill')) got.push(...(await sub.next()))
        return got.some((d) => d.value === 'after-kill')
      },
      {timeoutMs: 30_000, message: 'the message published after the kill arrives'},
    )
    expect(got.filter((d) => d.value === 'after-kill')).toHaveLength(1)
  }, 60_000)

  it('a consumer process killed with SIGKILL mid-batch: another consumer takes its partitions and gets its deliveries again', async () => {
    const prefix = uniqueName('t')
    cleanups.push(async () => {
      await deleteTestKeys(redisUrl!, prefix)
    })
    const sessionMs = 1_000
    const visibilityMs = 500
    const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: sessionMs})
    cleanups.push(() => bus.close())
    const topic = uniqueName('tektree.crash')
    const partitions = 4
    await bus.ensureTopics([{name: topic, partitions}])
    const group = uniqueName('g')
    const total = 60
    await bus.publish(Array.from({length: total}, (_, n) => message(topic, n)))

    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join('test', 'support', 'redis-consumer-child.ts')], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        CHILD_REDIS_URL: redisUrl!,
        CHILD_PREFIX: prefix,
        CHILD_TOPIC: topic,
        CHILD_GROUP: group,
        CHILD_CONSUMER: 'doomed',
        CHILD_SESSION_MS: String(sessionMs),
        CHILD_VISIBILITY_MS: String(visibilityMs),
        CHILD_BATCH_SIZE: '10',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const childLines = () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as {assignment: Array<{topic: string; partition: number}>; deliveries: Array<{id: string; partition: number; deliveryCount: number}>})

    // The child owns every partition and takes a batch it will never ack.
    await until(() => childLines().some((l) => l.deliveries.length > 0), {timeoutMs: 60_000, message: `the child takes a batch (stderr: ${stderr.slice(-500)})`})
    expect(child.exitCode).toBeNull()

    // A second consumer joins while the child lives: it only gets the partitions the child gives up.
    const sub = await bus.subscribe({group, consumer: 'heir', topics: [topic], batchSize: 20, blockMs: 100, visibilityTimeoutMs: visibilityMs})
    // Everything the heir receives, before and after the kill (the child never acks, so it all ends here).
    const received = new Map<string, Delivery>()
    const take = async () => {
      const got = await sub.next()
      for (const d of got) received.set(where(d), d)
      if (got.length > 0) await sub.ack(got)
    }
    await until(
      async () => {
        await take()
        return sub.assignment().length > 0 && sub.assignment().length < partitions
      },
      {timeoutMs: 20_000, message: 'the heir shares the partitions with the live child'},
    )

    child.kill('SIGKILL')
    await until(() => child.signalCode === 'SIGKILL', {timeoutMs: 10_000, message: 'the child is dead'})
    const takenByChild = new Map<string, number>()
    for (const line of childLines()) for (const d of line.deliveries) takenByChild.set(where(d), d.deliveryCount)
    expect(takenByChild.size).toBeGreaterThan(0)

    const progress = () =>
      `assignment ${sub.assignment().length}/${partitions}, child deliveries not seen again ${[...takenByChild.keys()].filter((id) => !received.has(id)).length}/${takenByChild.size}, event ids ${new Set([...received.values()].map(eventId)).size}/${total}`
    await until(
      async () => {
        await take()
        return sub.assignment().length === partitions && [...takenByChild.keys()].every((id) => received.has(id)) && new Set([...received.values()].map(eventId)).size === total
      },
      {timeoutMs: 30_000, message: 'the heir takes every partition and the dead child’s deliveries'},
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${progress()}; stats ${JSON.stringify(await bus.stats({group}))}; child lines ${childLines().length}`)
    })
    expect(sub.assignment()).toHaveLength(partitions)
    for (const [id, childCount] of takenByChild) {
      const again = received.get(id)!
      expect(again.deliveryCount).toBeGreaterThanOrEqual(2)
      expect(again.deliveryCount).toBeGreaterThan(childCount)
    }
    await until(async () => (await bus.stats({group, topic}))[0]?.pending === 0, {timeoutMs: 20_000, message: 'nothing pending'})
    const [stats] = await bus.stats({group, topic})
    expect(stats.lag).toBe(0)
  }, 120_000)
})

