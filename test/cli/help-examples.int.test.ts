/**
 * Every help example works as written (issue 12, item 20): publish's example had "user_id":"..."
 * and search's "event sourcing" found nothing. Two checks, over the examples in oclif.manifest.json
 * (what `--help` prints):
 *   - every example names only flags its command has (and simulate's --assert values parse);
 *   - the examples that can run here do, in order, through a `tektree` on PATH, in a fresh directory
 *     and data dir holding the files they name as the user's own (events.ndjson, other catalogs), and
 *     exit 0. The others are listed in NOT_RUN with the reason; a new example must go in one list.
 * Needs redis-server on PATH (the integration tier's requirement): the embedded runtime starts it.
 */
import {spawn} from 'node:child_process'
import {chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {defaultCatalogPath, loadCatalog} from '../../src/catalog/load.js'
import {parseThresholds} from '../../src/simulator/assertions.js'
import {BIN, ROOT, requireBuild} from './run-cli.js'

interface ManifestCommand {
  id: string
  examples?: Array<string | {command: string}>
  flags: Record<string, {name: string; char?: string}>
}

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}
const render = (id: string, example: string) => example.replaceAll('<%= config.bin %>', 'tektree').replaceAll('<%= command.id %>', id.replaceAll(':', ' '))
const examples = Object.values(manifest.commands).flatMap((c) => (c.examples ?? []).map((e) => ({id: c.id, text: render(c.id, typeof e === 'string' ? e : e.command)})))

/**
 * Run here, in this order: `up` first, so that the others attach to its redis-server instead of each
 * starting one; search after the demo examples indexed something (search's --help says which); verify before publish adds events no
 * service processes; down last.
 */
const RUN = [
  'tektree up',
  'tektree up --json',
  'tektree status',
  'tektree status --json',
  'tektree version',
  'tektree version --json',
  'tektree catalog list',
  'tektree catalog list --json',
  'tektree catalog list --catalog ./streetlights.asyncapi.yaml',
  'tektree catalog show user.registered',
  'tektree catalog show knowledge.insight.shared --seed 7',
  'tektree catalog show gamification.xp.earned --json | jq .example',
  'tektree catalog validate events.ndjson',
  'cat events.ndjson | tektree catalog validate',
  'tektree catalog validate - --json < events.ndjson',
  'tektree catalog validate events.ndjson --catalog ./other.asyncapi.yaml',
  'tektree catalog diff catalog-main.yaml catalog-pr.yaml',
  "tektree catalog diff old.yaml new.yaml --json | jq '.changes[] | select(.versionOk | not)'",
  'tektree demo registration --in-process',
  'tektree demo engagement',
  'tektree demo achievement --json',
  'tektree search "consumer groups"',
  'tektree search idempotent --kind question --limit 5',
  'tektree search redis --json',
  'tektree verify',
  'tektree verify --json',
  'tektree reconcile',
  'tektree reconcile --dry-run',
  'tektree reconcile --since 10m --json',
  'tektree lag',
  'tektree lag gamification --partitions',
  'tektree lag --max-lag 0 --json',
  'tektree topics',
  'tektree topics --json',
  'tektree dashboard --json | jq .groups',
  'tektree tail',
  'tektree tail "social.*" --from 10m',
  'tektree tail --from beginning --limit 20 | jq .event_type',
  'tektree tail --where payload.author_id=0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90',
  'tektree dlq list',
  'tektree dlq list --group payment --since 24h',
  'tektree dlq list --flat --code VALIDATION_FAILED --json',
  'tektree dlq stats',
  'tektree dlq stats --json',
  'tektree dlq report',
  'tektree dlq report --since 7d > dlq-week.md',
  'tektree dlq report --json',
  'tektree dlq export > dlq.ndjson',
  'tektree dlq export --group payment --since 24h | jq .error',
  'tektree dlq purge --code VALIDATION_FAILED --dry-run',
  'tektree dlq purge --group email --until 7d --yes',
  'tektree dlq redrive --group payment --dry-run',
  'tektree dlq redrive --code HANDLER_FAILED --since 1h --rate 50 --yes',
  'tektree replay --group search --type "knowledge.*" --dry-run',
  'tektree replay --group notification --from 1h --rate 200',
  'tektree replay --group payment --from-scratch --yes',
  'tektree archive run --dry-run',
  'tektree archive run',
  'tektree archive run --as-of 2027-06-01 --type "social.*" --json',
  'tektree archive query --user 3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61',
  'tektree archive query --type "social.*" --from 2025-01-01 --to 2025-04-01 --limit 20',
  'tektree archive query --aggregate 0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90 --json',
  'tektree archive restore --user 3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61',
  'tektree archive restore --type "payment.*" --from 2025-01-01 --dry-run',
  'tektree archive restore --json',
  'tektree archive verify',
  'tektree publish events.ndjson',
  'cat events.ndjson | tektree publish',
  `echo '{"event_type":"user.registered","payload":{"user_id":"3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61","username":"ada","email_hash":"sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8","signup_source":"web"}}' | tektree publish`,
  'tektree publish - --json --in-process < events.ndjson',
  'tektree down',
  'tektree down --purge',
  'tektree down --grace 3 --json',
]

const NOT_RUN: Record<string, string> = {
  'tektree services': 'runs in the foreground until Ctrl+C',
  'tektree services --only gamification,payment': 'runs in the foreground until Ctrl+C',
  'tektree services --dashboard': 'runs in the foreground until q or Ctrl+C, on a terminal',
  'tektree services --ws-port 8080 --metrics-port 9464': 'runs in the foreground until Ctrl+C, on fixed ports',
  'tektree services --bus-url redis://127.0.0.1:6379 --store-url mongodb://127.0.0.1:27017/tektree --instances 2': 'needs your servers at those URLs',
  'tektree verify --bus-url redis://127.0.0.1:6379 --store-url mongodb://127.0.0.1:27017/tektree': 'needs your servers at those URLs',
  'tektree simulate': 'a load run (test/simulator and CI\'s load step run scenarios)',
  'tektree simulate --scenario steady-1k --assert "delivery_p95<100ms" --assert "dlq==0"': 'a 30 s load run at 1,000 events/s',
  'tektree simulate --scenario chaos --verify --report chaos.json': 'a load run with faults (test/chaos runs the chaos scenario)',
  'tektree simulate --scenario steady --dashboard': 'a 30 s load run on a terminal (test/ui/dashboard-tmux.int.test.ts runs simulate --dashboard in tmux)',
  'tektree simulate --rate 2000 --duration 30s --seed 7 --in-process': 'a 30 s load run',
  'tektree simulate --rate 100000 --duration 20s --workers 2': 'a 20 s load run that takes the machine',
  'tektree simulate --scenario ./my-scenario.yaml --bus-url redis://127.0.0.1:6379': 'needs your scenario file and your redis-server',
  'tektree lag --watch --interval 2s': 'runs until Ctrl+C',
  'tektree dashboard': 'a full-screen view on a terminal until q (test/ui/dashboard-tmux.int.test.ts drives it in tmux)',
  'tektree dashboard --bus-url redis://127.0.0.1:6379 --store-url sqlite:./.tektree/store.db': 'needs your redis-server at that URL',
  'tektree dlq show payment:0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90': 'needs that entry in your DLQ',
  'tektree dlq show ID --json': 'needs the id of an entry in your DLQ',
  'tektree dlq retry payment:0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90': 'needs that entry in your DLQ',
  'tektree dlq retry ID1 ID2 --dry-run': 'needs the ids of entries in your DLQ',
  'tektree trace 0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90': 'needs that event in your store',
  'tektree trace --correlation 5d1e7a20-3c4b-4f1e-8a2d-6b9c0e1f2a34 --json': 'needs that journey in your store',
  'tektree replay --group gamification --shadow --rules ./my-rules': 'needs your rules folder',
  'tektree archive verify --dir /backups/tektree-archive --json': 'needs your archive copy in /backups',
  'TEKTREE_DATA_DIR=/tmp/tt tektree up': 'starts a server with its data in a shared /tmp/tt',
  'tektree up --bus kafka': 'the runtime here is up with redis-server (test/cli/up-kafka.int.test.ts runs up --bus kafka)',
  'tektree up --bus redis --switch-bus': 'the runtime here is up with redis-server already (test/cli/up-bus.int.test.ts covers --switch-bus)',
  'git show main:fixtures/catalog/tektree.asyncapi.yaml > /tmp/old.yaml && tektree catalog diff /tmp/old.yaml fixtures/catalog/tektree.asyncapi.yaml':
    'needs a git checkout of tektree with a main branch; writes /tmp/old.yaml',
}

/** A small shell tokenizer: words, quotes, and the operators that end a command. */
function tokens(line: string): string[] {
  const out: string[] = []
  const re = /\s*(?:'([^']*)'|"([^"]*)"|(\|\||&&|[|;<>])|((?:[^\s'"|;<>&]|&(?!&))+))/gy
  let match: RegExpExecArray | null
  while ((match = re.exec(line)) && match[0].length > 0) out.push(match[1] ?? match[2] ?? match[3] ?? match[4])
  return out
}

/** The argv after `tektree` in each part of a pipeline or list, redirections removed. */
function tektreeCalls(line: string): string[][] {
  const calls: string[][] = []
  let current: string[] = []
  const all = tokens(line)
  for (let i = 0; i < all.length; i++) {
    const t = all[i]
    if (['|', '||', '&&', ';'].includes(t)) {
      calls.push(current)
      current = []
    } else if (t === '<' || t === '>') i++
    else current.push(t)
  }
  calls.push(current)
  return calls.map((words) => words.filter((w) => !/^[A-Z_]+=/.test(w))).filter((words) => words[0] === 'tektree').map((words) => words.slice(1))
}

describe('help examples name real flags', () => {
  it.each(examples.map((e) => [e.text, e.id]))('%s', (text, id) => {
    const calls = tektreeCalls(text)
    expect(calls.length, 'the example runs tektree').toBeGreaterThan(0)
    for (const argv of calls) {
      const words = argv.filter((w) => !w.startsWith('-'))
      const command = manifest.commands[[...words.keys()].map((n) => words.slice(0, words.length - n).join(':')).find((candidate) => manifest.commands[candidate]) ?? '']
      expect(command?.id, `a command in: ${argv.join(' ')}`).toBe(id)
      const known = new Set(['help', ...Object.keys(command.flags), ...Object.values(command.flags).flatMap((f) => (f.char ? [f.char] : []))])
      for (const [i, word] of argv.entries()) {
        if (!word.startsWith('-') || word === '-') continue
        const name = word.replace(/^--?/, '').split('=')[0]
        expect(known.has(name), `${word} is a flag of tektree ${id.replaceAll(':', ' ')}`).toBe(true)
        if (id === 'simulate' && name === 'assert') expect(() => parseThresholds([argv[i + 1]])).not.toThrow()
      }
    }
  })
})

describe('help examples run as written', () => {
  let dir: string
  let env: NodeJS.ProcessEnv

  beforeAll(async () => {
    requireBuild()
    dir = mkdtempSync(path.join(tmpdir(), 'tektree-examples-'))
    const bin = path.join(dir, 'bin')
    mkdirSync(bin)
    writeFileSync(path.join(bin, 'tektree'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`)
    chmodSync(path.join(bin, 'tektree'), 0o755)
    const work = path.join(dir, 'work')
    mkdirSync(work)
    // The files the examples name as the user's own.
    const catalog = await loadCatalog()
    const events = catalog.events.slice(0, 10).map((e, i) => JSON.stringify(exampleEvent(catalog, e.type, {seed: i + 1})))
    writeFileSync(path.join(work, 'events.ndjson'), `${events.join('\n')}\n`)
    for (const name of ['other.asyncapi.yaml', 'catalog-main.yaml', 'catalog-pr.yaml', 'old.yaml', 'new.yaml']) copyFileSync(defaultCatalogPath(), path.join(work, name))
    copyFileSync(path.join(ROOT, 'test', 'fixtures', 'catalogs', 'foreign.asyncapi.yaml'), path.join(work, 'streetlights.asyncapi.yaml'))
    env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      NO_COLOR: '1',
      TEKTREE_DATA_DIR: path.join(work, '.tektree'),
      TEKTREE_CATALOG: '',
      TEKTREE_BUS_URL: '',
      TEKTREE_STORE_URL: '',
      TEKTREE_REDIS_URL: '',
      TEKTREE_MONGO_URL: '',
    }
    for (const key of ['TEKTREE_BUS_URL', 'TEKTREE_STORE_URL', 'TEKTREE_REDIS_URL', 'TEKTREE_MONGO_URL', 'TEKTREE_CATALOG']) delete env[key]
  })

  afterAll(async () => {
    if (!dir) return
    await sh('tektree down --purge').catch(() => undefined)
    rmSync(dir, {recursive: true, force: true})
  })

  function sh(line: string): Promise<{code: number | null; stdout: string; stderr: string}> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', line], {cwd: path.join(dir, 'work'), env, stdio: ['ignore', 'pipe', 'pipe']})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      child.on('error', reject)
      child.on('close', (code) => resolve({code, stdout, stderr}))
    })
  }

  it('each example is either run here or listed with the reason it is not', () => {
    const listed = new Set([...RUN, ...Object.keys(NOT_RUN)])
    expect(examples.map((e) => e.text).filter((text) => !listed.has(text))).toEqual([])
    expect([...listed].filter((text) => !examples.some((e) => e.text === text))).toEqual([])
  })

  it('the runnable ones exit 0, and the search examples find something', async () => {
    const failures: string[] = []
    for (const line of RUN) {
      const result = await sh(line)
      if (result.code !== 0) failures.push(`${line}\n  exit ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join('\n  ')}`)
      if (line.startsWith('tektree search')) {
        const found = line.endsWith('--json') ? JSON.parse(result.stdout).hits.length > 0 : !/No match|index is empty/.test(result.stdout)
        if (!found) failures.push(`${line}\n  found nothing: ${result.stdout.trim()}`)
      }
    }
    expect(failures).toEqual([])
  })
})
