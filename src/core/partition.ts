/**
 * Key -> partition routing shared by every bus adapter. The in-process, Redis and Kafka-like buses
 * must route a key to the same partition, so consumers see the same ownership whatever the backend:
 * FNV-1a 32-bit over the key's UTF-8 bytes, modulo the partition count.
 */

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/** FNV-1a 32-bit hash of the UTF-8 bytes of `key`, as an unsigned integer. */
export function fnv1a32(key: string): number {
  let hash = FNV_OFFSET
  for (let i = 0; i < key.length; i++) {
    let code = key.charCodeAt(i)
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, FNV_PRIME)
      continue
    }
    // Non-ASCII: hash the UTF-8 encoding byte by byte, so other languages can reproduce it.
    if (code >= 0xd800 && code <= 0xdfff) {
      const low = code <= 0xdbff && i + 1 < key.length ? key.charCodeAt(i + 1) : 0
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00)
        i++
      } else {
        code = 0xfffd // a lone surrogate: TextEncoder writes U+FFFD
      }
    }
    if (code < 0x800) {
      hash = Math.imul(hash ^ (0xc0 | (code >> 6)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME)
    } else if (code < 0x10000) {
      hash = Math.imul(hash ^ (0xe0 | (code >> 12)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME)
    } else {
      hash = Math.imul(hash ^ (0xf0 | (code >> 18)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | ((code >> 12) & 0x3f)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME)
      hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME)
    }
  }
  return hash >>> 0
}

/** The partition (0-based) a message with this key goes to. */
export function partitionFor(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`)
  return partitions === 1 ? 0 : fnv1a32(key) % partitions
}
