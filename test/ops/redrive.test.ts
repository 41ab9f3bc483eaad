/**
 * DLQ retry and redrive on the in-process engine: an entry goes back to the group that
 * dead-lettered it and to no other, leaves the DLQ once that group has handled it, and comes back,
 * its attempts counted, when it fails again.
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {NonRetryableError} from '../../src/core/errors.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {redrive} from '../../src/ops/redrive.js'
import {createHarness, serviceName, until, type Harness} from '../runtime/consumer-harness.js'

let h: Harness
beforeEach(async () => {
  h = await createHarness()
})
afterEach(async () => {
  await h.close()
})

describe('dlq redrive', () => {
  it('reaches only the group that dead-lettered the event, and clears its entry once handled', async () => {
    const failing = serviceName('failing')
    const other = serviceName('other')
    let broken = true
    const handled = {[failing]: [] as string[], [other]: [] as string[]}
    const service = (name: string) => ({
      name,
      consumes: ['user.registered'],
      async handle(e: EventEnvelope) {
        if (name === failing && broken) throw new NonRetryableError('the mail relay refused it')
        handled[name].push(e.event_id)
      },
    })
    h.start(service(failing))
    h.start(service(other))
    const event = h.event('user.registered')
    await h.send([event])
    await until(async () => expect(await h.store.dlq.count({group: failing})).toBe(1))
    await until(() => expect(handled[other]).toEqual([event.event_id]))
    const [entry] = await h.store.dlq.list({group: failing})
    expect(entry.attempts).toBe(1)

    // still broken: the entry comes back with its attempts counted, not lost, not duplicated
    await redrive({bus: h.bus, catalog: h.catalog, records: [entry]})
    await until(async () => expect((await h.store.dlq.get(entry.id))?.attempts).toBe(2))
    expect(await h.store.dlq.count()).toBe(1)
    expect((await h.store.dlq.get(entry.id))?.first_failure_at).toBe(entry.first_failure_at)

    // fixed: handled by its group, gone from the DLQ; the other group never saw it again
    broken = false
    await redrive({bus: h.bus, catalog: h.catalog, records: [(await h.store.dlq.get(entry.id))!]})
    await until(async () => expect(await h.store.dlq.count()).toBe(0))
    expect(handled[failing]).toEqual([event.event_id])
    expect(handled[other]).toEqual([event.event_id])
  })

  it('an unparseable entry retried keeps its one entry (no copy per delivery)', async () => {
    const group = serviceName()
    h.start({name: group, consumes: ['user.*'], async handle() {}})
    await h.sendRaw('tektree.user', '{not json', {event_type: 'user.registered'})
    await until(async () => expect(await h.store.dlq.count({group})).toBe(1))
    const [entry] = await h.store.dlq.list({group})
    await redrive({bus: h.bus, catalog: h.catalog, records: [entry]})
    await until(async () => expect((await h.store.dlq.get(entry.id))?.attempts).toBe(2))
    expect(await h.store.dlq.count({group})).toBe(1)
  })

  it('holds the rate it is given and stops when aborted, saying how far it got', async () => {
    const group = serviceName()
    const records = Array.from({length: 30}, (_, i) => ({
      id: `${group}:e${i}`,
      group,
      event_id: `e${i}`,
      event_type: 'user.registered',
      topic: 'tektree.user',
      partition: 0,
      delivery_id: `${i}`,
      error: {error: {code: 'X', message: 'x', details: {}}},
      attempts: 4,
      first_failure_at: new Date().toISOString(),
      last_failure_at: new Date().toISOString(),
      dead_lettered_at: new Date().toISOString(),
      raw: '{}',
      envelope: null,
    }))
    const stop = new AbortController()
    const result = await redrive({
      bus: h.bus,
      catalog: h.catalog,
      records,
      ratePerSec: 10,
      signal: stop.signal,
      onProgress: (sent) => {
        if (sent >= 3) stop.abort()
      },
    })
    // 10/s goes one at a time: aborted after the third
    expect(result).toEqual({sent: 3, total: 30, interrupted: true})
  })
})
