/**
 * Malformed catalogs the fuzz pass (test/chaos/fuzz.test.ts) found crashing the loader or what uses
 * a loaded catalog, each pinned here: every one must be a UserError or a listed problem with a code.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog, loadCatalogFromText, mayNestDeeper} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {UserError} from '../../src/errors.js'
import {fixture} from './helpers.js'

const SOURCE = fixture('hostile.asyncapi.yaml') // never read: names the document, resolves relative refs

function doc(payload: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    asyncapi: '3.0.0',
    info: {title: 'Hostile', version: '1.0.0'},
    channels: {c: {address: 'c', messages: {'bad.thing': {$ref: '#/components/messages/bad.thing'}, 'ok.thing': {$ref: '#/components/messages/ok.thing'}}}},
    components: {messages: {'bad.thing': {payload}, 'ok.thing': {payload: {type: 'object', properties: {id: {type: 'string'}}}}}},
    ...extra,
  })
}

async function userError(promise: Promise<unknown>): Promise<UserError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(UserError)
  return error as UserError
}

describe('hostile catalogs', () => {
  it('a payload schema that breaks the meta-schema (allOf not a list) is an INVALID_SCHEMA problem, not a TypeError later', async () => {
    const catalog = await loadCatalogFromText(doc({type: 'object', allOf: {type: 'object'}}), SOURCE)
    expect(catalog.problems).toEqual([expect.objectContaining({type: 'bad.thing', code: 'INVALID_SCHEMA'})])
    expect(catalog.problems![0].message).toContain('allOf')
    expect(() => exampleEvent(catalog, 'ok.thing', {seed: 1})).not.toThrow()
  })

  it('a pattern that is not a regular expression, or too large to compile, is INVALID_SCHEMA', async () => {
    for (const pattern of ['^(area|user):(?- x', 'y'.repeat(1_100_000)]) {
      const catalog = await loadCatalogFromText(doc({type: 'object', properties: {id: {type: 'string', pattern}}}), SOURCE)
      expect(catalog.problems?.map((p) => p.code)).toEqual(['INVALID_SCHEMA'])
      expect(catalog.problems![0].message).toContain('$.properties.id.pattern')
      // the validator never meets it, so a publish cannot throw a SyntaxError
      expect(createValidator(catalog).validate({}).ok).toBe(false)
    }
  })

  it('YAML nested 10,000 deep is CATALOG_PARSE_ERROR, not a stack overflow', async () => {
    const text = `asyncapi: 3.0.0\ninfo: {title: Deep, version: 1.0.0}\nx:\n${'- '.repeat(10_000)}1\n`
    const error = await userError(loadCatalogFromText(text, SOURCE))
    expect(error.code).toBe('CATALOG_PARSE_ERROR')
    expect(error.message).toContain('nested too deeply')
    const json = `{"asyncapi":"3.0.0","info":{"title":"Deep","version":"1.0.0"},"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`
    expect((await userError(loadCatalogFromText(json, SOURCE))).code).toMatch(/CATALOG_PARSE_ERROR|CATALOG_INVALID/)
  })

  it('a deep file is refused before any parser recurses into it (a stack overflow is not caught reliably)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-deep-'))
    try {
      const file = join(dir, 'deep.yaml')
      writeFileSync(file, `asyncapi: 3.0.0\ninfo: {title: Deep, version: 1.0.0}\nx:\n${'- '.repeat(10_000)}1\n`)
      expect((await userError(loadCatalog(file))).code).toBe('CATALOG_PARSE_ERROR')
      expect(mayNestDeeper(`a:\n${'  '.repeat(100)}b: [[1, 2], {c: "- - -"}]\n`, 256)).toBe(false)
      expect(mayNestDeeper(`${'['.repeat(257)}`, 256)).toBe(true)
      expect(mayNestDeeper(`${' '.repeat(257)}x`, 256)).toBe(true)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('$refs the resolver trips over (through null, a stray %, a lone surrogate in a key) are UserErrors', async () => {
    const throughNull = doc({$ref: '#/components/schemas/X/properties'}, {components: null})
    expect((await userError(loadCatalogFromText(throughNull, SOURCE))).code).toMatch(/REF_/)
    const percent = doc({type: 'object'}).replace('"#/components/messages/bad.thing"', '"#/components/messages/bad%zz"')
    await loadCatalogFromText(percent, SOURCE).catch((error: unknown) => expect(error).toBeInstanceOf(UserError))
    const surrogate = doc({type: 'object', properties: {'\ud800': {$ref: '#/components/messages/ok.thing/payload'}}})
    await loadCatalogFromText(surrogate, SOURCE).catch((error: unknown) => expect(error).toBeInstanceOf(UserError))
  })

  it('a string format named like an Object.prototype member ("constructor") is an unknown format, not a TypeError', async () => {
    const catalog = await loadCatalogFromText(doc({type: 'object', required: ['id'], properties: {id: {type: 'string', format: 'constructor'}}}), SOURCE)
    expect(typeof (exampleEvent(catalog, 'bad.thing', {seed: 1}).payload as {id: unknown}).id).toBe('string')
  })

  it('an example that cannot be generated (pattern unsatisfiable within maxLength) is a UserError', async () => {
    const catalog = await loadCatalogFromText(doc({type: 'object', required: ['id'], properties: {id: {type: 'string', pattern: '^yyyyyyyyyy$', maxLength: 3}}}), SOURCE)
    expect(() => exampleEvent(catalog, 'bad.thing', {seed: 1})).toThrowError(UserError)
  })
})
