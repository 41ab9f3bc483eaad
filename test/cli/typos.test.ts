/**
 * A typo gets a suggestion and a short message (issue 12, item 18): an unknown command, flag, flag
 * value, scenario name or scenario field names what is wrong and the closest known name, in a few
 * lines, exit 2, never the whole usage text.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {closest, didYouMean, editDistance} from '../../src/core/suggest.js'
import {requireBuild, runCli} from './run-cli.js'

let dir: string
beforeAll(() => {
  requireBuild()
  dir = mkdtempSync(path.join(tmpdir(), 'tektree-typos-'))
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const lines = (text: string) => text.trimEnd().split('\n')

describe('closest names', () => {
  it('counts insertions, deletions, substitutions and swaps as one edit', () => {
    expect(editDistance('stedy', 'steady')).toBe(1)
    expect(editDistance('lsit', 'list')).toBe(1)
    expect(editDistance('populaton', 'population')).toBe(1)
    expect(editDistance('', 'abc')).toBe(3)
  })

  it('suggests only what is close, best first, case-insensitively', () => {
    expect(closest('simulat', ['simulate', 'services', 'status'])).toEqual(['simulate'])
    expect(closest('STEDY', ['steady', 'steady-1k', 'smoke'])).toEqual(['steady'])
    expect(closest('frobnicate', ['simulate', 'search'])).toEqual([])
    expect(closest('liked', ['social.content.liked', 'user.registered'], {substrings: true, maxDistance: 3})).toEqual(['social.content.liked'])
    expect(didYouMean(['a', 'b', 'c'], (n) => `--${n}`)).toBe(' Did you mean --a, --b or --c?')
    expect(didYouMean([])).toBe('')
  })
})

describe('typos on the command line', () => {
  it('an unknown command suggests the closest one', async () => {
    const top = await runCli(['simulat'])
    expect(top.code).toBe(2)
    expect(lines(top.stderr)).toEqual(['Error: "simulat" is not a tektree command. Did you mean `tektree simulate`?', 'See `tektree --help` for the commands.'])
    const sub = await runCli(['catalog', 'lst'])
    expect(sub.code).toBe(2)
    expect(sub.stderr).toContain('Did you mean `tektree catalog list`?')
    // `tektree help simulat`: there is no help command; the help is a flag.
    const help = await runCli(['help', 'simulat'])
    expect(help.code).toBe(2)
    expect(lines(help.stderr)[0]).toBe('Error: There is no help command: use `tektree simulate --help`.')
    const flag = await runCli(['--jsn'])
    expect(flag.code).toBe(2)
    expect(lines(flag.stderr)[0]).toBe('Error: Unknown flag --jsn: tektree itself has only --help and --version.')
  })

  it('an unknown flag is two lines: the flag, the closest one, where the usage is', async () => {
    const result = await runCli(['simulate', '--scenari', 'smoke'])
    expect(result.code).toBe(2)
    expect(lines(result.stderr)).toEqual(['Error: Unknown flag --scenari. Did you mean --scenario?', 'See `tektree simulate --help`.'])
    expect(result.stdout).toBe('')
  })

  it('a flag value that is not one of its options suggests the closest', async () => {
    const result = await runCli(['search', 'kafka', '--kind', 'questin'])
    expect(result.code).toBe(2)
    expect(lines(result.stderr)[0]).toMatch(/--kind=questin to be one of: question, .* Did you mean question\?$/)
    expect(lines(result.stderr)).toHaveLength(2)
  })

  it('--scenario with a misspelt name suggests the shipped one', async () => {
    const result = await runCli(['simulate', '--scenario', 'stedy', '--in-process'])
    expect(result.code).toBe(2)
    expect(lines(result.stderr)[0]).toBe('Error: Unknown scenario "stedy". Did you mean steady?')
  })

  it('a scenario file with a misspelt field names that field and the closest known one', async () => {
    const file = path.join(dir, 'typo.yaml')
    writeFileSync(file, 'name: typo\npopulaton:\n  users: 10\nrate:\n  stages:\n    - {duration: 1s, target: 10}\n')
    const result = await runCli(['simulate', '--scenario', file, '--in-process'], {cwd: dir})
    expect(result.code).toBe(2)
    expect(lines(result.stderr)[0]).toBe('Error: typo.yaml: populaton is not a known field. Did you mean population?')
  })
})
