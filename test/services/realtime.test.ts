/** The real-time service's WebSocket endpoint, with a real ws client on a free port. */
import {afterEach, describe, expect, it} from 'vitest'
import {WebSocket, type ClientOptions} from 'ws'
import {startRealtimeServer, type RealtimeServer, type RealtimeServerOptions} from '../../src/services/realtime/ws-server.js'

const TOKEN = 'test-token-0123456789'
const servers: RealtimeServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function start(options: RealtimeServerOptions = {}): Promise<RealtimeServer> {
  const server = await startRealtimeServer({port: 0, token: TOKEN, ...options})
  servers.push(server)
  return server
}

function connect(url: string, options: ClientOptions & {protocols?: string[]} = {headers: {authorization: `Bearer ${TOKEN}`}}): Promise<{socket: WebSocket; messages: Array<Record<string, unknown>>}> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options.protocols ?? [], options)
    const messages: Array<Record<string, unknown>> = []
    socket.on('message', (data) => messages.push(JSON.parse(String(data))))
    socket.once('open', () => resolve({socket, messages}))
    socket.once('error', reject)
  })
}

/** The HTTP status of a refused upgrade. */
function refused(url: string, options: ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options)
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.once('open', () => reject(new Error('the connection was accepted')))
    socket.once('error', () => undefined)
  })
}

function closedWith(url: string, options: ClientOptions): Promise<{code: number; reason: string}> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, options)
    socket.on('close', (code, reason) => resolve({code, reason: String(reason)}))
    socket.on('error', () => undefined)
  })
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
}

const bearer = {headers: {authorization: `Bearer ${TOKEN}`}}

describe('realtime WebSocket endpoint', () => {
  it("streams a user's pushes to that user's /ws/notifications only, and leaderboards to everyone", async () => {
    const server = await start()
    const ada = await connect(`${server.url}/ws/notifications?user_id=ada`)
    const bob = await connect(`${server.url}/ws/notifications?user_id=bob`)
    const board = await connect(`${server.url}/ws/leaderboard`)
    await until(() => server.clients() === 3)
    server.sink.push('/ws/notifications', {kind: 'xp_earned', user_id: 'bob', event_id: 'e1'})
    server.sink.push('/ws/notifications', {kind: 'xp_earned', user_id: 'ada', event_id: 'e2'})
    server.sink.push('/ws/leaderboard', {kind: 'leaderboard', user_id: null, event_id: 'e3'})
    await until(() => ada.messages.length === 1 && bob.messages.length === 1 && board.messages.length === 1)
    expect(ada.messages).toEqual([{channel: '/ws/notifications', kind: 'xp_earned', user_id: 'ada', event_id: 'e2'}])
    expect(bob.messages.map((m) => m.event_id)).toEqual(['e1'])
    expect(board.messages.map((m) => m.event_id)).toEqual(['e3'])
    for (const c of [ada, bob, board]) c.socket.close()
  })

  it('closes a connection to an unknown channel with a reason', async () => {
    const server = await start()
    const closed = await closedWith(`${server.url}/ws/nowhere`, bearer)
    expect(closed.code).toBe(4404)
    expect(closed.reason).toContain('/ws/notifications')
  })

  it('/ws/notifications without user_id gets nothing: closed with a reason saying what to ask for', async () => {
    const server = await start()
    for (const url of [`${server.url}/ws/notifications`, `${server.url}/ws/notifications?user_id=`]) {
      const closed = await closedWith(url, bearer)
      expect(closed.code).toBe(4400)
      expect(closed.reason).toContain('user_id')
    }
    expect(server.clients()).toBe(0)
  })
})

describe('realtime WebSocket endpoint: who may connect', () => {
  it('refuses a client without the token, or with a wrong one, with 401 before the upgrade', async () => {
    const server = await start()
    const url = `${server.url}/ws/notifications?user_id=ada`
    expect(await refused(url)).toBe(401)
    expect(await refused(url, {headers: {authorization: 'Bearer nope'}})).toBe(401)
    expect(await refused(`${url}&token=${TOKEN}x`)).toBe(401)
    expect(await refused(url, {headers: {authorization: `Basic ${TOKEN}`}})).toBe(401)
    expect(server.clients()).toBe(0)
  })

  it('takes the token as a bearer header, as ?token=, or as the subprotocol a browser can send', async () => {
    const server = await start()
    const base = `${server.url}/ws/notifications?user_id=ada`
    const viaQuery = await connect(`${base}&token=${TOKEN}`, {})
    const viaProtocol = await connect(base, {protocols: ['tektree', `tektree.token.${TOKEN}`]})
    expect(viaProtocol.socket.protocol).toBe('tektree') // the token is never echoed back
    await until(() => server.clients() === 2)
    server.sink.push('/ws/notifications', {kind: 'k', user_id: 'ada', event_id: 'e1'})
    await until(() => viaQuery.messages.length === 1 && viaProtocol.messages.length === 1)
    expect(viaQuery.messages.length + viaProtocol.messages.length).toBe(2)
    viaQuery.socket.close()
    viaProtocol.socket.close()
  })

  it('refuses a browser Origin other than localhost (403), unless allowed; no Origin is not a browser', async () => {
    const server = await start({allowedOrigins: ['https://app.example.com']})
    const url = `${server.url}/ws/leaderboard`
    expect(await refused(url, {...bearer, origin: 'https://evil.example.net'})).toBe(403)
    expect(await refused(url, {...bearer, origin: 'http://localhost.evil.example.net'})).toBe(403)
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1', 'https://app.example.com', undefined]) {
      const client = await connect(url, {...bearer, ...(origin ? {origin} : {})})
      client.socket.close()
    }
  })

  it('generates a token when none is given, or takes TEKTREE_WS_TOKEN, and says which', async () => {
    const saved = process.env.TEKTREE_WS_TOKEN
    try {
      delete process.env.TEKTREE_WS_TOKEN
      const generated = await startRealtimeServer({port: 0})
      servers.push(generated)
      expect(generated.tokenSource).toBe('generated')
      expect(generated.token.length).toBeGreaterThanOrEqual(32)
      process.env.TEKTREE_WS_TOKEN = 'from-the-env'
      const fromEnv = await startRealtimeServer({port: 0})
      servers.push(fromEnv)
      expect(fromEnv).toMatchObject({token: 'from-the-env', tokenSource: 'env'})
      expect(await refused(`${fromEnv.url}/ws/leaderboard?token=${generated.token}`)).toBe(401)
      ;(await connect(`${fromEnv.url}/ws/leaderboard?token=from-the-env`, {})).socket.close()
    } finally {
      if (saved === undefined) delete process.env.TEKTREE_WS_TOKEN
      else process.env.TEKTREE_WS_TOKEN = saved
    }
  })
})
