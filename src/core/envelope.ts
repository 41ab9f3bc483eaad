/**
 * The TekTree event envelope (seed 000's base schema, plus causation_id from seed 003 and the
 * aggregate/sequence guards of seed 004, carried in metadata).
 */
export interface EventMetadata {
  /** The aggregate the event belongs to: the value of the catalog's partition key in the payload. */
  aggregate_id?: string
  aggregate_type?: string
  /** Per-aggregate sequence where the producer knows it; guards ordering-sensitive consumers. */
  sequence?: number
  /** Free-form context (tenant, locale, actor_user_id, ip: always "redacted"). */
  [key: string]: unknown
}

export interface EventEnvelope<P extends Record<string, unknown> = Record<string, unknown>> {
  event_id: string
  event_type: string
  event_version: string
  /** ISO-8601 UTC, millisecond precision. */
  timestamp: string
  source_service: string
  payload: P
  trace_id: string
  correlation_id: string
  /** The event that caused this one; null for events that start a journey. */
  causation_id: string | null
  producer_id: string
  metadata: EventMetadata
}

/** The error contract of seed 002. Every user-facing failure and every DLQ record carries one. */
export interface ErrorContract {
  error: {
    code: string
    message: string
    details: Record<string, unknown>
  }
}

export function errorContract(code: string, message: string, details: Record<string, unknown> = {}): ErrorContract {
  return {error: {code, message, details}}
}

/**
 * JSON text with object keys sorted at every level (undefined members left out, as JSON.stringify
 * leaves them out): two envelopes with the same content give the same text whatever their key order.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`
  const record = value as Record<string, unknown>
  const parts: string[] = []
  for (const key of Object.keys(record).sort()) {
    const item = record[key]
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue
    parts.push(`${JSON.stringify(key)}:${canonicalJson(item)}`)
  }
  return `{${parts.join(',')}}`
}

/** Whether two envelopes carry the same content (an event_id seen again with other content is a conflict). */
export function sameEnvelope(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b)
}
