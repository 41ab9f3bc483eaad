/**
 * A data directory that cannot be written (here a file in its place; a read-only disk gives EROFS
 * the same way) is a user error naming it, exit 2, for up and down as for every other command:
 * they said "EROFS ... (an unexpected error; run again with --debug)".
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {requireBuild, runCli} from './run-cli.js'

describe('an unwritable data directory', () => {
  it('up and down name it and say what to do (exit 2, no stack)', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-rodir-'))
    try {
      writeFileSync(path.join(dir, 'a-file'), '')
      const dataDir = path.join(dir, 'a-file', '.tektree')
      for (const command of ['up', 'down']) {
        const result = await runCli([command], {cwd: dir, env: {TEKTREE_DATA_DIR: dataDir, TEKTREE_BUS_URL: '', TEKTREE_STORE_URL: ''}})
        expect({command, code: result.code}).toEqual({command, code: 2})
        expect(result.stderr).toContain(`Cannot write the data directory ${dataDir}`)
        expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /)
      }
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
