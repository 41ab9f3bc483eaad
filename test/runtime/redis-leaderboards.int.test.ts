/**
 * The Leaderboards contract against RedisLeaderboards, plus what only this backend has: the key
 * layout (negated scores) and the time-bounded guard set.
 */
import {afterEach, describe, expect, inject, it, vi} from 'vitest'
import {Redis} from 'ioredis'
import {leaderboardsContract} from '../contracts/leaderboards.contract.js'
import {uniqueName, until} from '../contracts/helpers.js'
import {createRedisLeaderboards} from '../../src/adapters/redis/leaderboards.js'
import {deleteKeys} from '../../src/adapters/redis/connection.js'

const redisUrl = inject('redisUrl')

async function withAdmin<T>(fn: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = new Redis(redisUrl!, {lazyConnect: true, maxRetriesPerRequest: 1})
  try {
    await admin.connect()
    return await fn(admin)
  } finally {
    admin.disconnect()
  }
}

describe.skipIf(!redisUrl)(`RedisLeaderboards (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  leaderboardsContract('RedisLeaderboards', async () => {
    const prefix = uniqueName('t')
    const leaderboards = await createRedisLeaderboards({url: redisUrl!, prefix})
    return {leaderboards, cleanup: () => withAdmin((admin) => deleteKeys(admin, `${prefix}:*`)).then(() => undefined)}
  })

  describe('backend specifics', () => {
    const prefixes: string[] = []
    afterEach(async () => {
      for (const prefix of prefixes.splice(0)) await withAdmin((admin) => deleteKeys(admin, `${prefix}:*`))
    })

    it('stores negated scores in one sorted set per board, so Redis order is the ranking', async () => {
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const lb = await createRedisLeaderboards({url: redisUrl!, prefix})
      try {
        await lb.incrementOnce('weekly', 'alice', 10, 'e1')
        await lb.incrementOnce('weekly', 'bob', 10, 'e2')
        await lb.incrementOnce('weekly', 'carol', 0, 'e3')
        const raw = await withAdmin((admin) => admin.zrange(`${prefix}:tektree:lb:board:weekly`, 0, -1, 'WITHSCORES'))
        expect(raw).toEqual(['alice', '-10', 'bob', '-10', 'carol', '0'])
        // A zero score reads back as +0, not -0.
        expect(Object.is(await lb.score('weekly', 'carol'), 0)).toBe(true)
      } finally {
        await lb.close()
      }
    })

    it('forgets applied event ids after guardTtlMs (the guard set stays bounded)', async () => {
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const lb = await createRedisLeaderboards({url: redisUrl!, prefix, guardTtlMs: 200})
      const applied = `${prefix}:tektree:lb:applied:b`
      try {
        for (let i = 0; i < 20; i++) await lb.incrementOnce('b', 'm', 1, `old-${i}`)
        expect(await withAdmin((admin) => admin.zcard(applied))).toBe(20)
        expect(await lb.incrementOnce('b', 'm', 1, 'old-0')).toBeNull()
        // Once they are older than the TTL, the next call trims them.
        await until(
          async () => {
            await lb.incrementOnce('b', 'other', 1, uniqueName('fresh'))
            return (await withAdmin((admin) => admin.zcard(applied))) < 20
          },
          {timeoutMs: 10_000, intervalMs: 100, message: 'old guards trimmed'},
        )
        expect(await withAdmin((admin) => admin.zscore(applied, 'm\u0000old-0'))).toBeNull()
      } finally {
        await lb.close()
      }
    })

    it('increments asked for together keep each its own guard and answer, also when the server lost its scripts', async () => {
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const lb = await createRedisLeaderboards({url: redisUrl!, prefix})
      const calls = () => [lb.incrementOnce('a', 'm', 5, 'e1'), lb.incrementOnce('b', 'm', 7, 'e1'), lb.incrementOnce('a', 'm', 5, 'e1'), lb.incrementOnce('a', 'n', 1, 'e2')]
      try {
        await withAdmin((admin) => admin.script('FLUSH'))
        expect(await Promise.all(calls())).toEqual([5, 7, null, 1])
        expect(await Promise.all(calls())).toEqual([null, null, null, null])
        await withAdmin((admin) => admin.script('FLUSH'))
        expect(await Promise.all([lb.incrementOnce('a', 'm', 2, 'e3'), lb.incrementOnce('b', 'm', 3, 'e3')])).toEqual([7, 10])
        expect(await lb.top('a', 2)).toEqual([
          {member: 'm', score: 7, rank: 1},
          {member: 'n', score: 1, rank: 2},
        ])
      } finally {
        await lb.close()
      }
    })

    it('sends the increments of one synchronous stretch as one pipeline, and a lone one as it is', async () => {
      const client = new Redis(redisUrl!)
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      const lb = await createRedisLeaderboards({client, prefix})
      const pipelines = vi.spyOn(client, 'pipeline')
      const direct = vi.spyOn(client, 'evalsha')
      try {
        await Promise.all([lb.incrementOnce('a', 'm', 1, 'e1'), lb.incrementOnce('b', 'm', 1, 'e1'), lb.incrementOnce('c', 'm', 1, 'e1')])
        expect([pipelines.mock.calls.length, direct.mock.calls.length]).toEqual([1, 0])
        await lb.incrementOnce('a', 'm', 1, 'e2')
        expect([pipelines.mock.calls.length, direct.mock.calls.length]).toEqual([1, 1])
      } finally {
        await lb.close()
        client.disconnect()
      }
    })

    it('{client} borrows the caller connection and close() leaves it open', async () => {
      const client = new Redis(redisUrl!)
      const prefix = uniqueName('t')
      prefixes.push(prefix)
      try {
        const lb = await createRedisLeaderboards({client, prefix})
        expect(await lb.incrementOnce('b', 'm', 3, 'e')).toBe(3)
        await lb.close()
        expect(await client.ping()).toBe('PONG')
        await expect(lb.top('b', 1)).rejects.toThrow(/closed/)
      } finally {
        client.disconnect()
      }
    })
  })
})
