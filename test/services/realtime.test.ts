/** The real-time service's WebSocket endpoint, with a real ws client on a free port. */
import {afterEach, describe, expect, it} from 'vitest'
import {WebSocket} from 'ws'
import {startRealtimeServer, type RealtimeServer} from '../../src/services/realtime/ws-server.js'

const servers: RealtimeServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

function connect(url: string): Promise<{socket: WebSocket; messages: Array<Record<string, unknown>>}> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    const messages: Array<Record<string, unknown>> = []
    socket.on('message', (data) => messages.push(JSON.parse(String(data))))
    socket.once('open', () => resolve({socket, messages}))
    socket.once('error', reject)
  })
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe('realtime WebSocket endpoint', () => {
  it("streams a user's pushes to that user's /ws/notifications, and leaderboards to everyone", async () => {
    const server = await startRealtimeServer({port: 0})
    servers.push(server)
    const ada = await connect(`${server.url}/ws/notifications?user_id=ada`)
    const board = await connect(`${server.url}/ws/leaderboard`)
    await until(() => server.clients() === 2)
    server.sink.push('/ws/notifications', {kind: 'xp_earned', user_id: 'bob', event_id: 'e1'})
    server.sink.push('/ws/notifications', {kind: 'xp_earned', user_id: 'ada', event_id: 'e2'})
    server.sink.push('/ws/leaderboard', {kind: 'leaderboard', user_id: null, event_id: 'e3'})
    await until(() => ada.messages.length === 1 && board.messages.length === 1)
    expect(ada.messages).toEqual([{channel: '/ws/notifications', kind: 'xp_earned', user_id: 'ada', event_id: 'e2'}])
    expect(board.messages.map((m) => m.event_id)).toEqual(['e3'])
    ada.socket.close()
    board.socket.close()
  })

  it('closes a connection to an unknown channel with a reason', async () => {
    const server = await startRealtimeServer({port: 0})
    servers.push(server)
    const closed = await new Promise<{code: number; reason: string}>((resolve) => {
      const socket = new WebSocket(`${server.url}/ws/nowhere`)
      socket.on('close', (code, reason) => resolve({code, reason: String(reason)}))
      socket.on('error', () => undefined)
    })
    expect(closed.code).toBe(4404)
    expect(closed.reason).toContain('/ws/notifications')
  })
})
