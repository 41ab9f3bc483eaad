/**
 * `simulate --report` to a path it cannot write is refused before the run (it threw the whole run
 * away at its end: no summary, an "unexpected error", exit 1).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {requireBuild, runCli} from './run-cli.js'

describe('simulate --report', () => {
  it('refuses a path it cannot write before any traffic, naming why', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-report-'))
    try {
      for (const [report, why] of [
        [path.join(dir, 'missing', 'r.json'), /folder .*missing does not exist/],
        [dir, /is a folder/],
      ] as const) {
        const result = await runCli(['simulate', '--in-process', '--duration', '30s', '--rate', '10', '--report', report], {cwd: dir})
        expect({code: result.code, stdout: result.stdout}).toEqual({code: 2, stdout: ''})
        expect(result.stderr).toMatch(/Cannot write the report to/)
        expect(result.stderr).toMatch(why)
        expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /)
      }
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
