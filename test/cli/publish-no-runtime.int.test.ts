/**
 * `tektree publish` with nothing running (issue 12, item 19). The issue said the events "are gone
 * when it exits"; they are not: the redis-server started for the command keeps its data in
 * .tektree/redis and the store file keeps the events, and `tektree services` started later
 * processes them. What was missing is saying that no service saw them. Here, in a fresh data dir:
 * publish says so; the events are in the store; services started afterwards process them (verify
 * finds no difference); and with `tektree up` running, publish does not say it.
 * Needs redis-server on PATH (the integration tier's requirement); starts its own, per command.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BIN, requireBuild, runCli} from './run-cli.js'

let dir: string
const env = () => ({TEKTREE_DATA_DIR: path.join(dir, '.tektree'), TEKTREE_BUS_URL: undefined, TEKTREE_STORE_URL: undefined, TEKTREE_REDIS_URL: undefined, TEKTREE_MONGO_URL: undefined})
const draft = (userId: string, username: string) =>
  `${JSON.stringify({event_type: 'user.registered', payload: {user_id: userId, username, email_hash: `sha256:${'0'.repeat(64)}`, signup_source: 'web'}})}\n`

beforeAll(() => {
  requireBuild()
  dir = mkdtempSync(path.join(tmpdir(), 'tektree-publish-alone-'))
})
afterAll(async () => {
  await runCli(['down', '--purge'], {cwd: dir, env: env()})
  rmSync(dir, {recursive: true, force: true})
})

describe('publish with no runtime up', () => {
  it('says no service saw the events, and they wait for `tektree services`', async () => {
    const published = await runCli(['publish'], {cwd: dir, env: env(), stdin: draft('3f0e2f7a-9a53-4c8e-9d8e-1c1f6f1c2a11', 'ada')})
    expect(published.code, published.stderr).toBe(0)
    expect(published.stderr).toContain('1 published')
    expect(published.stderr).toContain('No services run here: the events wait in .tektree until `tektree services` processes them.')

    const status = JSON.parse((await runCli(['status', '--json'], {cwd: dir, env: env()})).stdout)
    expect(status.store.events).toBe(1)

    // Services started afterwards process what publish left: poll verify until it finds no difference.
    const services = spawn(process.execPath, [BIN, 'services', '--workers', '1'], {cwd: dir, env: {...process.env, NO_COLOR: '1', ...env()}, stdio: 'ignore'})
    try {
      let verified: {differences: unknown[]; events: number} | undefined
      for (let i = 0; i < 60 && !(verified && verified.differences.length === 0 && verified.events > 1); i++) {
        await new Promise((resolve) => setTimeout(resolve, 500))
        const result = await runCli(['verify', '--json'], {cwd: dir, env: env()})
        if (result.stdout.trim().startsWith('{')) verified = JSON.parse(result.stdout)
      }
      expect(verified?.differences).toEqual([])
      // The user service's and others' derived events: the published one was consumed.
      expect(verified?.events).toBeGreaterThan(1)
    } finally {
      services.kill('SIGINT')
      await new Promise((resolve) => services.once('exit', resolve))
    }
  })

  it('with `tektree up` running, publish says it while no services run there, and not once they do', {timeout: 120_000}, async () => {
    const up = await runCli(['up'], {cwd: dir, env: env()})
    expect(up.code, up.stderr).toBe(0)
    try {
      const alone = await runCli(['publish'], {cwd: dir, env: env(), stdin: draft('9b2d4c6e-1a3f-4e5b-8c7d-0e1f2a3b4c5d', 'grace')})
      expect(alone.code, alone.stderr).toBe(0)
      expect(alone.stderr).toContain('1 published')
      expect(alone.stderr).toContain('No services run here')
      const services = spawn(process.execPath, [BIN, 'services', '--workers', '1'], {cwd: dir, env: {...process.env, NO_COLOR: '1', ...env()}, stdio: ['ignore', 'pipe', 'ignore']})
      try {
        let said = ''
        services.stdout!.on('data', (chunk) => (said += chunk))
        for (let i = 0; i < 120 && !said.includes('Running gamification'); i++) await new Promise((resolve) => setTimeout(resolve, 250))
        expect(said).toContain('Running gamification')
        const beside = await runCli(['publish'], {cwd: dir, env: env(), stdin: draft('1c3e5a7b-2d4f-4a6b-8c9d-0e1f2a3b4c5e', 'hedy')})
        expect(beside.code, beside.stderr).toBe(0)
        expect(beside.stderr).toContain('1 published')
        expect(beside.stderr).not.toContain('No services run here')
      } finally {
        services.kill('SIGINT')
        await new Promise((resolve) => services.once('exit', resolve))
      }
    } finally {
      await runCli(['down'], {cwd: dir, env: env()})
    }
  })
})
