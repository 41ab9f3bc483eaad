/**
 * Connections shared by the Redis adapters (ioredis 5).
 *
 * - The initial connect is bounded (default 5 s) and never retried: an unreachable URL is a
 *   UserError naming the URL with its password masked. After the first successful connect, a lost
 *   connection reconnects with capped exponential backoff.
 * - Commands in flight when the connection drops are resent after the reconnect (ioredis default).
 *   Turning that off is worse: ioredis 5 then drops them WITHOUT settling their promises. A pipeline
 *   cut by a reconnect can pair replies with the wrong commands (ioredis#800), so the bus rejects any
 *   publish batch that spanned a lost connection; callers retry and consumers dedupe by event_id.
 * - Blocking reads get their own connection (a duplicate), so a BLOCK never stalls other commands.
 */
import {createHash} from 'node:crypto'
import {Redis, type RedisOptions} from 'ioredis'
import {maskUrl, maskUrlsIn, UserError} from '../../errors.js'

export type RedisTarget = {url: string} | {client: Redis}

export interface RedisConnectOptions {
  /** Bound on the initial connect + PING (default 5000 ms). */
  connectTimeoutMs?: number
  /** CLIENT SETNAME, visible in CLIENT LIST. */
  connectionName?: string
  /** Connection errors (reconnects): default ignored, the awaited calls report what matters. */
  onError?: (error: Error) => void
}

export interface RedisConnection {
  readonly client: Redis
  /** The masked URL (or "provided client"), for messages. */
  readonly label: string
  /** A new connection with the same server and options, for blocking reads; owned by the caller. */
  duplicate(name: string): Redis
  /** Closes the client only when this module created it. */
  close(): Promise<void>
}

const backoff = (times: number): number => Math.min(100 * 2 ** Math.min(times, 5), 2_000)

const BASE_OPTIONS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: true,
  // Commands issued while reconnecting wait for the new connection for a few attempts (~15 s).
  maxRetriesPerRequest: 10,
  enableReadyCheck: true,
}

export function unreachableRedis(label: string, error: unknown): UserError {
  const reason = error instanceof Error ? error.message : String(error)
  return new UserError(`Cannot reach Redis at ${label}: ${reason}`, {
    code: 'REDIS_UNREACHABLE',
    hint: 'Check that redis-server runs and is reachable from here (host, port, password, bind address), or use the embedded runtime (`tektree up`).',
    exitCode: 2,
    details: {url: label},
    cause: error,
  })
}

/** What Redis answers a missing or wrong password with (requirepass, ACL users, older servers). */
const AUTH_REFUSED = /WRONGPASS|NOAUTH|invalid password|invalid username-password|ERR AUTH|AUTH failed/i

export function isRedisAuthError(error: unknown): boolean {
  return AUTH_REFUSED.test(error instanceof Error ? error.message : String(error))
}

export function redisAuthFailed(label: string, error: unknown): UserError {
  return new UserError(`Authentication failed for ${label}: check the password in the URL`, {
    code: 'REDIS_AUTH_FAILED',
    hint: 'Give the password as redis://:PASSWORD@HOST:PORT (or redis://USER:PASSWORD@HOST:PORT for an ACL user); the server refused the one given, or needs one.',
    exitCode: 2,
    details: {url: label, reason: maskUrlsIn(error instanceof Error ? error.message : String(error))},
    cause: error,
  })
}

export async function connectRedis(target: RedisTarget, options: RedisConnectOptions = {}): Promise<RedisConnection> {
  const onError = options.onError ?? (() => undefined)
  const duplicateOf = (base: Redis, name: string): Redis => {
    const made = base.duplicate({
      lazyConnect: false,
      enableOfflineQueue: true,
      // A blocking read waits for the reconnect; the caller's watchdog bounds it.
      maxRetriesPerRequest: null,
      connectionName: name,
      retryStrategy: backoff,
    })
    made.on('error', onError)
    return made
  }

  if ('client' in target) {
    const client = target.client
    return {
      client,
      label: 'the provided Redis client',
      duplicate: (name) => duplicateOf(client, name),
      close: async () => undefined,
    }
  }

  const label = maskUrl(target.url)
  const timeoutMs = options.connectTimeoutMs ?? 5_000
  // Before the first successful connect there is nothing to resume: fail fast instead of retrying.
  let everReady = false
  const client = new Redis(target.url, {
    ...BASE_OPTIONS,
    connectTimeout: timeoutMs,
    connectionName: options.connectionName,
    retryStrategy: (times) => (everReady ? backoff(times) : null),
  })
  client.once('ready', () => {
    everReady = true
  })
  client.on('error', onError)
  // ioredis rejects connect() with only "Connection is closed." when the server refuses the password;
  // the reason comes as an 'error' event, kept here to say so.
  let refused: Error | undefined
  let last: Error | undefined
  const onConnectError = (error: Error) => {
    if (isRedisAuthError(error)) refused ??= error
    last = error
  }
  client.on('error', onConnectError)
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      (async () => {
        await client.connect()
        await client.ping()
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (error) {
    client.disconnect()
    if (refused || isRedisAuthError(error)) throw redisAuthFailed(label, refused ?? error)
    // "Connection is closed." says nothing; the socket's own error (ECONNREFUSED...) does.
    const reason = error instanceof Error && /Connection is closed/i.test(error.message) && last ? last : error
    const masked = reason instanceof Error ? new Error(maskUrlsIn(reason.message.replaceAll(target.url, label))) : reason
    throw unreachableRedis(label, masked)
  } finally {
    clearTimeout(timer)
    client.off('error', onConnectError)
  }
  const owned = client
  return {
    client: owned,
    label,
    duplicate: (name) => duplicateOf(owned, name),
    close: async () => {
      if (owned.status === 'end') return
      // QUIT, bounded: an unreachable server must not hold close() up. The timer is cleared, or
      // it alone would keep the process alive for its 2 s after everything else closed.
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([owned.quit(), new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))])
      } catch {
        // already closed or unreachable: disconnect below ends it either way
      } finally {
        clearTimeout(timer)
      }
      owned.disconnect()
    },
  }
}

/** Errors that mean "the connection is down or was cut": retry later, never a bug. */
export function isConnectionError(error: unknown): boolean {
  const text = error instanceof Error ? `${error.name} ${error.message}` : String(error)
  return /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|MaxRetriesPerRequest|Stream isn't writeable|LOADING|connect ENO|socket hang up|Command timed out/i.test(text)
}

/** A Lua script run by EVALSHA, falling back to EVAL when the server lost its script cache (restart). */
export class LuaScript {
  readonly sha: string
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  async run(client: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!isNoScript(error)) throw error
      return client.eval(this.source, keys.length, ...keys, ...args)
    }
  }

  /**
   * Several calls as one pipeline (one socket write, one round trip); one answer per call, in
   * order. A call the server answers NOSCRIPT (it lost its scripts) is run again on its own.
   */
  runAll(client: Redis, calls: ReadonlyArray<{keys: readonly string[]; args: ReadonlyArray<string | number>}>): Array<Promise<unknown>> {
    if (calls.length === 1) return [this.run(client, calls[0].keys, calls[0].args)]
    const pipeline = client.pipeline()
    for (const {keys, args} of calls) pipeline.evalsha(this.sha, keys.length, ...keys, ...args)
    const replies = pipeline.exec()
    return calls.map(async ({keys, args}, i) => {
      const [error, value] = (await replies)?.[i] ?? [new Error('Redis returned no reply for a script call'), null]
      if (isNoScript(error)) return this.run(client, keys, args)
      if (error) throw error
      return value
    })
  }
}

const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith('NOSCRIPT')

/** Deletes every key matching `pattern` (SCAN + UNLINK, bounded batches). Tests and `drop`. */
export async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  let cursor = '0'
  let removed = 0
  for (let i = 0; i < 100_000; i++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    if (keys.length > 0) removed += await client.unlink(...keys)
    cursor = next
    if (cursor === '0') break
  }
  return removed
}
