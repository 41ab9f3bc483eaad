/**
 * The consumer runner's hold on keys whose commit failed (src/engine/held-behind-failures.ts):
 * which completions of a unit may be committed, in the key's order, and for how long a key is held.
 */
import {describe, expect, it} from 'vitest'
import {HeldBehindFailures} from '../../src/engine/held-behind-failures.js'

const segment = (key: string, eventId: string) => ({eventId, completion: key})
const ids = (segments: ReadonlyArray<{eventId: string}>) => segments.map((s) => s.eventId)

describe('HeldBehindFailures', () => {
  const setup = () => {
    let now = 0
    const held = new HeldBehindFailures<string>((key) => key, 100, () => now)
    return {held, advance: (ms: number) => (now += ms)}
  }

  it('lets everything through while nothing failed, and other keys through while one is held', () => {
    const {held} = setup()
    const [a, b, c] = [segment('k', 'a'), segment('k', 'b'), segment('other', 'c')]
    expect(ids(held.ready([a, b, c]))).toEqual(['a', 'b', 'c'])
    held.settle([a, b, c], [c])
    expect(ids(held.ready([c]))).toEqual(['c'])
  })

  it("keeps a key's failed events in the order they failed, and what follows behind all of them", () => {
    const {held} = setup()
    const [a, b, later] = [segment('k', 'a'), segment('k', 'b'), segment('k', 'later')]
    held.settle([a, b], [])
    expect(ids(held.ready([later]))).toEqual([])
    expect(ids(held.ready([b]))).toEqual([])
    expect(ids(held.ready([b, a]))).toEqual(['a'])
    expect(ids(held.ready([a, b, later]))).toEqual(['a', 'b', 'later'])
    held.settle([a], [a])
    expect(ids(held.ready([b, later]))).toEqual(['b', 'later'])
    held.forget('k', 'b')
    expect(ids(held.ready([later]))).toEqual(['later'])
  })

  it('holds a key for holdMs after its last failure, however long ago the first was', () => {
    const {held, advance} = setup()
    const [a, later] = [segment('k', 'a'), segment('k', 'later')]
    held.settle([a], [])
    advance(90)
    held.settle([a], []) // it came back and failed again
    advance(60) // 150 ms after the first failure, 60 after the last
    expect(ids(held.ready([later]))).toEqual([])
    advance(50) // 110 ms after the last: it never came back here
    expect(ids(held.ready([later]))).toEqual(['later'])
  })

  it('hands back what it held once every failed event of its key is in, each once; one held on a clear key at once', () => {
    const {held} = setup()
    const [a, b, later, other] = [segment('k', 'a'), segment('k', 'b'), segment('k', 'later'), segment('o', 'other')]
    held.settle([a, b], [])
    held.heldBack('k')
    expect(held.cleared()).toEqual([])
    held.settle([a], [a])
    expect(held.cleared()).toEqual([]) // b is not in yet
    held.forget('k', 'b')
    expect(held.cleared()).toEqual(['k'])
    expect(held.cleared()).toEqual([])
    // held behind an event that went in with it, after it, in the same unit: its key is clear now
    held.heldBack(later.completion)
    held.heldBack(other.completion)
    expect(held.cleared()).toEqual(['k', 'o'])
  })
})
