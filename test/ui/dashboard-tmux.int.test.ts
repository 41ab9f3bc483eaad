/**
 * End to end in a real pseudo-terminal (tmux, 80x24): `tektree up` in a temp data dir, a simulation
 * (the chaos scenario: poison pills reach the DLQ) running in another process, and
 * `tektree dashboard` attached to the same runtime. The screen must show the simulator's process
 * and figures that change, drive keys (select a group and open it, the DLQ and an entry, help), and
 * quit with q: exit 0, the alternate screen left (the terminal as it was). `simulate --dashboard`
 * shows the screen during its run and its report after; `services --dashboard` until q, which
 * drains and stops them. A resize redraws to the new width. The metrics topic stays out of
 * `tektree topics` unless --all.
 *
 * With CI=true a missing tmux fails the suite (bash .ci/run installs it); elsewhere it is skipped
 * with the reason printed.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BIN, requireBuild, runCli} from '../cli/run-cli.js'

const tmuxFound = spawnSync('tmux', ['-V']).status === 0
if (!tmuxFound && process.env.CI === 'true') throw new Error('CI=true and tmux is not installed: the dashboard end-to-end test needs it (bash .ci/run installs it)')
if (!tmuxFound) process.stderr.write('\n[tektree tests] SKIPPING the dashboard tmux test: tmux is not installed\n')

const SOCKET = `tektree-dash-${process.pid}`
const SESSION = 'dash'
let dir: string
let env: Record<string, string>
let sim: ChildProcess | null = null

const tmux = (...args: string[]) => {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`)
  return r.stdout
}
const screen = (session = SESSION) => tmux('capture-pane', '-t', session, '-p')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls the screen until `test` holds (or fails with the last screen). */
async function waitFor(what: string, test: (s: string) => boolean, timeoutMs = 15_000, session = SESSION): Promise<string> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    last = screen(session)
    if (test(last)) return last
    await sleep(250)
  }
  throw new Error(`the dashboard never showed ${what}; last screen:\n${last}`)
}

/** One key at a time, as a person types (tmux would send a list as one chunk). */
async function press(...keys: string[]) {
  for (const key of keys) {
    tmux('send-keys', '-t', SESSION, key)
    await sleep(300)
  }
}

describe.skipIf(!tmuxFound)('tektree dashboard in tmux', () => {
  beforeAll(async () => {
    requireBuild()
    dir = mkdtempSync(path.join(tmpdir(), 'tektree-dash-'))
    env = {TEKTREE_DATA_DIR: path.join(dir, '.tektree'), TEKTREE_CATALOG: '', NO_COLOR: '1'}
    const up = await runCli(['up'], {cwd: dir, env})
    expect(up.code, up.stderr).toBe(0)
    sim = spawn(process.execPath, [BIN, 'simulate', '--scenario', 'chaos', '--rate', '150', '--duration', '40s', '--workers', '1', '--drain-timeout', '5s'], {
      cwd: dir,
      env: {...process.env, ...env},
      stdio: 'ignore',
    })
  })

  afterAll(async () => {
    if (sim && sim.exitCode === null) {
      sim.kill('SIGKILL')
      await new Promise((r) => sim!.once('exit', r))
    }
    if (tmuxFound) {
      spawnSync('tmux', ['-L', SOCKET, 'kill-server'])
      // kill-server leaves its socket file behind.
      rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), {force: true})
    }
    if (dir) {
      await runCli(['down', '--purge'], {cwd: dir, env})
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('shows the simulation live, drives groups, the DLQ and help, and quits with q', async () => {
    const exitFile = path.join(dir, 'exit')
    const command = `cd ${dir} && env ${Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(' ')} ${process.execPath} ${BIN} dashboard; echo $? > ${exitFile}; echo DASHBOARD-ENDED; sleep 30`
    tmux('new-session', '-d', '-s', SESSION, '-x', '80', '-y', '24', command)

    // The simulator's process and its figures, which change.
    const first = await waitFor('the simulator with a throughput', (s) => s.includes('1 process (simulate)') && /IN +[\d,.k]+\/s/.test(s) && !/IN +-\/s/.test(s), 30_000)
    for (const line of first.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
    expect(first).toContain('tektree dashboard')
    expect(first).toMatch(/delivery +p50/)
    const figures = (s: string) => s.split('\n').filter((l) => /^(IN|OUT) |^ *> /.test(l) || /^up /.test(l)).join('\n')
    await waitFor('its figures change', (s) => figures(s) !== figures(first))
    await waitFor('the groups', (s) => s.includes('> analytics') && s.includes('gamification'))

    // Select a group (the second) and open it: its topics and consumers.
    await press('j')
    await waitFor('the second group selected', (s) => /^> cache/m.test(s))
    await press('Enter')
    await waitFor('the group view', (s) => s.includes('TOPIC / PARTITION') && s.includes('CONSUMERS') && /^cache /m.test(s))
    await press('Escape')
    await waitFor('the overview again', (s) => s.includes('GROUPS'))

    // The DLQ: causes (the chaos scenario's poison pills), then one entry.
    await press('Tab')
    await waitFor('the DLQ causes', (s) => s.includes('MESSAGE (ids and numbers masked)') && /^> +\d+/m.test(s), 20_000)
    await press('Enter')
    await waitFor('a DLQ entry', (s) => s.includes('DLQ entry') && s.includes('r retry'))
    await press('Escape')

    // A resize redraws to the new width, nothing wider than the terminal.
    tmux('resize-window', '-t', SESSION, '-x', '100', '-y', '30')
    const wide = await waitFor('the redraw at 100 columns', (s) => s.split('\n').some((l) => l.length > 80) && s.includes('MESSAGE'))
    for (const line of wide.split('\n')) expect(line.length).toBeLessThanOrEqual(100)
    tmux('resize-window', '-t', SESSION, '-x', '80', '-y', '24')
    await waitFor('the redraw at 80 columns', (s) => s.split('\n').every((l) => l.length <= 80) && s.includes('MESSAGE'))

    // Help, and back.
    await press('?')
    await waitFor('the help', (s) => s.includes('KEYS') && s.includes('pause / resume updates'))
    await press('?')
    await waitFor('the DLQ view again', (s) => s.includes('MESSAGE (ids and numbers masked)'))

    await press('q')
    const after = await waitFor('the end', (s) => s.includes('DASHBOARD-ENDED'))
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0')
    // The alternate screen is left: nothing of the dashboard remains on the terminal.
    expect(after).not.toContain('tektree dashboard')
    expect(after).not.toContain('GROUPS')
  })

  // In-process: its own bus and store (the chaos run above would hold its drain up), and the
  // dashboard then reads the snapshots off the in-process bus.
  it('simulate --dashboard: the screen during the run, then the report on the terminal given back', async () => {
    const exitFile = path.join(dir, 'exit-sim')
    const command = `cd ${dir} && env ${Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(' ')} ${process.execPath} ${BIN} simulate --rate 50 --duration 6s --in-process --dashboard; echo $? > ${exitFile}; echo SIMULATE-ENDED; sleep 30`
    tmux('new-session', '-d', '-s', 'sim', '-x', '100', '-y', '30', command)
    const during = await waitFor('the run on the dashboard', (s) => s.includes('tektree dashboard') && s.includes('1 process (simulate)') && s.includes('bus memory in-process'), 20_000, 'sim')
    for (const line of during.split('\n')) expect(line.length).toBeLessThanOrEqual(100)
    const after = await waitFor('the report', (s) => s.includes('SIMULATE-ENDED'), 40_000, 'sim')
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0')
    expect(after).toContain('Throughput')
    expect(after).not.toContain('tektree dashboard')
  })

  it('services --dashboard: the screen while the services run; q drains and stops them, exit 0', async () => {
    const exitFile = path.join(dir, 'exit-services')
    const command = `cd ${dir} && env ${Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(' ')} ${process.execPath} ${BIN} services --in-process --dashboard; echo $? > ${exitFile}; echo SERVICES-ENDED; sleep 30`
    tmux('new-session', '-d', '-s', 'svc', '-x', '80', '-y', '24', command)
    await waitFor('the services on the dashboard', (s) => s.includes('1 process (services)') && s.includes('j/k move'), 20_000, 'svc')
    await sleep(300)
    tmux('send-keys', '-t', 'svc', 'q')
    const after = await waitFor('the services stopped', (s) => s.includes('SERVICES-ENDED'), 20_000, 'svc')
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0')
    expect(after).toContain('q: draining')
    expect(after).toContain('Stopped:')
    expect(after).not.toContain('tektree dashboard')
  })

  it('tektree topics leaves the metrics topic out unless --all', async () => {
    const plain = await runCli(['topics', '--json'], {cwd: dir, env})
    const all = await runCli(['topics', '--json', '--all'], {cwd: dir, env})
    expect(plain.code, plain.stderr).toBe(0)
    const names = (out: string) => (JSON.parse(out) as Array<{name: string}>).map((t) => t.name)
    expect(names(plain.stdout)).not.toContain('tektree.metrics')
    expect(names(all.stdout)).toContain('tektree.metrics')
    expect(names(plain.stdout).length).toBeGreaterThan(0)
  })
})

