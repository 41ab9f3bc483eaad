/**
 * MemoryStore-only behaviour, outside the portable contract (test/contracts/store.contract.ts): the
 * bound on remembered applyOnce ids (shared with the MongoDB adapter by convention), and query()
 * yielding to the event loop while it streams.
 */
import {describe, it, expect} from 'vitest'
import {createMemoryStore} from '../../src/adapters/memory/index.js'
import {APPLIED_LIMIT} from '../../src/core/projection-update.js'
import {makeEvent} from '../contracts/helpers.js'

describe('MemoryStore (in-process only)', () => {
  it(`applyOnce remembers the last ${APPLIED_LIMIT} event ids of a document`, async () => {
    const store = createMemoryStore()
    for (let i = 0; i < APPLIED_LIMIT + 10; i++) {
      expect(await store.projections.applyOnce('c', 'd', `e${i}`, {$inc: {n: 1}})).toBe(true)
    }
    // The most recent ids are still guarded; the oldest fell out of the window.
    expect(await store.projections.applyOnce('c', 'd', `e${APPLIED_LIMIT + 9}`, {$inc: {n: 1}})).toBe(false)
    expect(await store.projections.applyOnce('c', 'd', 'e10', {$inc: {n: 1}})).toBe(false)
    expect(await store.projections.applyOnce('c', 'd', 'e0', {$inc: {n: 1}})).toBe(true)
    expect((await store.projections.get('c', 'd'))!.n).toBe(APPLIED_LIMIT + 11)
  })

  it('a failing update leaves the document unchanged', async () => {
    const store = createMemoryStore()
    await store.projections.update('c', 'd', {$set: {s: 'text', n: 1}})
    await expect(store.projections.update('c', 'd', {$set: {n: 2}, $inc: {s: 1}})).rejects.toThrow()
    expect(await store.projections.get('c', 'd')).toEqual({_id: 'd', s: 'text', n: 1})
  })

  it('query() lets other work run between chunks, and does not see events appended after it started', async () => {
    const store = createMemoryStore({queryChunkSize: 10})
    await store.events.append(Array.from({length: 100}, () => makeEvent()))
    // Other work queued behind the loop's current turn: it runs only if query() yields to the loop
    // (a 1 ms timer, as this used to use, need not fire within ten fast chunks: it was flaky).
    let otherWorkRan = false
    setImmediate(() => (otherWorkRan = true))
    let n = 0
    let ranBeforeTheEnd = false
    for await (const _ of store.events.query({})) {
      if (n++ === 0) await store.events.append([makeEvent()])
      if (n === 99) ranBeforeTheEnd = otherWorkRan
    }
    expect(n).toBe(100)
    expect(ranBeforeTheEnd).toBe(true)
  })

  it('rejects after close', async () => {
    const store = createMemoryStore()
    await store.close()
    await expect(store.events.append([makeEvent()])).rejects.toThrow(/closed/)
    await expect(store.projections.get('c', 'd')).rejects.toThrow(/closed/)
  })
})
