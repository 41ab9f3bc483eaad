/**
 * A/B of two builds of the embedded default on this noisy machine: the working tree against a git
 * revision, in alternating runs of bench/simulate.ts (A B, then B A, ...), so that the machine's
 * drift over minutes falls on both sides. Prints each figure of every run and the ratio of the
 * medians (candidate / base).
 *
 *   npm run bench:one -- bench/ab.ts --base REV [--pairs 3] [--rates 1000,2500] [--seconds 15]
 *                        [--workers 2] [--env NAME=VALUE ...] [--base-env NAME=VALUE ...]
 *                        [--target sqlite|in-process] [--alloc]
 *
 * The base is built in a worktree of its own under the system's temp directory (kept for the next
 * run; `git worktree prune` after deleting it). Both sides run this tree's bench/ harness, so a
 * harness newer than the base's sources is used against them (it must only import what the base
 * has). --env sets a variable for the candidate's runs only (an experiment behind a flag), and
 * --base-env for the base's. Starts and stops its own redis-server, flushed before every run.
 *
 * --target in-process compares the in-process engine instead (every thread's work on the main one),
 * and --alloc adds the bytes allocated per event on the main thread (bench/allocation.ts), which
 * moves least of all with the machine.
 *
 * "cpu us/event" is the figure to compare by below saturation (the same seeded work on both sides,
 * see bench/simulate.ts); latencies and rates move with the machine from one minute to the next.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {Redis} from 'ioredis'
import {startRedisServer} from '../src/embedded/redis-server.js'

const {values} = parseArgs({
  options: {
    base: {type: 'string'},
    pairs: {type: 'string', default: '3'},
    rates: {type: 'string', default: '1000,2500'},
    seconds: {type: 'string', default: '15'},
    workers: {type: 'string', default: '2'},
    env: {type: 'string', multiple: true, default: []},
    'base-env': {type: 'string', multiple: true, default: []},
    target: {type: 'string', default: 'sqlite'},
    alloc: {type: 'boolean', default: false},
  },
})
if (!values.base) {
  console.error('Give the revision to compare the working tree with: --base REV (e.g. --base HEAD, --base main~3)')
  process.exit(2)
}

const here = resolve(import.meta.dirname, '..')
const git = (...args: string[]) => execFileSync('git', args, {cwd: here, encoding: 'utf8'}).trim()
let rev: string
try {
  rev = git('rev-parse', '--verify', '--quiet', `${values.base}^{commit}`)
} catch {
  console.error(`${values.base} is no revision of this repository: give a commit, branch or tag (e.g. --base main~1)`)
  process.exit(2)
}
const baseRoot = join(tmpdir(), `tektree-ab-${rev.slice(0, 12)}`)
if (!existsSync(baseRoot)) {
  git('worktree', 'add', '--detach', baseRoot, rev)
  symlinkSync(join(here, 'node_modules'), join(baseRoot, 'node_modules'))
}
// The same harness on both sides.
for (const file of ['simulate.ts', 'redis-runtime.ts', 'allocation.ts', 'compiled.mjs', 'compiled-hooks.mjs']) copyFileSync(join(here, 'bench', file), join(baseRoot, 'bench', file))
for (const root of [baseRoot, here]) {
  process.stderr.write(`building ${root === here ? 'the working tree' : `${values.base} (${rev.slice(0, 12)})`}...\n`)
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], {cwd: root, stdio: 'inherit'})
}

interface Row {
  rate: number
  simulated: number
  all: number
  publishP95: number | null
  deliveryP95: number | null
  maxBacklog: number
  drained: boolean
  cpuUsPerEvent: number
  allocPerEvent?: number
}
const envOf = (list: string[]) => Object.fromEntries(list.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
const sides = {
  base: {root: baseRoot, env: envOf(values['base-env']!), rows: [] as Row[]},
  candidate: {root: here, env: envOf(values.env!), rows: [] as Row[]},
}

const dir = mkdtempSync(join(tmpdir(), 'tektree-ab-redis-'))
const redis = await startRedisServer({dir})
// Ctrl+C reaches the run under way too (same process group); the server and its directory go with us.
process.once('SIGINT', () => {
  void redis.stop().finally(() => {
    rmSync(dir, {recursive: true, force: true})
    process.exit(130)
  })
})
try {
  const pairs = Math.max(1, Number(values.pairs))
  for (let pair = 0; pair < pairs; pair++) {
    const order = pair % 2 === 0 ? (['base', 'candidate'] as const) : (['candidate', 'base'] as const)
    for (const name of order) {
      const side = sides[name]
      const flush = new Redis(redis.url)
      await flush.flushall()
      flush.disconnect()
      process.stderr.write(`pair ${pair + 1}/${pairs}: ${name}\n`)
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', '--import', './bench/compiled.mjs', 'bench/simulate.ts', '--json', '--services', 'tektree', '--targets', values.target!, '--redis-url', redis.url, '--workers', values.workers!, '--rates', values.rates!, '--seconds', values.seconds!, ...(values.alloc ? ['--alloc'] : [])],
        {cwd: side.root, env: {...process.env, ...side.env}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20},
      )
      if (run.status !== 0) throw new Error(`the ${name}'s run failed (exit ${run.status}); run bench/simulate.ts in ${side.root} to see why`)
      for (const line of run.stdout.split('\n')) if (line.startsWith('{')) side.rows.push(JSON.parse(line) as Row)
    }
  }
} finally {
  await redis.stop()
  rmSync(dir, {recursive: true, force: true})
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const metrics: Array<[string, (r: Row) => number | null, number]> = [
  ['all/s', (r) => r.all, 0],
  ['publish p95 ms', (r) => r.publishP95, 1],
  ['delivery p95 ms', (r) => r.deliveryP95, 1],
  ['cpu us/event', (r) => r.cpuUsPerEvent, 0],
  ...(values.alloc ? [['alloc B/event', (r: Row) => r.allocPerEvent ?? null, 0] as [string, (r: Row) => number | null, number]] : []),
]
const table = new Table({head: ['rate/s', 'figure', `base ${rev.slice(0, 8)}`, 'candidate', 'ratio of medians']})
for (const rate of values.rates!.split(',').map(Number)) {
  for (const [label, pick, digits] of metrics) {
    const of = (rows: Row[]) => rows.filter((r) => r.rate === rate).map(pick).filter((x): x is number => x !== null)
    const base = of(sides.base.rows)
    const candidate = of(sides.candidate.rows)
    const ratio = base.length && candidate.length ? (median(candidate) / median(base)).toFixed(2) : 'n/a'
    table.push([rate, label, base.map((x) => x.toFixed(digits)).join(', '), candidate.map((x) => x.toFixed(digits)).join(', '), ratio])
  }
}
console.log(table.toString())
console.log(`node ${process.version}, ${values.target}, ${values.seconds}s per rate, ${values.workers} worker(s), ${values.pairs} pair(s) in alternating order`)
