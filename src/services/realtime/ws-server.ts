/**
 * The WebSocket endpoint of the real-time service (seed 001 channels), on the `ws` package:
 *   ws://HOST:PORT/ws/notifications?user_id=U   that user's pushes (all users' without user_id)
 *   ws://HOST:PORT/ws/leaderboard               leaderboard updates
 *   ws://HOST:PORT/ws/presence                  presence
 * Each message is one JSON object: {channel, kind, user_id, event_id, event_type, at, data}.
 */
import type {AddressInfo} from 'node:net'
import {WebSocketServer, WebSocket} from 'ws'
import type {RealtimeSink} from '../types.js'

export const CHANNELS = ['/ws/notifications', '/ws/presence', '/ws/leaderboard'] as const

export interface RealtimeServer {
  sink: RealtimeSink
  port: number
  /** ws://host:port */
  url: string
  clients(): number
  close(): Promise<void>
}

interface Client {
  socket: WebSocket
  channel: string
  user: string | null
}

export async function startRealtimeServer(options: {port?: number; host?: string} = {}): Promise<RealtimeServer> {
  const host = options.host ?? '127.0.0.1'
  const server = new WebSocketServer({host, port: options.port ?? 0})
  const clients = new Set<Client>()
  server.on('connection', (socket, request) => {
    const url = new URL(request.url ?? '/', `http://${host}`)
    if (!(CHANNELS as readonly string[]).includes(url.pathname)) {
      socket.close(4404, `unknown channel ${url.pathname}; use ${CHANNELS.join(', ')}`)
      return
    }
    const client: Client = {socket, channel: url.pathname, user: url.searchParams.get('user_id')}
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
        if (client.user && message.user_id !== client.user) continue
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
    clients: () => clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of clients) client.socket.terminate()
        server.close(() => resolve())
      }),
  }
}
