/**
 * One colour rule for every command, as a user meets it: piped output carries no escape sequence at
 * all; on a terminal (a real pty, through util-linux `script`) there is colour, unless NO_COLOR is
 * set. Runs the built dist/ (`npm test` builds first).
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = path.join(ROOT, 'bin', 'run.js')
const SGR = /\u001b\[[0-9;]*m/

let dir: string
beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'commands', 'demo.js'))) throw new Error('dist/ is not built: run `npm run build` first')
  dir = await mkdtemp(path.join(tmpdir(), 'tektree-colour-'))
})
afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {...process.env, TEKTREE_DATA_DIR: path.join(dir, '.tektree'), TEKTREE_CATALOG: '', TERM: 'xterm-256color', ...extra}
  for (const key of ['NO_COLOR', 'FORCE_COLOR']) if (!(key in extra)) delete e[key]
  return e
}

function run(file: string, args: string[], extra: Record<string, string> = {}): Promise<{code: number | null; out: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {cwd: dir, env: env(extra), stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, out}))
  })
}

const SIMULATE = ['simulate', '--in-process', '--rate', '100', '--duration', '1s']
const COMMANDS = [['demo', 'engagement', '--in-process'], ['verify', '--in-process'], ['search', 'consumer', '--in-process'], ['catalog', 'list'], SIMULATE]

/** The command on a pseudo-terminal: stdout and stderr are a TTY, as in a shell. */
const onTerminal = (args: string[], extra: Record<string, string> = {}) =>
  run('script', ['-qec', [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], {COLUMNS: '80', ...extra})

describe('colour', () => {
  it.each(COMMANDS)('%s ...: none into a pipe', async (...args) => {
    const {code, out} = await run(process.execPath, [BIN, ...args])
    expect(code).toBe(0)
    expect(out.length).toBeGreaterThan(0)
    expect(out).not.toContain('\u001b')
  })

  it('on a terminal: catalog list is coloured, unless NO_COLOR is set', async () => {
    const tty = await onTerminal(['catalog', 'list'])
    expect(tty.code).toBe(0)
    expect(tty.out).toMatch(SGR)
    const plain = await onTerminal(['catalog', 'list'], {NO_COLOR: '1'})
    expect(plain.code).toBe(0)
    expect(plain.out).not.toMatch(SGR)
  })

  it('on a terminal: the simulate report is coloured', async () => {
    const tty = await onTerminal(SIMULATE)
    expect(tty.code).toBe(0)
    expect(tty.out).toMatch(SGR)
  })
})
