/**
 * A redis-server with a password (--requirepass), started here on a free port (issue 12, item 9): a
 * wrong or missing password says "authentication failed", not "Connection is closed.", and the
 * password never appears in a message or an error contract, in the userinfo or in ?password=.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {connect} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openBusUrl} from '../../src/adapters/drivers.js'
import {freePort} from '../../src/embedded/child.js'
import {UserError} from '../../src/errors.js'

const PASSWORD = 'c0rrect-h0rse'
const WRONG = 'b4ttery-st4ple'
const bin = process.env.TEKTREE_REDIS_BIN ?? 'redis-server'
let child: ChildProcess
let port: number

async function listening(p: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(p, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

beforeAll(async () => {
  port = await freePort()
  child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no'], {stdio: 'ignore'})
  for (let i = 0; i < 200 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 25))
})
afterAll(() => {
  child?.kill()
})

async function failure(url: string): Promise<UserError> {
  const error = await openBusUrl(url, {connectTimeoutMs: 3_000, source: '--bus-url'}).then(
    async (opened) => {
      await opened.bus.close()
      await opened.leaderboards!.close?.()
      return null
    },
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(UserError)
  const userError = error as UserError
  for (const secret of [PASSWORD, WRONG]) {
    expect(userError.message).not.toContain(secret)
    expect(JSON.stringify(userError.toContract())).not.toContain(secret)
  }
  return userError
}

describe('Redis with a password', () => {
  it('a wrong password in the userinfo: REDIS_AUTH_FAILED naming the masked URL, exit 2', async () => {
    const error = await failure(`redis://:${WRONG}@127.0.0.1:${port}`)
    expect(error.code).toBe('REDIS_AUTH_FAILED')
    expect(error.exitCode).toBe(2)
    expect(error.message).toBe(`Authentication failed for Redis at redis://:****@127.0.0.1:${port} (--bus-url): check the password in the URL`)
  })

  it('a wrong password in ?password=, and no password at all, say the same', async () => {
    const query = await failure(`redis://127.0.0.1:${port}/?password=${WRONG}`)
    expect(query.code).toBe('REDIS_AUTH_FAILED')
    expect(query.message).toContain(`redis://127.0.0.1:${port}/?password=****`)
    const none = await failure(`redis://127.0.0.1:${port}`)
    expect(none.code).toBe('REDIS_AUTH_FAILED')
  })

  it('the right password connects', async () => {
    const opened = await openBusUrl(`redis://:${PASSWORD}@127.0.0.1:${port}`, {connectTimeoutMs: 3_000, source: '--bus-url'})
    expect(opened.kind).toBe('redis')
    await opened.bus.close()
    await opened.leaderboards!.close?.()
  })
})
