/**
 * Turns a chaos run's results (the JSON lines test/chaos appends to TEKTREE_CHAOS_RESULTS, and
 * vitest's JSON report) into the results section of RELIABILITY.md: the machine, what was injected
 * and how often, what held, what failed, how to reproduce. Run by scripts/chaos.sh (`npm run
 * chaos`); by hand: node --import tsx scripts/chaos-report.ts --results F --vitest F [--seconds N] [--status N]
 * [--write RELIABILITY.md] (without --write the section goes to stdout).
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {relative} from 'node:path'
import {parseArgs} from 'node:util'
import {findJava, KAFKA_VERSION} from '../src/embedded/kafka-server.js'

const START = '<!-- chaos-results:start (scripts/chaos-report.ts writes this section) -->'
const END = '<!-- chaos-results:end -->'

interface Result {
  scenario: string
  file: string
  seed: number
  injected: Record<string, number>
  events: number
  durationMs: number
  notes?: string[]
  expect?: 'loss'
  at?: string
  checks: {
    checked: number
    differences: number
    differing?: Record<string, number>
    unexpectedDeadLetters: Array<{group: string; code: string; event_type: string | null}>
    missingDeadLetters: number
    expectedDeadLetters: number
    stuck: Array<{group: string; topic: string; lag: number; pending: number}>
    outbox: number
    drained: boolean
    ok: boolean
  }
}

interface VitestReport {
  startTime?: number
  testResults: Array<{name: string; assertionResults: Array<{fullName: string; title: string; status: string; duration?: number | null; failureMessages?: string[]}>}>
}

const {values} = parseArgs({options: {results: {type: 'string'}, vitest: {type: 'string'}, seconds: {type: 'string'}, status: {type: 'string'}, write: {type: 'string'}}})
if (!values.results) throw new Error('--results FILE is required')

const results: Result[] = readFileSync(values.results, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as Result)
const vitest: VitestReport | null = values.vitest && existsSync(values.vitest) ? (JSON.parse(readFileSync(values.vitest, 'utf8')) as VitestReport) : null

const quiet = (command: string, args: string[]) => {
  try {
    return execFileSync(command, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim()
  } catch {
    return 'unknown'
  }
}
const sqlite = (() => {
  try {
    return quiet(process.execPath, ['-e', "const D=require('better-sqlite3');console.log(new D(':memory:').prepare('select sqlite_version() v').get().v)"])
  } catch {
    return 'unknown'
  }
})()
/** "Kafka 4.1.2 (KRaft) on Java 17.0.15" when a scenario ran on the broker (java -version writes to stderr). */
const kafka = (() => {
  if (!results.some((r) => r.file.includes('kafka'))) return null
  const java = findJava()
  const run = java ? spawnSync(java, ['-version'], {encoding: 'utf8'}) : null
  const version = /version "([^"]+)"/.exec(`${run?.stderr ?? ''}${run?.stdout ?? ''}`)?.[1] ?? 'unknown'
  return `Kafka ${KAFKA_VERSION} (KRaft) on Java ${version}`
})()
const machine = [
  `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB`,
  `Node ${process.version}`,
  quiet('redis-server', ['--version']).replace(/ sha=.*/, ''),
  ...(kafka ? [kafka] : []),
  `SQLite ${sqlite}`,
  `tektree ${quiet('git', ['rev-parse', '--short', 'HEAD'])}`,
].join('; ')

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
const injected = (r: Result) =>
  Object.entries(r.injected)
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${what}: ${n}`)
    .join('; ')
function held(r: Result): string {
  const c = r.checks
  const parts = [
    c.differences === 0 ? `verify: 0 of ${c.checked} values differ` : `verify: **${c.differences} differences**${Object.keys(c.differing ?? {}).length ? ` (${Object.entries(c.differing ?? {}).map(([p, n]) => `${p} ${n}`).join(', ')})` : ''}`,
    c.unexpectedDeadLetters.length === 0 && c.missingDeadLetters === 0
      ? `DLQ: exactly the ${c.expectedDeadLetters} expected`
      : `DLQ: **${c.unexpectedDeadLetters.length} unexpected, ${c.missingDeadLetters} missing** of ${c.expectedDeadLetters}`,
    c.stuck.length === 0 && c.outbox === 0 && c.drained ? 'nothing stuck' : `**stuck**: ${c.stuck.map((s) => `${s.group} ${s.topic} lag ${s.lag} pending ${s.pending}`).join(', ')}${c.outbox ? ` outbox ${c.outbox}` : ''}${c.drained ? '' : ' (no drain)'}`,
  ]
  return parts.join('; ')
}

const outcome = (r: Result) => (r.expect === 'loss' ? (r.checks.differences > 0 ? 'damage shown (no repair)' : '**no damage?**') : r.checks.ok ? 'held' : '**FAILED**')

const lines: string[] = [START, '']
const when = results[0]?.at ? results[0].at.slice(0, 16).replace('T', ' ') : new Date().toISOString().slice(0, 16).replace('T', ' ')
lines.push(
  `Last run: ${when} UTC${values.seconds ? `, ${Math.round(Number(values.seconds) / 60)} min` : ''}. Machine: ${machine}.`,
  `Sizes: TEKTREE_CHAOS_SCALE=${process.env.TEKTREE_CHAOS_SCALE ?? '1'}, TEKTREE_CHAOS_SEEDS=${process.env.TEKTREE_CHAOS_SEEDS ?? '20'}, TEKTREE_FUZZ_ITERATIONS=${process.env.TEKTREE_FUZZ_ITERATIONS ?? '(the test\'s default)'}.`,
  '',
  '| scenario | injected (how often) | events | what held | result | seed |',
  '|---|---|---:|---|---|---:|',
)
for (const r of results) {
  const notes = r.notes?.length ? ` (${r.notes.join('; ')})` : ''
  lines.push(`| ${cell(r.scenario)} | ${cell(injected(r))} | ${r.events} | ${cell(held(r) + notes)} | ${outcome(r)} | ${r.seed} |`)
}
if (vitest) {
  lines.push('', 'Every test file of the run (vitest):', '', '| file | passed | failed | skipped | s | failed tests |', '|---|---:|---:|---:|---:|---|')
  for (const file of vitest.testResults) {
    const tests = file.assertionResults
    const count = (status: string) => tests.filter((t) => t.status === status).length
    const skipped = tests.length - count('passed') - count('failed')
    const seconds = tests.reduce((sum, t) => sum + (t.duration ?? 0), 0) / 1000
    const failedNames = tests.filter((t) => t.status === 'failed').map((t) => t.title)
    lines.push(`| ${relative(process.cwd(), file.name)} | ${count('passed')} | ${count('failed') ? `**${count('failed')}**` : 0} | ${skipped} | ${seconds.toFixed(0)} | ${cell(failedNames.join('; '))} |`)
  }
}
const failed = results.filter((r) => (r.expect === 'loss' ? r.checks.differences === 0 : !r.checks.ok))
// vitest's JSON report says success even when errors outside any test (unhandled rejections) made it
// exit 1: only its exit status tells, and then the run's log says what they were.
const status = values.status === undefined ? 0 : Number(values.status)
const testsFailed = vitest ? vitest.testResults.some((file) => file.assertionResults.some((t) => t.status === 'failed')) : false
if (status !== 0 && !testsFailed) {
  lines.push('', `**vitest exited ${status} although every test passed**: errors outside the tests (unhandled rejections or exceptions) were reported; the run's log names them.`)
}
lines.push('', 'Reproduce a row: `TEKTREE_CHAOS_SEED=<seed> TEKTREE_CHAOS_SCALE=<scale> npx vitest run <file>` (after `npm run build`); the seed fixes the load and every random choice of the faults, not the timing of the processes.')
if (failed.length > 0) {
  lines.push('', 'Failed rows:')
  for (const r of failed) lines.push(`- ${r.scenario}: \`TEKTREE_CHAOS_SEED=${r.seed} npx vitest run ${r.file}\``)
}
lines.push('', END)
const section = lines.join('\n')

if (values.write) {
  const current = existsSync(values.write) ? readFileSync(values.write, 'utf8') : ''
  const start = current.indexOf(START)
  const end = current.indexOf(END)
  const next = start >= 0 && end > start ? `${current.slice(0, start)}${section}${current.slice(end + END.length)}` : `${current}\n## Results of the last run\n\n${section}\n`
  writeFileSync(values.write, next)
} else process.stdout.write(`${section}\n`)
