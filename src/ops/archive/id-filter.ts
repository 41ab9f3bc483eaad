/**
 * The ids of an archive file as a Bloom filter: what `query --user/--aggregate` skips files by. A
 * file of 5,000 events names some 10,000 ids (about 400 KB as a JSON list on its manifest line);
 * at 10 bits an id the filter takes 12.5 KB and answers "certainly not here" for all but about 1 in
 * 100 files that do not hold the id (those are read and find nothing). Hashes are sha256, split in
 * two (double hashing), so every tektree computes the same bits.
 */
import {createHash} from 'node:crypto'

export interface IdFilter {
  /** Ids added. */
  count: number
  /** Filter size in bits (a multiple of 8), and hash functions. */
  bits: number
  hashes: number
  /** The bit array, base64. */
  data: string
}

const BITS_PER_ID = 10
const HASHES = 7

/** Two 32-bit hashes of an id; positions are h1 + i * h2 (mod bits). */
export function idHashes(id: string): [number, number] {
  const digest = createHash('sha256').update(id).digest()
  return [digest.readUInt32BE(0), digest.readUInt32BE(4) | 1]
}

function positions([h1, h2]: [number, number], bits: number, hashes: number): number[] {
  const out: number[] = []
  for (let i = 0; i < hashes; i++) out.push((h1 + Math.imul(i, h2) >>> 0) % bits)
  return out
}

export function buildIdFilter(ids: ReadonlySet<string>): IdFilter {
  const bits = Math.max(64, Math.ceil((ids.size * BITS_PER_ID) / 8) * 8)
  const array = new Uint8Array(bits / 8)
  for (const id of ids) for (const p of positions(idHashes(id), bits, HASHES)) array[p >> 3] |= 1 << (p & 7)
  return {count: ids.size, bits, hashes: HASHES, data: Buffer.from(array).toString('base64')}
}

/** False: the id is certainly not in the file. True: it may be (read the file). */
export function mayHold(filter: IdFilter, hashes: [number, number]): boolean {
  const array = Buffer.from(filter.data, 'base64')
  return positions(hashes, filter.bits, filter.hashes).every((p) => (array[p >> 3] & (1 << (p & 7))) !== 0)
}
