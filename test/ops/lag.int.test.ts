/**
 * `tektree lag` on a real redis-server: its figures are those Redis itself reports (XINFO GROUPS,
 * XPENDING), the --max-lag gate's exit code, and an unknown group named with the known ones.
 */
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {Redis} from 'ioredis'
import {describe, expect, inject, it} from 'vitest'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import {lagRows, sampleLag} from '../../src/ops/lag.js'
import {uniqueName} from '../contracts/helpers.js'
import {deleteTestKeys} from '../support/redis-server.js'

const redisUrl = inject('redisUrl')
const run = promisify(execFile)

describe.skipIf(!redisUrl)(`tektree lag (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  it('agrees with XINFO GROUPS and XPENDING, partition by partition', async () => {
    const prefix = uniqueName('t')
    const bus = await createRedisBus({url: redisUrl!, prefix})
    const admin = new Redis(redisUrl!)
    try {
      const topic = 'tektree.test'
      await bus.ensureTopics([{name: topic, partitions: 3}])
      await bus.publish(Array.from({length: 60}, (_, i) => ({topic, key: `k${i % 7}`, value: String(i), headers: {event_id: String(i)}})))
      const sub = await bus.subscribe({group: 'svc', consumer: 'c1', topics: [topic], batchSize: 10, blockMs: 50})
      for (let i = 0; i < 3; i++) {
        const got = await sub.next()
        await sub.ack(got.slice(0, 4))
      }
      const rows = lagRows(null, await sampleLag(bus, {group: 'svc'}), {partitions: true}).filter((r) => r.partition !== null)
      expect(rows).toHaveLength(3)
      for (const row of rows) {
        const stream = bus.streamKey(topic, row.partition!)
        const groups = (await admin.call('XINFO', 'GROUPS', stream)) as unknown[][]
        const info = Object.fromEntries(Array.from({length: groups[0].length / 2}, (_, i) => [groups[0][2 * i], groups[0][2 * i + 1]]))
        const [pendingCount] = (await admin.call('XPENDING', stream, 'svc')) as [number]
        expect(row.pending).toBe(Number(info.pending))
        expect(row.pending).toBe(Number(pendingCount))
        // Redis' own lag when it knows it; else what follows the group's last delivered id
        const after = (await admin.call('XRANGE', stream, `(${info['last-delivered-id']}`, '+')) as unknown[]
        expect(row.lag).toBe(info.lag === null ? after.length : Number(info.lag))
        expect(row.lag).toBe(after.length)
        expect(row.consumers).toEqual(['c1'])
      }
      await sub.close()
    } finally {
      admin.disconnect()
      await bus.close()
      await deleteTestKeys(redisUrl!, prefix)
    }
  })

  it('--max-lag gates on the backlog (exit 1) and an unknown group is a usage error naming the known ones', async () => {
    // A database of its own: the CLI uses the bus's default key names.
    const url = `${redisUrl}/7`
    const bus = await createRedisBus({url})
    try {
      await bus.client.flushdb()
      await bus.ensureTopics([{name: 'tektree.test', partitions: 1}])
      await bus.publish([{topic: 'tektree.test', key: 'k', value: 'v', headers: {}}])
      await (await bus.subscribe({group: 'late', consumer: 'c', topics: ['tektree.test']})).close()
      const cli = (extra: string[]) =>
        run('./bin/run.js', ['lag', ...extra, '--bus-url', url, '--store-url', 'memory:', '--interval', '100ms'], {env: {...process.env, NO_COLOR: '1'}}).then(
          (r) => ({code: 0, stdout: r.stdout, stderr: r.stderr}),
          (e: {code: number; stdout: string; stderr: string}) => ({code: e.code, stdout: e.stdout, stderr: e.stderr}),
        )
      const gated = await cli(['late', '--max-lag', '0', '--json'])
      expect(gated.code).toBe(1)
      expect(JSON.parse(gated.stdout).over).toEqual([{group: 'late', topic: 'tektree.test', backlog: 1}])
      expect((await cli(['late', '--max-lag', '1'])).code).toBe(0)
      const unknown = await cli(['lat'])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain('No consumer group "lat"')
      expect(unknown.stderr).toContain('No consumer group "lat" on this bus. Did you mean late?')
    } finally {
      await bus.client.flushdb()
      await bus.close()
    }
  })
})
