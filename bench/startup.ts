/**
 * Start-up time of the commands a user runs most to look around: `tektree --help`, `tektree version`
 * and `tektree catalog list` (which also loads the catalog), against `node -e 0`, the floor any Node
 * CLI starts from. Each is spawned --runs times, alternating, so that load on the machine hits all
 * alike; prints median and best wall time and the median's ratio to node's on stderr, one JSON
 * result line on stdout.
 *
 *   npm run bench:one -- bench/startup.ts [--runs 20] [--compare DIR]
 *
 * --compare DIR adds the same three commands from another built checkout (e.g. main before a
 * change), interleaved with these, so both see the same load.
 */
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

const {values} = parseArgs({options: {runs: {type: 'string', default: '20'}, compare: {type: 'string'}}})
const runs = Number(values.runs)
const root = fileURLToPath(new URL('../', import.meta.url))

const commands = (bin: string, prefix: string): Array<{label: string; args: string[]; cwd: string}> => [
  {label: `${prefix}tektree --help`, args: [bin, '--help'], cwd: path.dirname(path.dirname(bin))},
  {label: `${prefix}tektree version`, args: [bin, 'version'], cwd: path.dirname(path.dirname(bin))},
  {label: `${prefix}tektree catalog list`, args: [bin, 'catalog', 'list'], cwd: path.dirname(path.dirname(bin))},
]
const cases = [
  {label: 'node -e 0 (baseline)', args: ['-e', '0'], cwd: root},
  ...commands(path.join(root, 'bin', 'run.js'), ''),
  ...(values.compare ? commands(path.join(path.resolve(values.compare), 'bin', 'run.js'), `${path.basename(path.resolve(values.compare))}: `) : []),
]

const samples = new Map<string, number[]>(cases.map((c) => [c.label, []]))
for (let i = 0; i < runs + 1; i++) {
  for (const c of cases) {
    const start = process.hrtime.bigint()
    const result = spawnSync(process.execPath, c.args, {cwd: c.cwd, stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, NO_COLOR: '1'}})
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (result.status !== 0) throw new Error(`${c.label} exited ${result.status}: ${result.stderr}`)
    // The first round warms the file cache; it is not counted.
    if (i > 0) samples.get(c.label)!.push(ms)
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const base = median(samples.get(cases[0].label)!)
const rows = cases.map((c) => {
  const xs = samples.get(c.label)!
  return {label: c.label, medianMs: Math.round(median(xs)), bestMs: Math.round(Math.min(...xs)), vsNode: Number((median(xs) / base).toFixed(1))}
})
process.stderr.write(`${'command'.padEnd(30)} ${'median'.padStart(8)} ${'best'.padStart(8)} ${'vs node'.padStart(8)}   (${runs} runs each)\n`)
for (const r of rows) process.stderr.write(`${r.label.padEnd(30)} ${`${r.medianMs} ms`.padStart(8)} ${`${r.bestMs} ms`.padStart(8)} ${`${r.vsNode}x`.padStart(8)}\n`)
process.stdout.write(`${JSON.stringify({bench: 'startup', runs, results: rows})}\n`)
