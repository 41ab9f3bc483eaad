/**
 * Hostile input through `tektree publish --json` (issue 12, items 6 and 7), in-process: an event
 * nested 10,000 deep, one over the size limit, invalid UTF-8. Each is a per-line validation error in
 * the error contract (code, path, line), the other lines still go through, and the exit code is 1 as
 * for any invalid line.
 */
import {createHash, randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import Publish, {type PublishSummary} from '../../src/commands/publish.js'
import {DEFAULT_MAX_EVENT_BYTES} from '../../src/core/limits.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tektree-publish-limits-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
afterEach(() => {
  process.exitCode = undefined
})

function registered(username: string, metadata: Record<string, unknown> = {}) {
  const eventId = randomUUID()
  return {
    event_id: eventId,
    event_type: 'user.registered',
    event_version: '1.0.0',
    timestamp: new Date().toISOString(),
    source_service: 'user',
    payload: {user_id: randomUUID(), username, email_hash: `sha256:${createHash('sha256').update(username).digest('hex')}`, signup_source: 'web'},
    trace_id: randomUUID().replaceAll('-', ''),
    correlation_id: eventId,
    causation_id: null,
    producer_id: 'test',
    metadata,
  }
}

/** A line of exactly `bytes` bytes: a valid event padded in metadata.note. */
function lineOf(bytes: number): string {
  const base = JSON.stringify(registered('padded', {note: ''}))
  const line = base.replace('"note":""', `"note":"${'x'.repeat(bytes - Buffer.byteLength(base))}"`)
  expect(Buffer.byteLength(line)).toBe(bytes)
  return line
}

function deep(levels: number): string {
  let nested = '1'
  for (let i = 0; i < levels; i++) nested = `{"a":${nested}}`
  return JSON.stringify(registered('deep_one')).replace('"metadata":{}', `"metadata":${nested}`)
}

function file(content: Buffer | string): string {
  const path = join(dir, `${randomUUID()}.ndjson`)
  writeFileSync(path, content)
  return path
}

async function publishJson(path: string): Promise<{exitCode: number; summary: PublishSummary}> {
  process.exitCode = undefined
  let stdout = ''
  const consoleLog = console.log
  const errWrite = process.stderr.write
  // oclif prints --json output with console.log.
  console.log = (...args: unknown[]) => {
    stdout += `${args.map(String).join(' ')}\n`
  }
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    await Publish.run([path, '--json', '--in-process'], root)
  } finally {
    console.log = consoleLog
    process.stderr.write = errWrite
  }
  return {exitCode: Number(process.exitCode ?? 0), summary: JSON.parse(stdout) as PublishSummary}
}

describe('publish --json: depth and size limits (item 6)', () => {
  it('an event nested 10,000 deep in metadata is a per-line EVENT_TOO_DEEP with its path; the next line is published', async () => {
    const {exitCode, summary} = await publishJson(file(`${deep(10_000)}\n${JSON.stringify(registered('after_deep'))}\n`))
    expect(exitCode).toBe(1)
    expect(summary).toMatchObject({read: 2, published: 1, invalid: 1})
    const error = summary.errors[0].error
    expect(error.code).toBe('EVENT_TOO_DEEP')
    expect(error.details).toMatchObject({line: 1, limit: 64})
    expect(String(error.details.path)).toMatch(/^\$\.metadata(\.a)+$/)
    expect(error.message).toContain('64 levels')
  })

  it('a 2 MB event is EVENT_TOO_LARGE naming its size and the limit; one at the limit is published', async () => {
    const big = lineOf(2_000_000)
    const atLimit = lineOf(DEFAULT_MAX_EVENT_BYTES)
    const {exitCode, summary} = await publishJson(file(`${big}\n${atLimit}\r\n`))
    expect(exitCode).toBe(1)
    expect(summary).toMatchObject({read: 2, published: 1, invalid: 1})
    const error = summary.errors[0].error
    expect(error.code).toBe('EVENT_TOO_LARGE')
    expect(error.details).toMatchObject({line: 1, bytes: 2_000_000, limit: DEFAULT_MAX_EVENT_BYTES})
    expect(error.message).toContain('2,000,000 bytes')
    expect(error.message).toContain('1,000,000')
  })

  it('one byte over the limit is rejected', async () => {
    const {summary} = await publishJson(file(`${lineOf(DEFAULT_MAX_EVENT_BYTES + 1)}\n`))
    expect(summary).toMatchObject({read: 1, published: 0, invalid: 1})
    expect(summary.errors[0].error.code).toBe('EVENT_TOO_LARGE')
  })
})

describe('publish --json: invalid UTF-8 (item 7)', () => {
  it('rejects the line holding 0xC3 0x28, naming line and byte offset; the lines around it are published', async () => {
    const good = (name: string) => Buffer.from(`${JSON.stringify(registered(name))}\n`)
    const bad = JSON.stringify(registered('bad_bytes'))
    const at = bad.indexOf('bad_bytes')
    const badLine = Buffer.concat([Buffer.from(bad.slice(0, at)), Buffer.from([0xc3, 0x28]), Buffer.from(`${bad.slice(at)}\n`)])
    const {exitCode, summary} = await publishJson(file(Buffer.concat([good('before_bad'), badLine, good('after_bad')])))
    expect(exitCode).toBe(1)
    expect(summary).toMatchObject({read: 3, published: 2, invalid: 1})
    const error = summary.errors[0].error
    expect(error.code).toBe('INVALID_UTF8')
    expect(error.details).toMatchObject({line: 2, byte_offset: at})
    expect(error.message).toContain('Line 2')
    expect(error.message).toContain(`byte ${at}`)
  })
})
