/**
 * `tektree tail` and `tektree topics` on a real redis-server: NDJSON when piped, the time filter,
 * a closed pipe, and the topics' figures.
 */
import {execFile, spawn} from 'node:child_process'
import {promisify} from 'node:util'
import {describe, expect, inject, it} from 'vitest'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {exampleEvent} from '../../src/catalog/example.js'
import {toOutgoingMessage} from '../../src/engine/relay.js'

const redisUrl = inject('redisUrl')
const run = promisify(execFile)

describe.skipIf(!redisUrl)(`tektree tail and topics (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  it('tails what is on the bus as NDJSON, by type and time; topics shows each topic; | head ends quietly', async () => {
    // A database of its own: the CLI uses the bus's default key names.
    const url = `${redisUrl}/9`
    const bus = await createRedisBus({url})
    try {
      await bus.client.flushdb()
      const catalog = await loadCatalog()
      await bus.ensureTopics(catalog.topics())
      const events = ['user.registered', 'social.content.liked', 'user.registered'].map((type, seed) => exampleEvent(catalog, type, {seed}))
      // (a few ms apart: across streams Redis orders nothing within one millisecond)
      for (const e of events.slice(0, 2)) {
        await bus.publish([toOutgoingMessage(catalog, e, Date.now())])
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      const between = new Date().toISOString()
      await new Promise((resolve) => setTimeout(resolve, 50))
      await bus.publish([toOutgoingMessage(catalog, events[2], Date.now())])
      const args = ['--bus-url', url, '--store-url', 'memory:']
      const cli = (extra: string[]) => run('./bin/run.js', [...extra, ...args], {env: {...process.env, NO_COLOR: '1'}})
      const ids = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).event_id)
      expect(ids((await cli(['tail'])).stdout)).toEqual(events.map((e) => e.event_id))
      expect(ids((await cli(['tail', 'user.*'])).stdout)).toEqual([events[0].event_id, events[2].event_id])
      expect(ids((await cli(['tail', '--from', between])).stdout)).toEqual([events[2].event_id])
      expect(ids((await cli(['tail', '--limit', '1'])).stdout)).toEqual([events[0].event_id])
      const unknown = await cli(['tail', 'user.registerd']).catch((e: {code: number; stderr: string}) => e)
      expect(unknown).toMatchObject({code: 2})
      expect((unknown as {stderr: string}).stderr).toContain('user.registered')

      // --follow into a pipe closed after the first line: ends, exit 0, no EPIPE
      const child = spawn('./bin/run.js', ['tail', '--follow', '--from', 'beginning', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
      let stderr = ''
      child.stderr.on('data', (d) => (stderr += d))
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
      child.stdout.destroy()
      await bus.publish([toOutgoingMessage(catalog, exampleEvent(catalog, 'user.registered', {seed: 9}), Date.now())])
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
      expect(code).toBe(0)
      expect(stderr).not.toContain('EPIPE')

      const topics = JSON.parse((await cli(['topics', '--json'])).stdout) as Array<{name: string; length: number; lastAt: number | null}>
      const user = topics.find((t) => t.name === catalog.get('user.registered')!.topic)!
      expect(user.length).toBe(3)
      expect(user.lastAt).not.toBeNull()
      const text = (await cli(['topics'])).stdout
      for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
    } finally {
      await bus.client.flushdb()
      await bus.close()
    }
  })
})
