/**
 * The WebSocket endpoint of the real-time service (seed 001 channels), on the `ws` package:
 *   ws://HOST:PORT/ws/notifications?user_id=U   that user's pushes (user_id is required)
 *   ws://HOST:PORT/ws/leaderboard               leaderboard updates
 *   ws://HOST:PORT/ws/presence                  presence
 * Each message is one JSON object: {channel, kind, user_id, event_id, event_type, at, data}.
 *
 * Every connection shows a token (TEKTREE_WS_TOKEN, or one generated at start and printed once), as
 * `Authorization: Bearer TOKEN`, `?token=TOKEN`, or the subprotocol `tektree.token.TOKEN` (what a
 * browser can send); without it the upgrade is refused with 401. A browser page may connect only from
 * an allowed Origin (default localhost and 127.0.0.1 at any port; clients that send no Origin, such
 * as websocat, are not browsers): others get 403, so a page elsewhere cannot read a user's pushes.
 */
import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'
import type {IncomingMessage} from 'node:http'
import type {AddressInfo} from 'node:net'
import {WebSocketServer, WebSocket} from 'ws'
import type {RealtimeSink} from '../types.js'

export const CHANNELS = ['/ws/notifications', '/ws/presence', '/ws/leaderboard'] as const

/** The subprotocol prefix carrying the token; the server answers with the plain `tektree` protocol. */
export const TOKEN_PROTOCOL_PREFIX = 'tektree.token.'

export interface RealtimeServerOptions {
  port?: number
  host?: string
  /** Default: TEKTREE_WS_TOKEN, else 32 random bytes (base64url), generated here. */
  token?: string
  /**
   * Origins a browser may connect from, exactly as sent ("https://app.example.com"), besides
   * localhost / 127.0.0.1 / [::1] at any port. Default: TEKTREE_WS_ORIGINS (comma-separated).
   */
  allowedOrigins?: readonly string[]
}

export interface RealtimeServer {
  sink: RealtimeSink
  port: number
  /** ws://host:port */
  url: string
  /** What clients must show. */
  token: string
  /** Where the token came from: print a generated one, never one from the environment. */
  tokenSource: 'option' | 'env' | 'generated'
  clients(): number
  close(): Promise<void>
}

interface Client {
  socket: WebSocket
  channel: string
  user: string | null
}

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i

const digest = (text: string) => createHash('sha256').update(text).digest()

/** The token a request shows, by any of the three ways, or null. */
export function requestToken(request: IncomingMessage): string | null {
  const auth = request.headers.authorization
  const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined
  if (bearer) return bearer
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token')
  if (query) return query
  const protocols = String(request.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
  const carried = protocols.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))
  return carried ? carried.slice(TOKEN_PROTOCOL_PREFIX.length) : null
}

export async function startRealtimeServer(options: RealtimeServerOptions = {}): Promise<RealtimeServer> {
  const host = options.host ?? '127.0.0.1'
  const fromEnv = process.env.TEKTREE_WS_TOKEN?.trim()
  const token = options.token ?? (fromEnv || randomBytes(32).toString('base64url'))
  const tokenSource = options.token !== undefined ? 'option' : fromEnv ? 'env' : 'generated'
  // Compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit on a prefix.
  const expected = digest(token)
  const allowed = new Set(
    options.allowedOrigins ??
      (process.env.TEKTREE_WS_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
  )
  const originAllowed = (origin: string | undefined) => origin === undefined || LOCAL_ORIGIN.test(origin) || allowed.has(origin)

  const server = new WebSocketServer({
    host,
    port: options.port ?? 0,
    // Refused before the upgrade, with an HTTP status: nothing is pushed to an unchecked client.
    verifyClient: (info: {origin?: string; req: IncomingMessage}, done: (ok: boolean, code?: number, message?: string) => void) => {
      const shown = requestToken(info.req)
      if (shown === null || !timingSafeEqual(digest(shown), expected)) return done(false, 401, 'a token is required: Authorization: Bearer TOKEN, ?token=TOKEN or the subprotocol tektree.token.TOKEN')
      if (!originAllowed(info.origin ?? (info.req.headers.origin as string | undefined))) return done(false, 403, 'origin not allowed (TEKTREE_WS_ORIGINS)')
      done(true)
    },
    // A browser that sent the token as a subprotocol needs one chosen back; never echo the token.
    handleProtocols: (protocols: Set<string>) => (protocols.has('tektree') || [...protocols].some((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX)) ? 'tektree' : false),
  })
  const clients = new Set<Client>()
  server.on('connection', (socket, request) => {
    const url = new URL(request.url ?? '/', `http://${host}`)
    if (!(CHANNELS as readonly string[]).includes(url.pathname)) {
      socket.close(4404, `unknown channel ${url.pathname}; use ${CHANNELS.join(', ')}`)
      return
    }
    const user = url.searchParams.get('user_id')?.trim() || null
    // A user's notifications go to that user's connections only; one asking for nobody gets nothing.
    if (url.pathname === '/ws/notifications' && user === null) {
      socket.close(4400, 'user_id is required: /ws/notifications?user_id=ID')
      return
    }
    const client: Client = {socket, channel: url.pathname, user}
    clients.add(client)
    socket.on('close', () => clients.delete(client))
    socket.on('error', () => clients.delete(client))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const port = (server.address() as AddressInfo).port
  const sink: RealtimeSink = {
    push(channel, message) {
      let text: string | null = null
      for (const client of clients) {
        if (client.channel !== channel || client.socket.readyState !== WebSocket.OPEN) continue
        if (client.user !== null && message.user_id !== client.user) continue
        // Slow clients are not waited for: a push is best effort, the feed is the record.
        if (client.socket.bufferedAmount > 1_000_000) continue
        text ??= JSON.stringify({channel, ...message})
        client.socket.send(text)
      }
    },
  }
  return {
    sink,
    port,
    url: `ws://${host}:${port}`,
    token,
    tokenSource,
    clients: () => clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of clients) client.socket.terminate()
        server.close(() => resolve())
      }),
  }
}
