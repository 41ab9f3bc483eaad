/**
 * The Leaderboards contract: every adapter (in-process, Redis sorted sets) runs this suite unchanged.
 *
 * Wiring an adapter:
 *   leaderboardsContract('RedisLeaderboards', async () => {
 *     const leaderboards = await createRedisLeaderboards({url, prefix: uniqueName('t')})
 *     return {leaderboards, cleanup: () => deleteKeys(prefix)}
 *   })
 *
 * The factory is called once per test and must return leaderboards no other test sees (own prefix).
 *
 * Semantics pinned down here (beyond the doc comments of src/core/ports.ts):
 * - incrementOnce is guarded per (board, member, eventId): one event may score on several boards
 *   (weekly and all-time) and for several members (asker and answerer), but never twice for the same
 *   member on the same board; drop(board) forgets the board's guards too (a replay starts clean);
 * - ranking: score descending, ties by member ascending (code-unit order); ranks are 1-based
 *   positions in that order (no shared ranks), and rank() agrees with top();
 * - boards() lists boards that have at least one member.
 */
import {describe, it, expect, beforeEach, afterEach} from 'vitest'
import type {Leaderboards} from '../../src/core/ports.js'
import {uniqueName} from './helpers.js'

export type LeaderboardsFactory = () => Promise<{leaderboards: Leaderboards; cleanup?: () => Promise<void>}>

export function leaderboardsContract(name: string, factory: LeaderboardsFactory): void {
  describe(name, () => {
    let lb: Leaderboards
    let cleanup: (() => Promise<void>) | undefined

    beforeEach(async () => {
      const made = await factory()
      lb = made.leaderboards
      cleanup = made.cleanup
    })

    afterEach(async () => {
      await lb.close().catch(() => undefined)
      await cleanup?.()
    })

    it('has a kind', () => {
      expect(typeof lb.kind).toBe('string')
      expect(lb.kind.length).toBeGreaterThan(0)
    })

    it('incrementOnce returns the new score, and null for an event already applied', async () => {
      const board = uniqueName('board')
      expect(await lb.incrementOnce(board, 'alice', 5, 'e1')).toBe(5)
      expect(await lb.incrementOnce(board, 'alice', 5, 'e1')).toBeNull()
      expect(await lb.incrementOnce(board, 'alice', 2.5, 'e2')).toBe(7.5)
      expect(await lb.incrementOnce(board, 'alice', -3, 'e3')).toBe(4.5)
      expect(await lb.score(board, 'alice')).toBe(4.5)
    })

    it('the guard is per board and member: one event may score on two boards and for two members', async () => {
      const weekly = uniqueName('weekly')
      const allTime = uniqueName('all-time')
      expect(await lb.incrementOnce(weekly, 'alice', 1, 'e1')).toBe(1)
      expect(await lb.incrementOnce(allTime, 'alice', 1, 'e1')).toBe(1)
      expect(await lb.incrementOnce(weekly, 'bob', 2, 'e1')).toBe(2)
      expect(await lb.incrementOnce(weekly, 'bob', 2, 'e1')).toBeNull()
    })

    it('concurrent incrementOnce of one event applies exactly once', async () => {
      const board = uniqueName('board')
      const results = await Promise.all(Array.from({length: 10}, () => lb.incrementOnce(board, 'm', 1, 'same')))
      expect(results.filter((r) => r !== null)).toEqual([1])
      const distinct = await Promise.all(Array.from({length: 10}, (_, i) => lb.incrementOnce(board, 'n', 1, `e${i}`)))
      expect(distinct.every((r) => r !== null)).toBe(true)
      expect(await lb.score(board, 'n')).toBe(10)
    })

    it('top ranks by score desc then member asc; rank agrees; missing members are null', async () => {
      const board = uniqueName('board')
      const scores: Array<[string, number]> = [
        ['carol', 30],
        ['bob', 50],
        ['alice', 50],
        ['dave', 10],
        ['erin', 30],
        ['zed', -5],
      ]
      for (const [member, score] of scores) await lb.incrementOnce(board, member, score, `init-${member}`)
      expect(await lb.top(board, 4)).toEqual([
        {member: 'alice', score: 50, rank: 1},
        {member: 'bob', score: 50, rank: 2},
        {member: 'carol', score: 30, rank: 3},
        {member: 'erin', score: 30, rank: 4},
      ])
      const all = await lb.top(board, 100)
      expect(all.map((e) => e.member)).toEqual(['alice', 'bob', 'carol', 'erin', 'dave', 'zed'])
      for (const entry of all) expect(await lb.rank(board, entry.member)).toBe(entry.rank)
      expect(await lb.score(board, 'zed')).toBe(-5)
      expect(await lb.score(board, 'nobody')).toBeNull()
      expect(await lb.rank(board, 'nobody')).toBeNull()
      expect(await lb.top(uniqueName('empty'), 10)).toEqual([])
      expect(await lb.top(board, 0)).toEqual([])
      // A tie moves when a score changes.
      await lb.incrementOnce(board, 'bob', 1, 'bump')
      expect((await lb.top(board, 2)).map((e) => e.member)).toEqual(['bob', 'alice'])
      expect(await lb.rank(board, 'alice')).toBe(2)
    })

    it('boards lists boards with members; drop removes a board and its guards', async () => {
      const a = uniqueName('board')
      const b = uniqueName('board')
      await lb.incrementOnce(a, 'm', 1, 'e1')
      await lb.incrementOnce(b, 'm', 1, 'e1')
      let boards = await lb.boards()
      expect(boards).toContain(a)
      expect(boards).toContain(b)
      await lb.drop(a)
      boards = await lb.boards()
      expect(boards).not.toContain(a)
      expect(boards).toContain(b)
      expect(await lb.top(a, 10)).toEqual([])
      expect(await lb.score(a, 'm')).toBeNull()
      expect(await lb.incrementOnce(a, 'm', 1, 'e1')).toBe(1)
      await lb.drop(uniqueName('never-existed'))
    })
  })
}
