/**
 * `tektree verify` with differences while events are still in flight says so: on a system the
 * services have not caught up with, thousands of differences came with no hint that they were
 * the backlog's.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {storeWithOneEvent} from './one-event-store.js'
import {requireBuild, runCli} from './run-cli.js'

describe('verify beside a backlog', () => {
  it('counts what is in flight and says to run it again once drained', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-verify-'))
    try {
      const {file} = await storeWithOneEvent(dir)
      const result = await runCli(['verify', '--store-url', `sqlite:${file}`, '--bus-url', 'memory:', '--json'])
      expect(result.code).toBe(1)
      const verdict = JSON.parse(result.stdout)
      expect(verdict.differences.length).toBeGreaterThan(0)
      expect(verdict.in_flight).toBe(1)
      expect(result.stderr).toMatch(/1 event\(s\) are still in flight.*once `tektree lag` shows 0/s)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
