/**
 * `tektree trace` takes a DLQ entry's id (GROUP:EVENT_ID, as `dlq list --flat` prints it) for its
 * event: the hint of its own "no such event" sent users to that list, whose ids it then refused.
 */
import {randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {storeWithOneEvent} from './one-event-store.js'
import {requireBuild, runCli} from './run-cli.js'

describe('trace GROUP:EVENT_ID', () => {
  it('traces the entry\'s event', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-trace-'))
    try {
      const {file, eventId: id} = await storeWithOneEvent(dir)
      const args = ['--store-url', `sqlite:${file}`, '--bus-url', 'memory:', '--json']
      const byEntry = await runCli(['trace', `payment:${id}`, ...args])
      expect(byEntry.code, byEntry.stderr).toBe(0)
      expect(JSON.parse(byEntry.stdout).correlation_id).toBe(id)
      const unknown = await runCli(['trace', `payment:${randomUUID()}`, ...args])
      expect(unknown.code).toBe(2)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
