/**
 * A closed pipe ends quietly (issue 12, item 12): `tektree catalog validate < file | head -1` used to
 * print "Error: write EPIPE" and exit 1. The reader here closes stdout the way head does: after the
 * first line, or before anything was written.
 */
import {spawn} from 'node:child_process'
import {openSync, closeSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BIN, ROOT, requireBuild} from './run-cli.js'

let dir: string
let badFile: string
beforeAll(() => {
  requireBuild()
  dir = mkdtempSync(path.join(tmpdir(), 'tektree-pipe-'))
  badFile = path.join(dir, 'bad.ndjson')
  // Every line is invalid, so validate writes one error contract per line: ~3 MB, far more than a
  // pipe buffer, so the writer is still writing when the reader goes.
  writeFileSync(badFile, `${Array.from({length: 20_000}, (_, i) => JSON.stringify({event_type: 'user.registered', n: i})).join('\n')}\n`)
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

/** Spawns the CLI with stdin from `stdinFile`; closes its stdout after the first line ('line') or at once ('now'). */
function runAndClose(args: string[], when: 'line' | 'now', stdinFile?: string): Promise<{code: number | null; stderr: string; firstLine: string}> {
  return new Promise((resolve, reject) => {
    const fd = stdinFile ? openSync(stdinFile, 'r') : 'ignore'
    const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1', TEKTREE_CATALOG: ''}, stdio: [fd, 'pipe', 'pipe']})
    if (typeof fd === 'number') closeSync(fd)
    const stdout = child.stdout!
    let stderr = ''
    let firstLine = ''
    child.stderr!.on('data', (d) => (stderr += d))
    if (when === 'now') stdout.destroy()
    else {
      let buffered = ''
      stdout.on('data', (d) => {
        buffered += d
        const end = buffered.indexOf('\n')
        if (end >= 0 && !firstLine) {
          firstLine = buffered.slice(0, end)
          stdout.destroy()
        }
      })
    }
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stderr, firstLine}))
  })
}

describe('a closed stdout pipe ends the command quietly with exit 0', () => {
  it('catalog validate < file | head -1', async () => {
    const result = await runAndClose(['catalog', 'validate'], 'line', badFile)
    expect(JSON.parse(result.firstLine)).toMatchObject({error: {code: 'VALIDATION_FAILED'}})
    expect(result.stderr).not.toMatch(/EPIPE|Error/)
    expect(result.code).toBe(0)
  })

  it('catalog validate FILE --json with the reader gone before anything was written', async () => {
    const result = await runAndClose(['catalog', 'validate', badFile, '--json', '--max-errors', '20000'], 'now')
    expect(result.stderr).not.toMatch(/EPIPE|Error/)
    expect(result.code).toBe(0)
  })

  it('catalog list | head -1, and with the reader gone before anything was written', async () => {
    const line = await runAndClose(['catalog', 'list'], 'line')
    expect(line.firstLine).toMatch(/31 event types/)
    expect(line.stderr).not.toMatch(/EPIPE|Error/)
    expect(line.code).toBe(0)
    const now = await runAndClose(['catalog', 'list'], 'now')
    expect(now.stderr).not.toMatch(/EPIPE|Error/)
    expect(now.code).toBe(0)
  })
})
