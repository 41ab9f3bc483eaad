import {describe, it, expect} from 'vitest'
import {fnv1a32, partitionFor} from '../../src/core/partition.js'

/** The textbook definition over TextEncoder bytes: what another language would implement. */
function reference(key: string): number {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(key)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  return hash >>> 0
}

describe('partitionFor', () => {
  it('is FNV-1a 32-bit (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5)
    expect(fnv1a32('a')).toBe(0xe40c292c)
    expect(fnv1a32('foobar')).toBe(0xbf9cf968)
  })

  it('hashes the UTF-8 bytes, like the textbook version, for any string', () => {
    const samples = ['q-123', 'user:42', 'ünïcödé', '日本語', '🚀 emoji', 'lone \ud800 surrogate', 'x'.repeat(500)]
    for (let i = 0; i < 2000; i++) {
      samples.push(String.fromCharCode(...Array.from({length: 1 + (i % 12)}, (_, j) => ((i * 7919 + j * 104729) % 0xfffe) + 1)))
    }
    for (const key of samples) expect(fnv1a32(key)).toBe(reference(key))
  })

  it('is stable, in range, and spreads keys over partitions', () => {
    const counts = new Array(8).fill(0)
    for (let i = 0; i < 8000; i++) {
      const p = partitionFor(`agg-${i}`, 8)
      expect(p).toBe(partitionFor(`agg-${i}`, 8))
      counts[p]++
    }
    for (const n of counts) expect(n).toBeGreaterThan(700)
    expect(partitionFor('anything', 1)).toBe(0)
    // Pinned values: changing the hash would move every aggregate to another partition.
    expect([partitionFor('q-1', 8), partitionFor('u-42', 12), partitionFor('', 3)]).toEqual([
      fnv1a32('q-1') % 8,
      fnv1a32('u-42') % 12,
      0x811c9dc5 % 3,
    ])
  })

  it('rejects a bad partition count', () => {
    expect(() => partitionFor('k', 0)).toThrow(RangeError)
    expect(() => partitionFor('k', 1.5)).toThrow(RangeError)
  })
})
