/**
 * What `tektree up` says after a reconcile that republished events, in-process with the runtime
 * faked: the advice to rebuild the leaderboards from the log only where they live on the bus's
 * server (Redis lost them with the events). On Kafka they live in the store, which lost nothing, and
 * `up --bus kafka` gave the advice all the same.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, afterEach, beforeEach, describe, expect, it, vi} from 'vitest'
import type {RuntimeDescription, RuntimePartInfo} from '../../src/core/runtime.js'
import type {ReconcileResult} from '../../src/engine/reconcile.js'
import type {UpResult} from '../../src/embedded/index.js'
import {DISCOVERY_VERSION} from '../../src/embedded/discovery.js'

const fake = vi.hoisted(() => ({up: undefined as unknown, description: undefined as unknown}))
vi.mock('../../src/embedded/index.js', async (importOriginal) => ({...(await importOriginal<object>()), upEmbeddedRuntime: async () => fake.up}))
vi.mock('../../src/adapters/open.js', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  openRuntime: async () => ({store: {}, bus: {}, describe: () => fake.description, close: async () => undefined}),
}))
vi.mock('../../src/engine/reconcile.js', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  reconcile: async (): Promise<ReconcileResult> => ({checked: 80, missing: 3, republished: 3, trimmed: 0, skipped: 0, dryRun: false, since: null, sample: []}),
}))

const {default: Up} = await import('../../src/commands/up.js')
const {LEADERBOARDS_HINT} = await import('../../src/commands/reconcile.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tektree-up-hint-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const store: RuntimePartInfo = {kind: 'sqlite', location: `sqlite:${join(dir, 'store.db')}`, origin: 'embedded'}

function started(part: 'redis' | 'kafka', url: string): UpResult {
  return {
    state: 'started',
    discoveryFile: join(dir, 'runtime.json'),
    discovery: {
      version: DISCOVERY_VERSION,
      data_dir: dir,
      [part]: {url, port: Number(new URL(url).port), pid: 4242, version: part === 'kafka' ? 'kafka 4.1.2 (KRaft)' : 'redis-server 7.2.4', data_dir: join(dir, part), persistent: true, command: part},
    },
    started: [part],
    kept: [],
    unavailable: [],
    notes: [],
  }
}

async function upOutput(): Promise<string> {
  let out = ''
  const consoleLog = console.log
  const errWrite = process.stderr.write
  // oclif's this.log() writes with console.log.
  console.log = (...args: unknown[]) => {
    out += `${args.map(String).join(' ')}\n`
  }
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    await Up.run(['--data-dir', dir], root)
  } finally {
    console.log = consoleLog
    process.stderr.write = errWrite
  }
  // Lines are fitted to 80 columns: compare the words.
  return out.replace(/\s+/g, ' ')
}

describe('tektree up: the leaderboards hint after a reconcile that republished events', () => {
  beforeEach(() => {
    process.exitCode = undefined
  })
  afterEach(() => {
    process.exitCode = undefined
  })

  it('on Kafka (the leaderboards in the store) it reports the reconcile and gives no rebuild advice', async () => {
    const bus: RuntimePartInfo = {kind: 'kafka', location: 'kafka://127.0.0.1:39092', origin: 'embedded'}
    fake.up = started('kafka', bus.location)
    fake.description = {bus, store, leaderboards: {...store, kind: 'sqlite (projections)'}} satisfies RuntimeDescription
    const out = await upOutput()
    expect(out).toContain('Reconciled 80 published event(s) with the bus: 3 missing, 3 republished.')
    expect(out).not.toContain('rebuild them from the log')
    expect(process.exitCode ?? 0).toBe(0)
  })

  it('on Redis (the leaderboards on the same server) it says to rebuild them from the log', async () => {
    const bus: RuntimePartInfo = {kind: 'redis', location: 'redis://127.0.0.1:36379', origin: 'embedded'}
    fake.up = started('redis', bus.location)
    fake.description = {bus, store, leaderboards: {...bus}} satisfies RuntimeDescription
    const out = await upOutput()
    expect(out).toContain('Reconciled 80 published event(s) with the bus: 3 missing, 3 republished.')
    expect(out).toContain(LEADERBOARDS_HINT.replace(/\s+/g, ' '))
  })
})
