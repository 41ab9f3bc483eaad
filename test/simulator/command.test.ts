/**
 * `tektree simulate` in-process (no spawned CLI): assertions decide the exit code.
 */
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterEach, describe, expect, it} from 'vitest'
import Simulate from '../../src/commands/simulate.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'simulate-cmd-'))
const scenarioFile = join(dir, 'tiny.yaml')
writeFileSync(
  scenarioFile,
  ['name: tiny', 'seed: 3', 'population: {users: 30, areas: 2}', 'rate: {shape: step, stages: [{duration: 2s, target: 1000}]}', 'events: 150', 'services: []'].join('\n'),
)

async function simulate(...argv: string[]): Promise<{exitCode: number; error?: Error & {oclif?: {exit?: number}}}> {
  process.exitCode = undefined
  const write = process.stdout.write
  const errWrite = process.stderr.write
  process.stdout.write = (() => true) as typeof process.stdout.write
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    await Simulate.run(['--scenario', scenarioFile, '--in-process', ...argv], root)
    return {exitCode: Number(process.exitCode ?? 0)}
  } catch (error) {
    const e = error as Error & {oclif?: {exit?: number}}
    return {exitCode: e.oclif?.exit ?? Number(process.exitCode ?? 1), error: e}
  } finally {
    process.stdout.write = write
    process.stderr.write = errWrite
  }
}

afterEach(() => {
  process.exitCode = undefined
})

describe('tektree simulate (assertion exit codes)', () => {
  it('all assertions hold -> 0, and the JSON report is written', async () => {
    const report = join(dir, 'ok.json')
    const {exitCode} = await simulate('--assert', 'events == 150', '--assert', 'errors == 0', '--report', report)
    expect(exitCode).toBe(0)
    const json = JSON.parse(readFileSync(report, 'utf8'))
    expect(json.events.simulated).toBe(150)
    expect(json.assertions.map((a: {ok: boolean}) => a.ok)).toEqual([true, true])
  })

  it('a failing assertion -> 1', async () => {
    const {exitCode} = await simulate('--assert', 'events < 100')
    expect(exitCode).toBe(1)
  })

  it('an unmeasured metric fails (verify without services) -> 1', async () => {
    const {exitCode} = await simulate('--assert', 'verify_differences == 0')
    expect(exitCode).toBe(1)
  })

  it('a bad assertion or unknown metric -> 2, before any traffic', async () => {
    expect((await simulate('--assert', 'latency < 5ms')).exitCode).toBe(2)
    expect((await simulate('--assert', 'dlq <')).exitCode).toBe(2)
  })

  it('a bad scenario file -> 2', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'name: bad\npopulation: {users: 1}\nrate: {stages: [{duration: 1s, target: -1}]}\n')
    const {exitCode} = await simulate('--scenario', bad)
    expect(exitCode).toBe(2)
  })
})
