/**
 * Event data is untrusted: `tektree services` on a real redis-server, poison written straight to the
 * bus carrying terminal escape sequences (OSC 52 writes the clipboard, ESC [ 2J clears the screen),
 * NUL and C1 controls. The dead-letter lines it prints show them escaped, never raw.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, inject, it} from 'vitest'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {ROOT, BIN} from '../cli/run-cli.js'

const redisUrl = inject('redisUrl')

/** Control characters other than the \n that ends a line. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

describe.skipIf(!redisUrl)(`tektree services: untrusted bytes in its lines (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  it('prints the dead-letter lines of hostile poison with every control character escaped', async () => {
    // A database of its own: the CLI uses the bus's default key names.
    const url = `${redisUrl}/13`
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-hostile-'))
    const bus = await createRedisBus({url})
    let child: ReturnType<typeof spawn> | undefined
    try {
      await bus.client.flushdb()
      const catalog = await loadCatalog()
      await bus.ensureTopics(catalog.topics())
      const topic = catalog.get('social.content.liked')!.topic
      let stdout = ''
      let stderr = ''
      child = spawn(process.execPath, [BIN, 'services', '--only', 'gamification', '--workers', '1', '--status-every', '0', '--bus-url', url, '--store-url', `sqlite:${path.join(dir, 'store.db')}`, '--mail-dir', dir], {
        cwd: ROOT,
        env: {...process.env, NO_COLOR: '1', TEKTREE_CATALOG: ''},
      })
      child.stdout!.on('data', (d) => (stdout += d))
      child.stderr!.on('data', (d) => (stderr += d))
      const closed = new Promise<number | null>((resolve) => child!.on('close', resolve))
      const until = async (done: () => boolean, what: string) => {
        for (let i = 0; i < 600 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
        if (!done()) throw new Error(`waited for ${what}:\n${stdout}\n${stderr}`)
      }
      await until(() => stdout.includes('Running'), 'the services to run')

      // Unparseable (the JSON parser's message quotes its first bytes) with a hostile type header; and
      // JSON that is no envelope, whose type and id the DLQ record takes from it.
      await bus.publish([
        {topic, key: 'k1', value: '\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[2J\u0000\u009b31m', headers: {event_type: 'x\u001b[2Jy', published_at: String(Date.now())}},
        {topic, key: 'k2', value: JSON.stringify({event_type: 'social.\u001b]0;owned\u0007', event_id: '\u009b2J\u0000id', payload: {}}), headers: {published_at: String(Date.now())}},
      ])
      // (lines are wrapped at 80 columns)
      const text = () => stdout.replace(/\s+/g, ' ')
      await until(() => (text().match(/gamification: dead-lettered/g) ?? []).length >= 2, 'two dead-letter lines')
      child.kill('SIGTERM')
      expect(await closed).toBe(0)

      for (const output of [stdout, stderr]) expect(output).not.toMatch(RAW_CONTROL)
      // Shown, not dropped: the operator sees what arrived.
      expect(text()).toContain('gamification: dead-lettered x\\u001b[2Jy')
      expect(text()).toContain('Not valid JSON: Unexpected token \'\\u001b\', "\\u001b]52;c;')
      expect(text()).toContain('gamification: dead-lettered social.\\u001b]0;owned\\u0007 \\u009b2J\\u0000id:')
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await bus.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
