/**
 * `tektree down --purge` refuses while another process has the store file open (a hostile try:
 * `tektree services` went on with a deleted store file, and with its bus gone for good: a purged
 * redis-server comes back on another port).
 */
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {createSqliteStore} from '../../src/adapters/sqlite/store.js'
import {ROOT, requireBuild, runCli} from './run-cli.js'

describe.skipIf(!existsSync('/proc/self/fd'))(`down --purge beside a process using the store${existsSync('/proc/self/fd') ? '' : ' (skipped: no /proc to tell)'}`, () => {
  it('refuses, naming the process, deletes nothing (the servers are stopped as by down); purges once it is gone', async () => {
    requireBuild()
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-purge-'))
    const dataDir = path.join(dir, '.tektree')
    mkdirSync(dataDir)
    const file = path.join(dataDir, 'store.db')
    await (await createSqliteStore({path: file})).close()
    // Another process holding the file open, as `tektree services` does.
    const holder = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(file)}); process.stdout.write('open\\n'); setInterval(() => db.prepare('select 1').get(), 1000)`], {cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit']})
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve))
      const env = {TEKTREE_DATA_DIR: dataDir, TEKTREE_BUS_URL: '', TEKTREE_STORE_URL: ''}
      const refused = await runCli(['down', '--purge'], {cwd: dir, env})
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain(`pid ${holder.pid}`)
      expect(refused.stderr).toContain('has the store file')
      expect(existsSync(file)).toBe(true)
      holder.kill('SIGKILL')
      await new Promise((resolve) => holder.once('exit', resolve))
      const purged = await runCli(['down', '--purge'], {cwd: dir, env})
      expect(purged.code, purged.stderr).toBe(0)
      expect(existsSync(file)).toBe(false)
    } finally {
      holder.kill('SIGKILL')
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
