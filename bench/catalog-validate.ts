/**
 * Validator throughput: generates N valid example events (all catalog types, round robin) into a
 * temp NDJSON file, then measures
 *   - in-process validateJson (parse + envelope + payload) and validate (already parsed) in events/s,
 *   - `tektree catalog validate FILE --json` end to end (process start, catalog load, streaming read).
 * Prints a table on stderr and one JSON result line on stdout.
 *
 *   npm run bench:one -- bench/catalog-validate.ts [--events 200000] [--catalog FILE] [--no-cli]
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {createExampleFactory} from '../src/catalog/example.js'
import {loadCatalog} from '../src/catalog/load.js'
import {createValidator} from '../src/catalog/validate.js'

const {values} = parseArgs({
  options: {
    events: {type: 'string', default: '200000'},
    catalog: {type: 'string'},
    'no-cli': {type: 'boolean', default: false},
  },
})
const n = Number(values.events)
const root = fileURLToPath(new URL('../', import.meta.url))

const catalog = await loadCatalog(values.catalog)
const example = createExampleFactory(catalog)
// A pool of distinct examples repeated to N lines: generation is not what is measured.
const pool = Math.min(n, 5000)
const lines: string[] = []
for (let i = 0; i < pool; i++) lines.push(JSON.stringify(example(catalog.events[i % catalog.events.length].type, {seed: i})))
const dir = mkdtempSync(path.join(tmpdir(), 'tektree-bench-validate-'))
const file = path.join(dir, 'events.ndjson')
const all: string[] = []
for (let i = 0; i < n; i++) all.push(lines[i % pool])
writeFileSync(file, all.join('\n') + '\n')
const bytes = statSync(file).size

function measure(label: string, fn: () => number): {label: string; perSecond: number; ms: number} {
  const start = process.hrtime.bigint()
  const count = fn()
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  const perSecond = Math.round(count / (ms / 1000))
  process.stderr.write(`${label.padEnd(36)} ${String(perSecond).padStart(10)} events/s  (${count} in ${ms.toFixed(0)} ms)\n`)
  return {label, perSecond, ms}
}

const validator = createValidator(catalog)
// Warm-up: compiles every payload schema and lets the JIT settle.
for (let i = 0; i < Math.min(20_000, n); i++) validator.validateJson(all[i])

const json = measure('in-process validateJson', () => {
  let ok = 0
  for (let i = 0; i < n; i++) if (validator.validateJson(all[i]).ok) ok++
  if (ok !== n) throw new Error(`${n - ok} generated events did not validate`)
  return n
})
const parsed = all.slice(0, Math.min(n, 50_000)).map((l) => JSON.parse(l))
const objects = measure('in-process validate (parsed)', () => {
  let ok = 0
  const rounds = Math.max(1, Math.round(n / parsed.length))
  for (let r = 0; r < rounds; r++) for (const value of parsed) if (validator.validate(value).ok) ok++
  return ok
})
const parseOnly = measure('JSON.parse only (baseline)', () => {
  for (let i = 0; i < n; i++) JSON.parse(all[i])
  return n
})

let cli: {perSecond: number; ms: number; exitCode: number | null} | null = null
if (!values['no-cli']) {
  const start = process.hrtime.bigint()
  const result = spawnSync(process.execPath, [path.join(root, 'bin', 'run.js'), 'catalog', 'validate', file, '--json', ...(values.catalog ? ['--catalog', values.catalog] : [])], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  const summary = JSON.parse(result.stdout || '{}')
  if (summary.valid !== n) throw new Error(`CLI: expected ${n} valid, got ${JSON.stringify(summary).slice(0, 300)} ${result.stderr}`)
  cli = {perSecond: Math.round(n / (ms / 1000)), ms: Math.round(ms), exitCode: result.status}
  process.stderr.write(`${'CLI catalog validate FILE (end to end)'.padEnd(36)} ${String(cli.perSecond).padStart(10)} events/s  (${n} in ${cli.ms} ms, ${(bytes / 1e6).toFixed(1)} MB)\n`)
}
rmSync(dir, {recursive: true, force: true})

console.log(
  JSON.stringify({
    bench: 'catalog-validate',
    node: process.version,
    events: n,
    types: catalog.events.length,
    fileBytes: bytes,
    inProcessValidateJsonPerSec: json.perSecond,
    inProcessValidateParsedPerSec: objects.perSecond,
    jsonParseOnlyPerSec: parseOnly.perSecond,
    cliPerSec: cli?.perSecond ?? null,
    cliMs: cli?.ms ?? null,
  }),
)
