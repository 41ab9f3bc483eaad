/**
 * Event ids.
 *
 * New ids are v4-shaped (the envelope schema requires v4-shaped event ids) but laid out as UUID v7
 * is: their first 48 bits order them (the time in ms; in a seeded run, a counter), and 18 fixed
 * bits after the version nibble mark them as ordered. The store's indexes by event id (the log's
 * own, the groups' handled records) then take each new id near their right edge instead of on a
 * random leaf: at a long run's depth those writes cost a quarter to a half of what they did
 * (BENCHMARKS.md, section 9, session 17). 56 bits stay random (or hashed) per prefix: as unique as
 * a v4 for this purpose.
 *
 * Derived events' ids are deterministic: a handler that runs again for the same event (a retry, a
 * redelivery, another consumer after a crash, a replay) must emit the SAME event ids, so the
 * store's idempotent append drops the re-emits instead of doubling every downstream effect. The id
 * is a SHA-1 of (causation id, service, type, index), as UUID v5 makes one. When the cause's id is
 * ordered, the derived id takes its prefix (it lands where its cause did); a cause with any other
 * id (a random v4 from another producer, or one appended before ids were ordered) keeps the plain
 * hash it always had, so replaying old events still re-emits the ids they emitted then (all but
 * one in 2^18 of them: a random v4 id carries the ordered ids' mark that often).
 */
import {hash as digest, randomBytes, randomUUID} from 'node:crypto'

/** Fixed namespace so tektree's derived ids never collide with another system hashing the same names. */
const NAMESPACE = 'tektree/derived-event/v1'

export function derivedEventId(causationId: string, service: string, type: string, index: number | string): string {
  // One-shot crypto.hash to hex, shaped as a string: a Hash object and a Buffer per id showed up in
  // profiles (one id per derived event and per notification); this is about 3x cheaper.
  const hex = digest('sha1', `${NAMESPACE}\u0000${causationId}\u0000${service}\u0000${type}\u0000${index}`, 'hex')
  if (isOrderedEventId(causationId)) return orderedEventId(causationId.slice(0, 8) + causationId.slice(9, 13), hex.slice(0, 14))
  // Version nibble 4 (shape); variant bits 10xx (RFC 4122) on the 17th hex digit.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${VARIANT[parseInt(hex[16], 16) & 3]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

const VARIANT = '89ab'

/** The ordered ids' mark: version nibble 4, then 12 fixed bits; variant 10 and 4 fixed bits. */
const ORDERED_MARK = '4ec7-b7'

/**
 * An ordered, v4-shaped id from a 12-hex-digit prefix (what orders it) and 14 hex digits of
 * randomness (or of a hash). The prefix sorts as a number: give it fixed width.
 */
export function orderedEventId(prefix: string, random: string): string {
  return `${prefix.slice(0, 8)}-${prefix.slice(8, 12)}-${ORDERED_MARK}${random.slice(0, 2)}-${random.slice(2, 14)}`
}

/** Whether `id` is one of orderedEventId's (a random v4 id passes for one once in 2^18). */
export function isOrderedEventId(id: string): boolean {
  return id.length === 36 && id.startsWith(ORDERED_MARK, 14)
}

/** A new event id, ordered by the time (ms, the wall clock) it is made. */
export function newEventId(now: number = Date.now()): string {
  const ms = Math.max(0, Math.floor(now)) % 2 ** 48
  // randomUUID draws from a buffered pool (faster than randomBytes per id); its last 12 and first
  // 2 hex digits are random bits.
  const random = randomUUID()
  return orderedEventId(ms.toString(16).padStart(12, '0'), random.slice(0, 2) + random.slice(24))
}

/** A W3C trace-context trace id: 32 lowercase hex characters, never all zero. */
export function newTraceId(): string {
  for (;;) {
    const id = randomBytes(16).toString('hex')
    if (id !== '00000000000000000000000000000000') return id
  }
}

/**
 * An event id shortened for a line of 80 columns: its last 8 characters. An ordered id's first
 * ones are its time (the same for every event of about a minute, and a derived event's are its
 * cause's), its last ones random or hashed, so the end tells events apart.
 */
export function shortEventId(id: string): string {
  return id.length > 8 ? id.slice(-8) : id
}
