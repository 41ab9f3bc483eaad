/**
 * What a long-running consumer's reads leave behind on the Redis bus. A consumer calls next(signal)
 * thousands of times a minute with the same long-lived signal; anything each call hangs on that
 * signal and never takes off grows for the life of the process. AbortSignal.any did exactly that
 * (its composites stay referenced from their sources: nodejs/node#55351): bench/soak.ts showed it
 * as steady heap growth.
 */
import {getEventListeners} from 'node:events'
import {afterEach, describe, expect, inject, it} from 'vitest'
import {deleteTestKeys} from '../support/redis-server.js'
import {uniqueName} from '../contracts/helpers.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'

const redisUrl = inject('redisUrl')
const reason = redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

/** Node keeps AbortSignal.any's composites in a set under this symbol on each source signal. */
function dependants(signal: AbortSignal): number {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals')
  const set = symbol ? (signal as unknown as Record<symbol, Set<unknown> | undefined>)[symbol] : undefined
  return set?.size ?? 0
}

describe.skipIf(!redisUrl)(`Redis bus reads leave nothing behind (${reason})`, () => {
  it('two hundred next(signal) calls, with and without messages: no listener and no composite signal stays on the signal', async () => {
    const prefix = uniqueName('tt-res')
    const bus = await createRedisBus({url: redisUrl!, prefix})
    cleanups.push(async () => {
      await bus.close()
      await deleteTestKeys(redisUrl!, prefix)
    })
    const topic = 'resources'
    await bus.ensureTopics([{name: topic, partitions: 2}])
    const sub = await bus.subscribe({group: 'g', consumer: 'c', topics: [topic], batchSize: 10, blockMs: 1})
    const controller = new AbortController()
    let received = 0
    for (let i = 0; i < 200; i++) {
      if (i % 5 !== 0) await bus.publish([{topic, key: `k${i}`, value: String(i), headers: {}}])
      const deliveries = await sub.next(controller.signal)
      received += deliveries.length
      if (deliveries.length > 0) await sub.ack(deliveries)
    }
    expect(received).toBeGreaterThan(0)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    expect(dependants(controller.signal)).toBe(0)
    await sub.close()
  })
})
