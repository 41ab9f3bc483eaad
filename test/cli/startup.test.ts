/**
 * Start-up (issue 12, item 11): `tektree --help`, `version` and `catalog list` took 1.2-1.4 s because,
 * without a manifest, oclif imported every command module, and with them faker, ajv, prom-client and
 * the rest. These tests check what is loaded, never how long it takes (bench/startup.ts measures
 * that): the manifest must describe dist/ exactly, and those three paths must not load the runtime.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Plugin} from '@oclif/core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ROOT, requireBuild, runCli} from './run-cli.js'

let dir: string
beforeAll(() => {
  requireBuild()
  dir = mkdtempSync(path.join(tmpdir(), 'tektree-startup-'))
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** Command ids from the files under src/commands: catalog/list.ts -> "catalog:list". */
function sourceCommandIds(sub = ''): string[] {
  const ids: string[] = []
  for (const entry of readdirSync(path.join(ROOT, 'src', 'commands', sub), {withFileTypes: true})) {
    if (entry.isDirectory()) ids.push(...sourceCommandIds(path.join(sub, entry.name)))
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) ids.push(path.join(sub, entry.name.slice(0, -3)).split(path.sep).join(':'))
  }
  return ids.sort()
}

describe('oclif.manifest.json', () => {
  it('lists every command of src/commands, and is what dist/ gives now (not stale)', async () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    expect(Object.keys(manifest.commands).sort()).toEqual(sourceCommandIds())
    // The same loader the build uses, from the compiled commands: any flag, example or command
    // changed since the manifest was written shows up as a difference.
    const fresh = new Plugin({root: ROOT, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
    await fresh.load()
    expect(JSON.parse(JSON.stringify(fresh.manifest))).toEqual(manifest)
  })
})

/** Packages that belong to running the platform, not to listing or helping. */
const HEAVY = ['mongodb', 'ioredis', 'better-sqlite3', 'kafkajs', 'ink', 'react', 'ws', 'ajv', '@faker-js/faker', 'prom-client', 'hdr-histogram-js']

async function loadedBy(args: string[]): Promise<{packages: Set<string>; commands: string[]}> {
  const record = path.join(dir, `${args.join('_').replaceAll(/\W/g, '') || 'none'}.txt`)
  const result = await runCli(args, {nodeArgs: ['--import', path.join(ROOT, 'test', 'support', 'record-imports.mjs')], env: {RECORD_IMPORTS_FILE: record}})
  expect(result.code, result.stderr).toBe(0)
  const files = readFileSync(record, 'utf8').split('\n').filter(Boolean)
  const packages = new Set(files.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter((p): p is string => Boolean(p)))
  const commands = [...new Set(files.filter((f) => f.includes(`${path.sep}dist${path.sep}commands${path.sep}`)).map((f) => path.relative(path.join(ROOT, 'dist', 'commands'), f)))].sort()
  return {packages, commands}
}

describe('what start-up loads', () => {
  it.each([
    [['--help'], []],
    [['version'], ['version.js']],
    [['catalog', 'list'], ['catalog/list.js']],
  ])('%j loads its own command only, and none of the runtime', async (args, ownCommand) => {
    const {packages, commands} = await loadedBy(args)
    expect(commands).toEqual(ownCommand)
    expect(HEAVY.filter((name) => packages.has(name))).toEqual([])
  })
})
