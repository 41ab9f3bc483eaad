/**
 * Events over the size or depth limit that reach a consumer from elsewhere (another producer on the
 * bus, not tektree's publisher): each is a poison pill dead-lettered with its code, never a stack
 * overflow in a handler or the store, and the DLQ record keeps at most the limit's worth of raw bytes
 * (issue 12, item 6).
 */
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {createHarness, serviceName, until, type Harness} from './consumer-harness.js'

let h: Harness
beforeEach(async () => {
  h = await createHarness()
})
afterEach(async () => {
  await h.close()
})

describe('consumer runner: events over the limits', () => {
  it('dead-letters a 10,000-deep and a 2 MB event with EVENT_TOO_DEEP / EVENT_TOO_LARGE; the handler never sees them', async () => {
    const group = serviceName()
    const deep = h.event('user.registered')
    let nested = '1'
    for (let i = 0; i < 10_000; i++) nested = `{"a":${nested}}`
    await h.sendRaw('tektree.user', JSON.stringify(deep).replace(/"metadata":\{[^}]*\}/, `"metadata":${nested}`), {event_type: 'user.registered', event_id: deep.event_id})
    const big = h.event('user.registered', {metadata: {note: 'x'.repeat(2_000_000)}})
    await h.sendRaw('tektree.user', JSON.stringify(big), {event_type: 'user.registered', event_id: big.event_id})
    let calls = 0
    const handle = h.start({name: group, consumes: ['user.registered'], handle: async () => void calls++})
    await until(() => expect(handle.stats().deadLettered).toBe(2))
    const deepRecord = await h.store.dlq.get(`${group}:${deep.event_id}`)
    expect(deepRecord!.error.error.code).toBe('EVENT_TOO_DEEP')
    expect(deepRecord!.error.error.details.path).toMatch(/^\$\.metadata(\.a)+$/)
    const bigRecord = await h.store.dlq.get(`${group}:${big.event_id}`)
    expect(bigRecord!.error.error.code).toBe('EVENT_TOO_LARGE')
    expect(bigRecord!.raw!.length).toBe(h.validator.limits.maxEventBytes)
    expect(calls).toBe(0)
  })
})
