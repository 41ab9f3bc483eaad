/**
 * The catalog commands as a user runs them: `node bin/run.js catalog ...` on the built dist/
 * (`npm test` builds first). Few spawns: each costs about half a second.
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = path.join(ROOT, 'bin', 'run.js')

function run(args: string[], stdin?: string): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', TEKTREE_CATALOG: ''}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
    child.stdin.end(stdin ?? '')
  })
}

const STACK = /\n\s+at .+:\d+:\d+/

let dir: string
beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'commands', 'catalog', 'validate.js'))) throw new Error('dist/ is not built: run `npm run build` first')
  dir = await mkdtemp(path.join(tmpdir(), 'tektree-catalog-cli-'))
})
afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

describe('tektree catalog (CLI)', () => {
  it('list --json gives the 31 events', async () => {
    const {code, stdout} = await run(['catalog', 'list', '--json'])
    expect(code).toBe(0)
    const result = JSON.parse(stdout)
    expect(result.events).toHaveLength(31)
    expect(result.events.find((e: any) => e.type === 'user.registered')).toMatchObject({producer: 'user', retention: {category: 'user', period: 'indefinite'}})
  })

  it('show: an alias resolves and the example validates; an unknown type exits 2 with suggestions and no stack unless --debug', async () => {
    const shown = await run(['catalog', 'show', 'knowledge.insight.shared', '--seed', '3', '--json'])
    expect(shown.code).toBe(0)
    const {event, example} = JSON.parse(shown.stdout)
    expect(event.type).toBe('knowledge.insight.published')
    const catalog = await loadCatalog()
    expect(createValidator(catalog).validate(example).ok).toBe(true)
    expect(example).toEqual(exampleEvent(catalog, 'knowledge.insight.published', {seed: 3}))

    const unknown = await run(['catalog', 'show', 'user.registerd'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('Unknown event type "user.registerd"')
    expect(unknown.stderr).toContain('user.registered')
    expect(unknown.stderr).not.toMatch(STACK)
    const debug = await run(['catalog', 'show', 'user.registerd', '--debug'])
    expect(debug.code).toBe(2)
    expect(debug.stderr).toMatch(STACK)
  })

  it('validate streams a file: one error contract per bad line, a summary, exit 1; --json from stdin', async () => {
    const catalog = await loadCatalog()
    const good = catalog.events.slice(0, 5).map((e, i) => JSON.stringify(exampleEvent(catalog, e.type, {seed: i})))
    const badIp = JSON.stringify({...exampleEvent(catalog, 'user.authenticated', {seed: 9}), metadata: {ip: '10.0.0.1'}})
    const text = [good[0], good[1], '', '{"event_id":', good[2], badIp, good[3], good[4]].join('\n') + '\n'
    const file = path.join(dir, 'events.ndjson')
    await writeFile(file, text)

    const human = await run(['catalog', 'validate', file])
    expect(human.code).toBe(1)
    const errors = human.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(errors.map((e) => [e.error.code, e.error.details.line, e.error.details.path])).toEqual([
      ['INVALID_JSON', 4, '$'],
      ['VALIDATION_FAILED', 6, '$.metadata.ip'],
    ])
    expect(human.stderr).toContain('5 valid, 2 invalid of 7 lines')

    const json = await run(['catalog', 'validate', '--json'], text)
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({ok: false, valid: 5, invalid: 2, total: 7, blank: 1, byCode: {INVALID_JSON: 1, VALIDATION_FAILED: 1}})

    const missing = await run(['catalog', 'validate', path.join(dir, 'nope.ndjson')])
    expect(missing.code).toBe(2)
    expect(missing.stderr).not.toMatch(STACK)
  })

  it('diff exits 1 on an un-bumped breaking change and 0 once the major version moves', async () => {
    // Copies live in a temp dir: their relative-file $refs must point back at the fixtures.
    const source = (await readFile(path.join(ROOT, 'test/fixtures/catalogs/mini.asyncapi.yaml'), 'utf8')).replace(/\.\/schemas\//g, `${path.join(ROOT, 'test/fixtures/catalogs/schemas')}/`)
    const oldFile = path.join(dir, 'old.yaml')
    await writeFile(oldFile, source)
    // tier loses "team": an enum narrowed, still version 1.0.0
    const narrowed = source.replace('enum: [free, pro, team]', 'enum: [free, pro]')
    const newFile = path.join(dir, 'new.yaml')
    await writeFile(newFile, narrowed)
    const failing = await run(['catalog', 'diff', oldFile, newFile, '--json'])
    expect(failing.code).toBe(1)
    const result = JSON.parse(failing.stdout)
    expect(result.summary).toMatchObject({breaking: 1, unbumpedBreaking: 1, ok: false})
    expect(result.changes[0]).toMatchObject({type: 'user.registered', change: 'enum narrowed', path: '$.payload.tier', consumers: ['email', 'gamification']})

    const bumped = narrowed.replace(/(user\.registered:[\s\S]*?x-tektree:\n\s+version: )1\.0\.0/, '$12.0.0')
    await writeFile(newFile, bumped)
    const passing = await run(['catalog', 'diff', oldFile, newFile])
    expect(passing.stdout).toContain('enum narrowed')
    expect(passing.code).toBe(0)
    for (const line of passing.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80)
  })
})
