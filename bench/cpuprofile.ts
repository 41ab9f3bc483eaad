/**
 * Reads a V8 CPU profile (`node --cpu-prof --cpu-prof-dir DIR ...` writes one per thread) and
 * prints where its time went: self time by function, inclusive time by function, and, with
 * --callers NAME, the call stacks under which NAME spent its self time. Times are wall-clock
 * samples of that thread: a thread blocked in a synchronous call (a SQLite lock wait) counts there.
 *
 *   node --import tsx bench/cpuprofile.ts FILE.cpuprofile [--top 30] [--callers NAME [--depth 8]]
 *
 * E.g. every thread of the embedded default at 2,000 simulated/s (BENCHMARKS.md section 9):
 *   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx --import ./bench/compiled.mjs \
 *     bench/simulate.ts --services tektree --targets sqlite --redis-url URL --workers 2 --rates 2000 --seconds 15
 */
import {readFileSync} from 'node:fs'
import {parseArgs} from 'node:util'

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string; lineNumber: number}
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {top: {type: 'string', default: '30'}, callers: {type: 'string'}, depth: {type: 'string', default: '8'}},
})
if (positionals.length !== 1) {
  console.error('Give one .cpuprofile file: node --import tsx bench/cpuprofile.ts FILE.cpuprofile [--top N] [--callers NAME]')
  process.exit(2)
}
// Piped into `head`: stop quietly when the reader has gone.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})
const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile
const top = Number(values.top)
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parentOf = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
const label = (id: number) => {
  const {functionName, url, lineNumber} = byId.get(id)!.callFrame
  return `${functionName || '(anon)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`
}

// Time per sampled node (the time delta of a sample is the time since the previous one).
const timeOf = new Map<number, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  timeOf.set(id, (timeOf.get(id) ?? 0) + dt)
  total += dt
})
const percent = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
const print = (title: string, times: Map<string, number>) => {
  console.log(`\n${title} (${(total / 1e6).toFixed(2)} s sampled)`)
  for (const [name, t] of [...times].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${percent(t)}  ${name}`)
}

if (values.callers) {
  const stacks = new Map<string, number>()
  for (const [id, t] of timeOf) {
    if (byId.get(id)!.callFrame.functionName !== values.callers) continue
    const frames: string[] = []
    for (let at = parentOf.get(id); at !== undefined && frames.length < Number(values.depth); at = parentOf.get(at)) frames.push(label(at))
    const stack = frames.join(' < ')
    stacks.set(stack, (stacks.get(stack) ?? 0) + t)
  }
  print(`Stacks under ${values.callers}'s self time`, stacks)
} else {
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, t] of timeOf) {
    self.set(label(id), (self.get(label(id)) ?? 0) + t)
    // A function counted once per sample however deep it recurses.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) seen.add(label(at))
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + t)
  }
  print('Self time', self)
  print('Inclusive time', inclusive)
}
