/**
 * `tektree dlq redrive` on real redis-server with the SQLite store: the entry reaches its group
 * alone (a second group of the same event type does not see it again) and leaves the DLQ.
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {describe, expect, inject, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {exampleEvent} from '../../src/catalog/example.js'
import {createValidator} from '../../src/catalog/validate.js'
import {NonRetryableError} from '../../src/core/errors.js'
import {startConsumer} from '../../src/engine/consumer.js'
import {createPublisher} from '../../src/engine/publisher.js'
import {toOutgoingMessage} from '../../src/engine/relay.js'
import {until} from '../runtime/consumer-harness.js'

const redisUrl = inject('redisUrl')
const run = promisify(execFile)

describe.skipIf(!redisUrl)(`tektree dlq redrive (${redisUrl ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  it('sends an entry back to its group only, which clears it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-redrive-'))
    // A database of its own: the CLI uses the bus's default key names.
    const busUrl = `${redisUrl}/8`
    const storeUrl = `sqlite:${join(dir, 'store.db')}`
    const runtime = await openRuntime({busUrl, storeUrl})
    const handles: Array<{stop(): Promise<void>}> = []
    try {
      await (runtime.bus as unknown as {client: {flushdb(): Promise<unknown>}}).client.flushdb()
      const catalog = await loadCatalog()
      const validator = createValidator(catalog)
      const publisher = createPublisher({store: runtime.store, catalog, validator, producerId: 'redrive-test'})
      let broken = true
      const handled: Record<string, number> = {mailer: 0, counter: 0}
      for (const name of ['mailer', 'counter']) {
        handles.push(
          startConsumer({runtime, catalog, validator, publisher}, {
            name,
            consumes: ['user.registered'],
            async handle() {
              if (name === 'mailer' && broken) throw new NonRetryableError('the mail relay refused it')
              handled[name]++
            },
          }, {blockMs: 50}),
        )
      }
      const event = exampleEvent(catalog, 'user.registered', {seed: 7})
      await runtime.store.events.append([event])
      await runtime.bus.publish([toOutgoingMessage(catalog, event, Date.now())])
      await until(async () => expect(await runtime.store.dlq.count({group: 'mailer'})).toBe(1), 20_000)
      await until(() => expect(handled.counter).toBe(1), 20_000)

      broken = false
      const cli = await run('./bin/run.js', ['dlq', 'redrive', '--group', 'mailer', '--json', '--bus-url', busUrl, '--store-url', storeUrl], {env: {...process.env, NO_COLOR: '1'}})
      expect(JSON.parse(cli.stdout)).toMatchObject({matched: 1, sent: 1, interrupted: false, idle_groups: []})
      await until(async () => expect(await runtime.store.dlq.count()).toBe(0), 20_000)
      expect(handled).toEqual({mailer: 1, counter: 1})
    } finally {
      await Promise.allSettled(handles.map((h) => h.stop()))
      await runtime.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
