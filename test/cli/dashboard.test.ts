/**
 * `tektree dashboard` without a terminal: it says so and where to look instead (exit 2), and
 * `--help` does not load Ink or React (the screen's modules are imported when a screen is drawn).
 */
import {describe, expect, it} from 'vitest'
import {requireBuild, runCli} from './run-cli.js'

describe('tektree dashboard', () => {
  it('piped, it says it needs a terminal and points to lag --watch and --json (exit 2)', async () => {
    requireBuild()
    const result = await runCli(['dashboard', '--in-process'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('draws a live screen on a terminal, and stdout is not a terminal')
    expect(result.stderr).toContain('tektree lag --watch')
    expect(result.stderr).toContain('--json')
    expect(result.stdout).toBe('')
  })

  it('simulate --dashboard and services --dashboard refuse a pipe the same way, before any work', async () => {
    for (const args of [
      ['simulate', '--dashboard', '--in-process'],
      ['services', '--dashboard', '--in-process'],
    ]) {
      const result = await runCli(args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr).toContain(`tektree ${args[0]} --dashboard draws a live screen on a terminal`)
      expect(result.stderr).toContain('tektree lag --watch')
    }
  })

  it('--json: one reading of the figures as data, on any runtime', async () => {
    const result = await runCli(['dashboard', '--json', '--in-process'])
    expect(result.code, result.stderr).toBe(0)
    const data = JSON.parse(result.stdout)
    expect(data.runtime.bus).toEqual({kind: 'memory', location: 'in-process'})
    expect(data).toMatchObject({processes: [], groups: [], dlq: {total: 0, threshold: 100}})
  })
})
