/**
 * Leaderboards on Redis sorted sets.
 *
 * - `tektree:lb:board:<board>` holds each member with its score NEGATED: Redis orders equal scores by
 *   member ascending, so ascending order over -score is exactly the contract's ranking (score desc,
 *   ties by member asc) and ZRANGE / ZRANK answer top() and rank() in O(log n) with no Lua sorting.
 * - ZINCRBY is not idempotent, so incrementOnce is one Lua script: ZADD NX of `<member>\0<eventId>`
 *   into the board's guard set `tektree:lb:applied:<board>`, and ZINCRBY only when that was new.
 *   Atomic: concurrent redeliveries of one event apply once.
 * - The guard set is bounded by time: its score is when the event was applied (server time) and each
 *   call trims guards older than guardTtlMs (default 7 days, far beyond any redelivery window).
 *   One set per board (not a key per event) keeps drop(board) a single DEL with no SCAN.
 * - `tektree:lb:boards` lists board names for boards().
 */
import type {Redis} from 'ioredis'
import type {LeaderboardEntry, Leaderboards} from '../../core/ports.js'
import {connectRedis, LuaScript, type RedisConnection, type RedisTarget} from './connection.js'

export interface RedisLeaderboardsOptions {
  /** Namespace for every key (tests); default none. */
  prefix?: string
  /** How long an applied event id is remembered (default 7 days). */
  guardTtlMs?: number
  connectTimeoutMs?: number
  onError?: (error: Error) => void
}

const DAY_MS = 24 * 60 * 60 * 1000

const INCREMENT_ONCE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - tonumber(ARGV[4])))
if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[3]) == 0 then
  return false
end
redis.call('SADD', KEYS[3], ARGV[5])
return redis.call('ZINCRBY', KEYS[1], ARGV[2], ARGV[1])
`)

interface PendingIncrement {
  keys: string[]
  args: Array<string | number>
  resolve: (result: unknown) => void
  reject: (error: unknown) => void
}

/** -x without producing -0. */
const unnegate = (stored: string | number): number => 0 - Number(stored)

export class RedisLeaderboards implements Leaderboards {
  readonly kind = 'redis'
  private readonly prefix: string
  private readonly guardTtlMs: number
  private closed = false
  private increments: PendingIncrement[] = []

  constructor(
    private readonly connection: RedisConnection,
    options: RedisLeaderboardsOptions = {},
  ) {
    this.prefix = options.prefix ?? ''
    this.guardTtlMs = options.guardTtlMs ?? 7 * DAY_MS
  }

  private key(name: string): string {
    return this.prefix ? `${this.prefix}:${name}` : name
  }
  private boardKey(board: string): string {
    return this.key(`tektree:lb:board:${board}`)
  }
  private appliedKey(board: string): string {
    return this.key(`tektree:lb:applied:${board}`)
  }
  private get boardsKey(): string {
    return this.key('tektree:lb:boards')
  }

  private get client() {
    if (this.closed) throw new Error('The Redis leaderboards are closed')
    return this.connection.client
  }

  async incrementOnce(board: string, member: string, delta: number, eventId: string): Promise<number | null> {
    if (!Number.isFinite(delta)) throw new Error(`delta must be a finite number, got ${delta}`)
    const client = this.client
    const result = await new Promise<unknown>((resolve, reject) => {
      this.increments.push({
        keys: [this.boardKey(board), this.appliedKey(board), this.boardsKey],
        args: [member, String(0 - delta), `${member}\u0000${eventId}`, this.guardTtlMs, board],
        resolve,
        reject,
      })
      if (this.increments.length === 1) queueMicrotask(() => this.sendIncrements(client))
    })
    return result === null || result === undefined ? null : unnegate(result as string)
  }

  /**
   * The increments asked for in one synchronous stretch (a handler awarding several boards at once)
   * go to Redis as one pipeline: one socket write and one round trip instead of one each.
   */
  private sendIncrements(client: Redis): void {
    const batch = this.increments
    this.increments = []
    INCREMENT_ONCE.runAll(client, batch).forEach((answer, i) => answer.then(batch[i].resolve, batch[i].reject))
  }

  async top(board: string, n: number): Promise<LeaderboardEntry[]> {
    const count = Math.floor(n)
    if (!(count > 0)) return []
    const flat = await this.client.zrange(this.boardKey(board), 0, count - 1, 'WITHSCORES')
    const out: LeaderboardEntry[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({member: flat[i], score: unnegate(flat[i + 1]), rank: i / 2 + 1})
    return out
  }

  async score(board: string, member: string): Promise<number | null> {
    const stored = await this.client.zscore(this.boardKey(board), member)
    return stored === null ? null : unnegate(stored)
  }

  async rank(board: string, member: string): Promise<number | null> {
    const rank = await this.client.zrank(this.boardKey(board), member)
    return rank === null ? null : rank + 1
  }

  async boards(): Promise<string[]> {
    const names = (await this.client.smembers(this.boardsKey)).sort()
    if (names.length === 0) return []
    const pipeline = this.client.pipeline()
    for (const name of names) pipeline.exists(this.boardKey(name))
    const exists = (await pipeline.exec()) ?? []
    return names.filter((_, i) => Number(exists[i]?.[1]) === 1)
  }

  async drop(board: string): Promise<void> {
    const results = await this.client.multi().del(this.boardKey(board), this.appliedKey(board)).srem(this.boardsKey, board).exec()
    for (const [error] of results ?? []) if (error) throw error
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.connection.close()
  }
}

/** `{url}` connects (close() disconnects); `{client}` borrows the caller's client (close() leaves it open). */
export async function createRedisLeaderboards(target: RedisTarget & RedisLeaderboardsOptions, options: RedisLeaderboardsOptions = {}): Promise<RedisLeaderboards> {
  const merged: RedisLeaderboardsOptions = {...target, ...options}
  const connection = await connectRedis(target, {connectTimeoutMs: merged.connectTimeoutMs, connectionName: 'tektree:leaderboards', onError: merged.onError})
  return new RedisLeaderboards(connection, merged)
}
