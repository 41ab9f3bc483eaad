/**
 * NDJSON input, line by line, for `catalog validate` and `publish`: memory stays flat whatever the
 * input size (one line at a time; a line over the size limit is counted, not kept; errors are handed
 * to the caller, not collected).
 */
import {isUtf8} from 'node:buffer'
import {errorContract, type ErrorContract} from '../core/envelope.js'
import {DEFAULT_LIMITS, tooLargeContract, type EventLimits} from '../core/limits.js'
import type {EventValidator} from './validate.js'

/** One line of input (1-based `line`): its text, or why it cannot be read as text. */
export type NdjsonLine = {line: number; text: string; error?: undefined} | {line: number; text?: undefined; error: ErrorContract}

const NEWLINE = 0x0a
const CR = 0x0d

/**
 * Splits a byte stream into lines (LF, or CRLF) without decoding across lines, so each line is
 * checked on its own: invalid UTF-8 rejects that line only (INVALID_UTF8, naming the byte offset),
 * never becomes U+FFFD; a line longer than `limits.maxEventBytes` is EVENT_TOO_LARGE and is skipped
 * without being held in memory.
 */
export async function* readNdjsonLines(input: NodeJS.ReadableStream | AsyncIterable<Buffer | string>, limits: Pick<EventLimits, 'maxEventBytes'> = DEFAULT_LIMITS): AsyncGenerator<NdjsonLine> {
  const max = limits.maxEventBytes
  let parts: Buffer[] = []
  let kept = 0 // bytes held in parts
  let length = 0 // bytes of the current line, kept or not
  let lineNumber = 0

  const finish = (): NdjsonLine => {
    lineNumber++
    const bytes = length
    let line = parts.length === 1 ? parts[0] : Buffer.concat(parts, kept)
    parts = []
    kept = 0
    length = 0
    if (bytes > max + 1 || (bytes === max + 1 && line[line.length - 1] !== CR)) return {line: lineNumber, error: tooLargeContract(bytes, max)}
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1)
    if (line.length > max) return {line: lineNumber, error: tooLargeContract(line.length, max)}
    if (!isUtf8(line)) {
      const offset = firstInvalidUtf8(line)
      return {
        line: lineNumber,
        error: errorContract('INVALID_UTF8', `Line ${lineNumber} is not valid UTF-8: byte ${offset} (0x${line[offset].toString(16).padStart(2, '0')}) does not begin a valid UTF-8 sequence`, {
          path: '$',
          byte_offset: offset,
        }),
      }
    }
    return {line: lineNumber, text: line.toString('utf8')}
  }

  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    let buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    while (buffer.length > 0) {
      const at = buffer.indexOf(NEWLINE)
      const piece = at === -1 ? buffer : buffer.subarray(0, at)
      length += piece.length
      // Keep one byte past the limit (a CR, or the proof that the line is too long), nothing more.
      if (kept <= max) {
        const room = max + 1 - kept
        const part = piece.length > room ? piece.subarray(0, room) : piece
        if (part.length > 0) {
          parts.push(part)
          kept += part.length
        }
      }
      if (at === -1) break
      yield finish()
      buffer = buffer.subarray(at + 1)
    }
  }
  if (length > 0) yield finish()
}

/** Where the first ill-formed sequence starts (Python's "position"), by UTF-8's rules (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]
    if (b < 0x80) {
      i++
      continue
    }
    let need: number
    let lo = 0x80
    let hi = 0xbf
    if (b >= 0xc2 && b <= 0xdf) need = 1
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2
      if (b === 0xe0) lo = 0xa0
      else if (b === 0xed) hi = 0x9f
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3
      if (b === 0xf0) lo = 0x90
      else if (b === 0xf4) hi = 0x8f
    } else return i
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]
      if (c === undefined) return i
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i
    }
    i += need + 1
  }
  return bytes.length
}

export interface NdjsonSummary {
  valid: number
  invalid: number
  /** Non-blank lines read (valid + invalid). */
  total: number
  /** Blank lines, skipped. */
  blank: number
  /** Invalid lines per error code. */
  byCode: Record<string, number>
}

/**
 * Calls `onInvalid` for every bad line with the error contract (its details carry `line`, 1-based).
 * When `onInvalid` returns a promise (e.g. waiting for stdout to drain) reading pauses until it settles.
 */
export async function validateNdjson(
  input: NodeJS.ReadableStream,
  validator: EventValidator,
  onInvalid: (error: ErrorContract, line: number) => void | Promise<void>,
): Promise<NdjsonSummary> {
  const summary: NdjsonSummary = {valid: 0, invalid: 0, total: 0, blank: 0, byCode: {}}
  for await (const read of readNdjsonLines(input, validator.limits)) {
    if (read.text !== undefined && read.text.trim().length === 0) {
      summary.blank++
      continue
    }
    summary.total++
    const result = read.error ? ({ok: false, error: read.error} as const) : validator.validateJson(read.text)
    if (result.ok) {
      summary.valid++
      continue
    }
    summary.invalid++
    const contract = result.error
    contract.error.details.line = read.line
    summary.byCode[contract.error.code] = (summary.byCode[contract.error.code] ?? 0) + 1
    const pending = onInvalid(contract, read.line)
    if (pending) await pending
  }
  return summary
}
