/**
 * The services' commands as a user runs them: `node bin/run.js ...` on the built dist/ (`npm test`
 * builds first), on the in-process engine so no server is needed.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = path.join(ROOT, 'bin', 'run.js')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function run(args: string[], options: {onStdout?: (text: string, child: ReturnType<typeof spawn>) => void; timeoutMs?: number} = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', TEKTREE_REDIS_URL: '', TEKTREE_MONGO_URL: ''}})
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out: ${args.join(' ')}\n${stdout}\n${stderr}`))
    }, options.timeoutMs ?? 60_000)
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      options.onStdout?.(stdout, child)
    })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, stdout, stderr})
    })
  })
}

describe('tektree services / demo / search / verify', () => {
  it('services: an unknown name is a usage error naming the valid ones, without a stack trace', async () => {
    const r = await run(['services', '--only', 'gamification,x-unknown', '--in-process'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Unknown service: x-unknown')
    expect(r.stderr).toContain('gamification, payment, notification')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('services: runs until SIGTERM, then drains and exits 0', async () => {
    let signalled = false
    const r = await run(['services', '--in-process', '--status-every', '0', '--mail-dir', mkdtempSync(path.join(tmpdir(), 'mail-'))], {
      onStdout: (text, child) => {
        // the line wraps at 80 columns
        if (!signalled && text.replace(/\s+/g, ' ').includes('Running gamification, payment, notification, search, cache, analytics, realtime, user, email')) {
          signalled = true
          child.kill('SIGTERM')
        }
      },
    })
    expect(signalled).toBe(true)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('SIGTERM: draining')
    expect(r.stdout).toMatch(/Stopped: \d+ events handled, 0 dead-lettered/)
  })

  it('demo registration --json: the journey and the state at the end, with the mails on disk', async () => {
    const mail = mkdtempSync(path.join(tmpdir(), 'mail-'))
    const r = await run(['demo', 'registration', '--json', '--in-process', '--mail-dir', mail])
    expect(r.code).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result.demo).toBe('registration')
    expect(result.users[0]).toMatchObject({name: 'Ada', xp: 100, level: 2, tier: 'free', achievements: ['verified_member']})
    expect(result.steps[0].reactions.map((e: {type: string}) => e.type)).toContain('payment.subscription.created')
    expect(readdirSync(mail)).toHaveLength(2)
  })

  it('demo: an unknown pattern is a usage error', async () => {
    const r = await run(['demo', 'onboarding', '--in-process'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('registration')
  })

  it('search: an empty index says so; a query without words is a usage error', async () => {
    const empty = await run(['search', 'kafka', '--in-process'])
    expect(empty.code).toBe(0)
    expect(empty.stdout).toContain('The search index is empty')
    const blank = await run(['search', '?!', '--in-process'])
    expect(blank.code).toBe(2)
    expect(blank.stderr).toContain('has no words to search for')
  })

  it('verify --json on an empty log: nothing to differ, exit 0', async () => {
    const r = await run(['verify', '--json', '--in-process'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({differences: []})
  })
})
