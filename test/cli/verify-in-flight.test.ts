/**
 * `tektree verify` with differences while events are still in flight says so: on a system the
 * services have not caught up with, thousands of differences came with no hint that they were
 * the backlog's.
 */
import {randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import {requireBuild, runCli} from './run-cli.js'

describe('verify beside a backlog', () => {
  it('counts what is in flight and says to run it again once drained', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-verify-'))
    try {
      const file = path.join(dir, 'store.db')
      const store = await createSqliteStore({path: file})
      const id = randomUUID()
      // appended, in the outbox, handled by no service yet
      await store.events.append([
        {
          event_id: id,
          event_type: 'user.registered',
          event_version: '1.0.0',
          timestamp: new Date().toISOString(),
          source_service: 'user',
          payload: {user_id: randomUUID(), username: 'ada_l', email_hash: `sha256:${'0'.repeat(64)}`, signup_source: 'web'},
          trace_id: randomUUID().replaceAll('-', ''),
          correlation_id: id,
          causation_id: null,
          producer_id: 'test',
          metadata: {},
        },
      ])
      await store.close()
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
