/**
 * The event size and depth limits and the byte-level NDJSON reader (issue 12, items 6 and 7), on the
 * shared validation layer that `catalog validate`, `publish` and the consumers' poison-pill check use.
 */
import {Readable} from 'node:stream'
import {beforeAll, describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {firstInvalidUtf8, readNdjsonLines, validateNdjson} from '../../src/catalog/ndjson.js'
import type {Catalog} from '../../src/catalog/types.js'
import {createValidator} from '../../src/catalog/validate.js'
import type {ErrorContract} from '../../src/core/envelope.js'
import {eventLimits} from '../../src/core/limits.js'
import {UserError} from '../../src/errors.js'

let catalog: Catalog
beforeAll(async () => {
  catalog = await loadCatalog()
})

const event = (seed = 1) => exampleEvent(catalog, 'user.registered', {seed}) as unknown as Record<string, unknown>

function nestedValue(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {}
  for (let i = 0; i < levels; i++) value = {a: value}
  return value
}

function code(result: {ok: boolean; error?: ErrorContract}): string | undefined {
  return result.ok ? undefined : result.error!.error.code
}

async function lines(chunks: Array<Buffer | string>, maxEventBytes = 1_000) {
  const out: Array<{line: number; text?: string; code?: string; details?: Record<string, unknown>}> = []
  for await (const read of readNdjsonLines(Readable.from(chunks), {maxEventBytes})) {
    out.push(read.error ? {line: read.line, code: read.error.error.code, details: read.error.error.details} : {line: read.line, text: read.text})
  }
  return out
}

describe('depth limit', () => {
  it('a parsed value 10,000 deep is EVENT_TOO_DEEP with its path, not a stack overflow', () => {
    const validator = createValidator(catalog)
    const result = validator.validate({...event(), metadata: nestedValue(10_000)})
    expect(code(result)).toBe('EVENT_TOO_DEEP')
    if (result.ok) return
    expect(result.error.error.details).toMatchObject({limit: 64, event_type: 'user.registered'})
    expect(result.error.error.details.path).toBe(`$.metadata${'.a'.repeat(63)}`)
  })

  it('a JSON text 10,000 deep (what a consumer reads off the bus) is EVENT_TOO_DEEP', () => {
    const text = JSON.stringify(event()).replace('"metadata":{', `"metadata":{"x":${'['.repeat(10_000)}${']'.repeat(10_000)},`)
    expect(code(createValidator(catalog).validateJson(text))).toBe('EVENT_TOO_DEEP')
  })

  it('exactly at the limit passes; brackets inside strings do not count', () => {
    const validator = createValidator(catalog, {limits: {maxDepth: 5, maxEventBytes: 10_000}})
    // envelope 1, metadata 2, then 3 more levels = 5
    expect(code(validator.validateJson(JSON.stringify({...event(), metadata: nestedValue(3)})))).toBeUndefined()
    expect(code(validator.validate({...event(), metadata: nestedValue(3)}))).toBeUndefined()
    expect(code(validator.validate({...event(), metadata: nestedValue(4)}))).toBe('EVENT_TOO_DEEP')
    expect(code(validator.validateJson(JSON.stringify({...event(), metadata: {note: '[[[[[[{{{{{{\\"'}})))).toBeUndefined()
  })
})

describe('size limit', () => {
  it('counts UTF-8 bytes, not characters', () => {
    const validator = createValidator(catalog, {limits: {maxDepth: 64, maxEventBytes: 2_000}})
    const base = JSON.stringify({...event(), metadata: {note: ''}})
    const room = 2_000 - Buffer.byteLength(base)
    const fits = JSON.stringify({...event(), metadata: {note: `${room % 2 === 1 ? 'e' : ''}${'é'.repeat(Math.floor(room / 2))}`}})
    const over = JSON.stringify({...event(), metadata: {note: 'é'.repeat(Math.floor(room / 2) + 1)}})
    expect(Buffer.byteLength(fits)).toBe(2_000)
    expect(over.length).toBeLessThan(2_000) // fewer characters than the limit, more bytes
    expect(code(validator.validateJson(fits))).toBeUndefined()
    expect(code(validator.validate(JSON.parse(fits)))).toBeUndefined()
    const result = validator.validateJson(over)
    expect(code(result)).toBe('EVENT_TOO_LARGE')
    expect(result.ok ? null : result.error.error.details).toMatchObject({bytes: Buffer.byteLength(over), limit: 2_000})
    expect(code(validator.validate(JSON.parse(over)))).toBe('EVENT_TOO_LARGE')
  })

  it('comes from TEKTREE_MAX_EVENT_BYTES / TEKTREE_MAX_DEPTH; a bad value is a usage error naming the variable', () => {
    expect(eventLimits({})).toEqual({maxDepth: 64, maxEventBytes: 1_000_000})
    expect(eventLimits({TEKTREE_MAX_EVENT_BYTES: '5000', TEKTREE_MAX_DEPTH: '10'})).toEqual({maxDepth: 10, maxEventBytes: 5_000})
    expect(() => eventLimits({TEKTREE_MAX_EVENT_BYTES: '1MB'})).toThrowError(UserError)
    expect(() => eventLimits({TEKTREE_MAX_DEPTH: '0'})).toThrowError(/TEKTREE_MAX_DEPTH/)
  })
})

describe('NDJSON reader (bytes, per line)', () => {
  it('splits LF and CRLF lines across chunk boundaries, a multi-byte character split between chunks included', async () => {
    const text = Buffer.from('{"a":"é"}\r\n\n{"b":"€"}')
    const chunks = [...text].map((b) => Buffer.from([b])) // one byte per chunk
    expect(await lines(chunks)).toEqual([
      {line: 1, text: '{"a":"é"}'},
      {line: 2, text: ''},
      {line: 3, text: '{"b":"€"}'},
    ])
  })

  it('invalid UTF-8 rejects that line only, naming the byte offset', async () => {
    const bad = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    const result = await lines([Buffer.from('{"ok":1}\n'), bad, Buffer.from('\n{"ok":2}\n')])
    expect(result).toEqual([
      {line: 1, text: '{"ok":1}'},
      {line: 2, code: 'INVALID_UTF8', details: {path: '$', byte_offset: 6}},
      {line: 3, text: '{"ok":2}'},
    ])
  })

  it('finds the offset of overlongs, surrogates, truncated and stray bytes', () => {
    expect(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80]))).toBe(1) // overlong NUL
    expect(firstInvalidUtf8(Buffer.from([0x41, 0x42, 0xed, 0xa0, 0x80]))).toBe(2) // UTF-16 surrogate
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x82]))).toBe(0) // truncated
    expect(firstInvalidUtf8(Buffer.from([0x41, 0x80]))).toBe(1) // stray continuation
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0) // > U+10FFFF
    expect(firstInvalidUtf8(Buffer.from('ok é € 😀'))).toBe(Buffer.byteLength('ok é € 😀'))
  })

  it('a line over the limit is EVENT_TOO_LARGE with its full size, and is not held whole', async () => {
    const huge = Array.from({length: 50}, () => Buffer.alloc(10_000, 0x61)) // 500,000 bytes of one line
    const result = await lines([...huge, Buffer.from('\n{"ok":1}\n')], 1_000)
    expect(result).toEqual([
      {line: 1, code: 'EVENT_TOO_LARGE', details: {path: '$', bytes: 500_000, limit: 1_000}},
      {line: 2, text: '{"ok":1}'},
    ])
  })

  it('catalog validate counts such lines as invalid, by code', async () => {
    const validator = createValidator(catalog)
    const good = JSON.stringify(event(2))
    const errors: ErrorContract[] = []
    const summary = await validateNdjson(Readable.from([Buffer.concat([Buffer.from(`${good}\n`), Buffer.from([0xff, 0x0a]), Buffer.from(`${good}\n`)])]), validator, (e) => {
      errors.push(e)
    })
    expect(summary).toMatchObject({valid: 2, invalid: 1, byCode: {INVALID_UTF8: 1}})
    expect(errors[0].error.details).toMatchObject({line: 2, byte_offset: 0})
  })
})
