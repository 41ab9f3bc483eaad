/**
 * Validates NDJSON line by line from a stream: memory stays flat whatever the input size (readline
 * holds one line at a time; errors are handed to the caller, not collected).
 */
import {createInterface} from 'node:readline'
import type {ErrorContract} from '../core/envelope.js'
import type {EventValidator} from './validate.js'

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
  const lines = createInterface({input, crlfDelay: Infinity})
  let lineNumber = 0
  for await (const line of lines) {
    lineNumber++
    if (line.length === 0 || line.trim().length === 0) {
      summary.blank++
      continue
    }
    summary.total++
    const result = validator.validateJson(line)
    if (result.ok) {
      summary.valid++
      continue
    }
    summary.invalid++
    const contract = result.error
    contract.error.details.line = lineNumber
    summary.byCode[contract.error.code] = (summary.byCode[contract.error.code] ?? 0) + 1
    const pending = onInvalid(contract, lineNumber)
    if (pending) await pending
  }
  return summary
}
