/**
 * Seeded randomness for the simulator: one small PRNG (sfc32) for choices and ids, so a --seed run
 * repeats exactly; without a seed the state comes from crypto and ids are crypto-random.
 */
import {hash, randomBytes, randomUUID} from 'node:crypto'
import {orderedEventId} from '../core/event-id.js'

export interface Random {
  /** [0, 1) */
  next(): number
  /** A uniform 32-bit unsigned integer. */
  u32(): number
  int(maxExclusive: number): number
  /** A valid UUID v4 string. */
  uuid(): string
  pick<T>(items: readonly T[]): T
  chance(p: number): boolean
}

const HEX: string[] = Array.from({length: 256}, (_, i) => i.toString(16).padStart(2, '0'))

function hex32(n: number): string {
  return HEX[(n >>> 24) & 255] + HEX[(n >>> 16) & 255] + HEX[(n >>> 8) & 255] + HEX[n & 255]
}

/** Formats 128 bits (four uint32) as a UUID v4 (version and variant bits forced). */
export function uuidFromWords(a: number, b: number, c: number, d: number): string {
  b = (b & 0xffff0fff) | 0x00004000
  c = (c & 0x3fffffff) | 0x80000000
  const h = hex32(a) + hex32(b) + hex32(c) + hex32(d)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** murmur3's finalizer: a good 32-bit mix. */
export function mix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A stable hash of a string to [0, 1): deterministic fault decisions by (event_id, attempt). */
export function unitHash(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return mix32(h) / 0x1_0000_0000
}

export function createRandom(seed: number | null): Random {
  let a: number, b: number, c: number, d: number
  if (seed === null) {
    const bytes = randomBytes(16)
    a = bytes.readUInt32LE(0)
    b = bytes.readUInt32LE(4)
    c = bytes.readUInt32LE(8)
    d = bytes.readUInt32LE(12)
  } else {
    a = mix32(seed ^ 0x9e3779b9)
    b = mix32(a ^ 0x243f6a88)
    c = mix32(b ^ 0xb7e15162)
    d = mix32(Math.floor(seed / 0x1_0000_0000) ^ 0x6a09e667)
  }
  function u32(): number {
    // sfc32
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return t >>> 0
  }
  for (let i = 0; i < 12; i++) u32()
  const random: Random = {
    next: () => u32() / 0x1_0000_0000,
    u32,
    int: (max) => Math.floor((u32() / 0x1_0000_0000) * max),
    uuid: seed === null ? () => randomUUID() : () => uuidFromWords(u32(), u32(), u32(), u32()),
    pick: (items) => items[Math.floor((u32() / 0x1_0000_0000) * items.length)],
    chance: (p) => p > 0 && u32() / 0x1_0000_0000 < p,
  }
  return random
}

/** 128 bits from a run id, mixed into a seeded run's event ids (runKeyedUuid). */
export type RunKey = readonly [number, number, number, number]

export function runKey(runId: string): RunKey {
  const hex = hash('sha1', `tektree/simulate-run/v1\u0000${runId}`, 'hex')
  return [0, 8, 16, 24].map((i) => parseInt(hex.slice(i, i + 8), 16)) as unknown as RunKey
}

/**
 * The next seeded UUID (the same PRNG draws as random.uuid()), XORed with the run's key: within a
 * run the ids stay distinct (XOR with a constant is a bijection) and repeat for the same seed and
 * run id; another run of the same seed gets other ids, so a durable store keeps both runs' events.
 * Unseeded: a random UUID (the key adds nothing).
 */
export function runKeyedUuid(random: Random, key: RunKey | null, seeded: boolean): string {
  if (!seeded) return random.uuid()
  if (key === null) return uuidFromWords(random.u32(), random.u32(), random.u32(), random.u32())
  return uuidFromWords(random.u32() ^ key[0], random.u32() ^ key[1], random.u32() ^ key[2], random.u32() ^ key[3])
}

/**
 * A seeded run's event ids, ordered as new ids are (core/event-id.ts) but by a counter instead of
 * the time, so that the same seed and run id repeat them exactly: 16 bits from the run's key and
 * the source (journeys, foreign events: two sources of one run never share a prefix), a 32-bit
 * count, then 56 bits of the PRNG's draws XORed with the run's key. Each id takes the same four
 * draws random.uuid() takes, so the rest of the run is what it was with random ids.
 */
export class SeededEventIds {
  private count = 0
  private readonly high: number
  private readonly key: RunKey

  constructor(key: RunKey | null, source: number) {
    this.key = key ?? [0, 0, 0, 0]
    this.high = ((this.key[0] >>> 16) ^ mix32(source + 1)) & 0xffff
  }

  next(random: Random): string {
    random.u32()
    random.u32()
    const c = random.u32() ^ this.key[2]
    const d = random.u32() ^ this.key[3]
    const count = this.count
    this.count = (count + 1) >>> 0
    const prefix = hex32(this.high).slice(4) + hex32(count)
    return orderedEventId(prefix, hex32(c).slice(2) + hex32(d))
  }
}

/** Weighted choice over a fixed set, by cumulative weights (binary search). */
export class WeightedPicker<K extends string> {
  private readonly keys: K[]
  private readonly cumulative: number[]
  readonly total: number

  constructor(weights: Partial<Record<K, number>>) {
    this.keys = []
    this.cumulative = []
    let sum = 0
    for (const [key, weight] of Object.entries(weights) as Array<[K, number]>) {
      if (!(weight > 0)) continue
      sum += weight
      this.keys.push(key)
      this.cumulative.push(sum)
    }
    this.total = sum
  }

  pick(random: Random): K {
    const x = random.next() * this.total
    let lo = 0
    let hi = this.cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.cumulative[mid] > x) hi = mid
      else lo = mid + 1
    }
    return this.keys[lo]
  }
}
