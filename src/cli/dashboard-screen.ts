/**
 * What `tektree dashboard`, `simulate --dashboard` and `services --dashboard` share: the terminal
 * check, and the screen over a runtime. Ink and React are imported here, lazily, when a screen is
 * drawn: `--help` and every other command never load them.
 */
import type {Catalog} from '../catalog/types.js'
import type {Runtime} from '../core/runtime.js'
import {UserError} from '../errors.js'
import {colorEnabled} from './style.js'

/** The refusal when the dashboard has no terminal to draw on (stdout) or to read keys from (stdin). */
export function requireTerminal(command: string): void {
  if (process.stdout.isTTY && process.stdin.isTTY) return
  const what = process.stdout.isTTY ? 'stdin is not a terminal (keys cannot be read)' : 'stdout is not a terminal'
  throw new UserError(`${command} draws a live screen on a terminal, and ${what}`, {
    code: 'NOT_A_TERMINAL',
    hint: 'For a log or a pipe: `tektree lag --watch` (each group, every second), or `tektree dashboard --json` / `tektree lag --json` for the figures as data.',
    exitCode: 2,
  })
}

/** When `tektree up` started the runtime of this directory, if it did (the header's uptime). */
export async function runtimeStartedAt(runtime: Runtime): Promise<number | null> {
  const bus = runtime.describe().bus
  if (bus.origin !== 'embedded' || bus.forThisCommand) return null
  try {
    const {readDiscovery, resolveDataDir} = await import('../embedded/discovery.js')
    const read = readDiscovery(resolveDataDir())
    const at = read.state === 'found' ? Date.parse(read.discovery.up?.started_at ?? '') : Number.NaN
    return Number.isFinite(at) ? at : null
  } catch {
    return null
  }
}

export async function openFeed(runtime: Runtime, catalog: Catalog) {
  const {DashboardFeed} = await import('../ui/feed.js')
  return new DashboardFeed({runtime, catalog, runtimeStartedAt: await runtimeStartedAt(runtime)})
}

/** Draws the dashboard over `runtime` until q, Ctrl+C or `signal`; the terminal is given back as it was. */
export async function showDashboard(runtime: Runtime, catalog: Catalog, signal: AbortSignal) {
  const [feed, {renderDashboard}] = await Promise.all([openFeed(runtime, catalog), importInteractive(() => import('../ui/render-dashboard.js'))])
  return renderDashboard({feed, stdout: process.stdout, stdin: process.stdin, signal, color: colorEnabled(process.stdout)})
}

/**
 * Ink decides once, when it is first imported, whether it runs in CI (CI or CONTINUOUS_INTEGRATION
 * set), and there draws only its last frame: under CI=true the dashboard stayed blank in a real
 * terminal. The dashboard only runs on a terminal (requireTerminal), where a person asked for a live
 * screen, so Ink is loaded with those variables off, and they are put back at once.
 */
async function importInteractive<T>(load: () => Promise<T>): Promise<T> {
  const names = ['CI', 'CONTINUOUS_INTEGRATION'] as const
  const saved = names.map((name) => [name, process.env[name]] as const)
  for (const name of names) process.env[name] = '0'
  try {
    return await load()
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}
