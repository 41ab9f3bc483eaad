/**
 * How big and how deep one event may be. Checked where untrusted events enter (the validator: NDJSON
 * lines, `publish`, bus deliveries), before anything walks an event recursively (ajv, deep copies,
 * BSON), so that a hostile line is a validation error and never a stack overflow or a driver crash.
 */
import {UserError} from '../errors.js'
import {errorContract, type ErrorContract} from './envelope.js'

export interface EventLimits {
  /** Nesting of objects and arrays, the envelope itself counting 1 (payload is 2, its fields' objects 3). */
  maxDepth: number
  /** One event as UTF-8 JSON (an NDJSON line without its newline). */
  maxEventBytes: number
}

/**
 * 64 levels: far more than any TekTree schema uses (4), well inside what every store and consumer
 * takes: BSON refuses documents nested deeper than 100 (and the store's own document around the event
 * adds a level), and recursive JSON walkers (ajv, structuredClone, the in-process store's copy) stay
 * far from the stack's limit.
 */
export const DEFAULT_MAX_DEPTH = 64

/**
 * 1,000,000 bytes, so a broker with Kafka's defaults takes the event: message.max.bytes is 1,048,588
 * per record batch and the producer's max.request.size 1,048,576, which must also hold the key,
 * headers and batch overhead. Redis stream entries (512 MB) and MongoDB documents (16 MiB) take more.
 */
export const DEFAULT_MAX_EVENT_BYTES = 1_000_000

export const DEFAULT_LIMITS: EventLimits = Object.freeze({maxDepth: DEFAULT_MAX_DEPTH, maxEventBytes: DEFAULT_MAX_EVENT_BYTES})

/**
 * The limits from TEKTREE_MAX_DEPTH and TEKTREE_MAX_EVENT_BYTES, else the defaults. Read when asked
 * (never at import). A value that is not a positive integer is a usage error naming the variable.
 */
export function eventLimits(env: NodeJS.ProcessEnv = process.env): EventLimits {
  return {
    maxDepth: positive(env, 'TEKTREE_MAX_DEPTH', DEFAULT_MAX_DEPTH),
    maxEventBytes: positive(env, 'TEKTREE_MAX_EVENT_BYTES', DEFAULT_MAX_EVENT_BYTES),
  }
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw.trim())
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UserError(`${name}=${JSON.stringify(raw)} is not a positive whole number`, {
      code: 'INVALID_ENV',
      details: {variable: name, value: raw},
      hint: `Unset ${name} to use the default (${fallback}), or give a number such as ${fallback}.`,
    })
  }
  return value
}

/**
 * The nesting depth of a JSON text, counted without parsing and without recursion: stops at the first
 * point deeper than `limit` and returns where it is (offset into the text), else null. Brackets inside
 * strings do not count. Malformed JSON is JSON.parse's business; this only has to be bounded.
 */
export function textTooDeep(text: string, limit: number): {depth: number; offset: number} | null {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return {depth, offset: i}
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return null
}

/**
 * The path of the first point of a parsed value deeper than `limit` ("$.metadata.a.a...."), else null. Iterative, and it never looks below limit + 1, so its cost is bounded by
 * the value's size above the limit.
 */
export function valueTooDeep(value: unknown, limit: number): {depth: number; path: string} | null {
  if (value === null || typeof value !== 'object') return null
  // Each entry links to its parent, so a path is built only for the one reported.
  interface Step {node: object; depth: number; parent: Step | null; segment: string}
  const stack: Step[] = [{node: value, depth: 1, parent: null, segment: ''}]
  while (stack.length > 0) {
    const step = stack.pop()!
    if (step.depth > limit) {
      const segments: string[] = []
      for (let s: Step | null = step; s !== null && s.parent !== null; s = s.parent) segments.push(s.segment)
      return {depth: step.depth, path: formatPath(segments.reverse())}
    }
    const node = step.node as Record<string, unknown>
    const keys = Array.isArray(node) ? null : Object.keys(node)
    const length = keys === null ? (node as unknown as unknown[]).length : keys.length
    for (let i = 0; i < length; i++) {
      const key = keys === null ? i : keys[i]
      const child = node[key as string]
      if (child === null || typeof child !== 'object') continue
      const segment = typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
      stack.push({node: child, depth: step.depth + 1, parent: step, segment})
    }
  }
  return null
}

/** "$" + segments. At most limit + 1 segments, so the whole path fits in details. */
function formatPath(segments: string[]): string {
  return `$${segments.join('')}`
}

/** The error contract of an event over the size limit (a validation error, like a schema failure). */
export function tooLargeContract(bytes: number, limit: number, details: Record<string, unknown> = {}): ErrorContract {
  return errorContract('EVENT_TOO_LARGE', `The event is ${bytes.toLocaleString('en-US')} bytes; at most ${limit.toLocaleString('en-US')} are accepted (TEKTREE_MAX_EVENT_BYTES)`, {
    path: '$',
    bytes,
    limit,
    ...details,
  })
}

/** The error contract of an event nested deeper than the limit, at `path`. */
export function tooDeepContract(path: string, limit: number, details: Record<string, unknown> = {}): ErrorContract {
  // The message shows both ends of a long path; details carry all of it.
  const shown = path.length > 60 ? `${path.slice(0, 36)}...${path.slice(-20)}` : path
  return errorContract('EVENT_TOO_DEEP', `${shown} is nested more than ${limit} levels deep (TEKTREE_MAX_DEPTH)`, {path, limit, ...details})
}
