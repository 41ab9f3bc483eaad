/**
 * A projection document's applied list in the SQLite store: the last APPLIED_LIMIT event ids
 * applyOnce applied to it, each kept as an 8-byte fingerprint (the first 8 bytes of its SHA-256)
 * in one BLOB, oldest first.
 *
 * Why not the ids themselves: the list is read and rewritten with its document on every guarded
 * write. As JSON text (schema 4) a hot document's list was ~10 KB (256 UUIDs): decoded from UTF-8
 * on every read, searched, rebuilt, encoded again to bind, and written to overflow pages, for the
 * analytics day, the feeds and the profiles on nearly every event. 2 KB of bytes fits in the
 * row's page, and nothing is transcoded. A false "already applied" needs two ids among 256 to
 * share 64 bits of SHA-256: about one in 7e16 per check.
 */
import {hash} from 'node:crypto'

const FINGERPRINT_BYTES = 8
export const NO_APPLIED: Buffer = Buffer.alloc(0)

/** The fingerprint of an event id: two unsigned 32-bit words (compared without allocating). */
export interface Fingerprint {
  hi: number
  lo: number
}

export function fingerprint(eventId: string): Fingerprint {
  const digest = hash('sha256', eventId, 'buffer')
  return {hi: digest.readUInt32BE(0), lo: digest.readUInt32BE(4)}
}

/**
 * The column's value as fingerprints. A JSON array of ids (written by a tektree of schema 4 that
 * was still running when the file was migrated) is converted; anything else is an empty list: such
 * a process appending to a list of fingerprints writes text that is no JSON, and a document that
 * failed every commit on it would be worse than one whose guard forgot its past.
 */
export function appliedList(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (typeof value !== 'string' || value === '' || value === '[]') return NO_APPLIED
  let ids: unknown
  try {
    ids = JSON.parse(value)
  } catch {
    return NO_APPLIED
  }
  if (!Array.isArray(ids)) return NO_APPLIED
  const list = Buffer.allocUnsafe(ids.length * FINGERPRINT_BYTES)
  ids.forEach((id, i) => write(list, i * FINGERPRINT_BYTES, fingerprint(String(id))))
  return list
}

/** The number of ids in a list. */
export const appliedCount = (list: Buffer): number => list.length / FINGERPRINT_BYTES

export function holds(list: Buffer, print: Fingerprint): boolean {
  for (let at = 0; at < list.length; at += FINGERPRINT_BYTES) {
    if (list.readUInt32BE(at + 4) === print.lo && list.readUInt32BE(at) === print.hi) return true
  }
  return false
}

/** A new list with `print` last, dropping the oldest when `limit` are held already. */
export function withApplied(list: Buffer, print: Fingerprint, limit: number): Buffer {
  const keep = Math.min(list.length, (limit - 1) * FINGERPRINT_BYTES)
  const next = Buffer.allocUnsafe(keep + FINGERPRINT_BYTES)
  list.copy(next, 0, list.length - keep)
  write(next, keep, print)
  return next
}

function write(list: Buffer, at: number, print: Fingerprint): void {
  list.writeUInt32BE(print.hi, at)
  list.writeUInt32BE(print.lo, at + 4)
}

/** SQL function for the migration from JSON text: `tektree_applied_fingerprints(applied)`. */
export const MIGRATION_FUNCTION = 'tektree_applied_fingerprints'
