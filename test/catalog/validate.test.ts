import {Readable} from 'node:stream'
import {beforeAll, describe, expect, it} from 'vitest'
import {createExampleFactory, exampleEvent} from '../../src/catalog/example.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {validateNdjson} from '../../src/catalog/ndjson.js'
import type {Catalog} from '../../src/catalog/types.js'
import {createValidator, toJsonPath, type EventValidator} from '../../src/catalog/validate.js'
import type {ErrorContract} from '../../src/core/envelope.js'
import {fixture} from './helpers.js'

const SEEDS = [1, 2, 3, 42, 1234]

let tektree: Catalog
let validator: EventValidator
beforeAll(async () => {
  tektree = await loadCatalog()
  validator = createValidator(tektree)
})

function failed(result: ReturnType<EventValidator['validate']>): ErrorContract['error'] {
  expect(result.ok).toBe(false)
  if (result.ok) throw new Error('expected a failure')
  return result.error.error
}

describe('generated examples', () => {
  it('every TekTree type gives examples that validate, for several seeds', () => {
    const example = createExampleFactory(tektree)
    for (const event of tektree.events) {
      for (const seed of SEEDS) {
        const result = validator.validate(example(event.type, {seed}))
        expect(result.ok ? 'ok' : `${event.type} seed ${seed}: ${result.error.error.message}`).toBe('ok')
      }
    }
  })

  it('every type of the test fixtures validates too (allOf, oneOf, nullable, arrays, patterns, relative refs)', async () => {
    for (const name of ['mini.asyncapi.yaml', 'foreign.asyncapi.yaml', 'avro.asyncapi.yaml', 'cycle.asyncapi.yaml', 'remote.asyncapi.yaml']) {
      const catalog = await loadCatalog(fixture(name))
      const check = createValidator(catalog)
      for (const event of catalog.events) {
        for (let seed = 0; seed < 40; seed++) {
          const result = check.validate(exampleEvent(catalog, event.type, {seed}))
          expect(result.ok ? 'ok' : `${name} ${event.type} seed ${seed}: ${result.error.error.message}`).toBe('ok')
        }
      }
    }
  })

  it('the same seed gives the same event; another seed another one', () => {
    for (const event of tektree.events) {
      const a = exampleEvent(tektree, event.type, {seed: 7})
      expect(exampleEvent(tektree, event.type, {seed: 7})).toEqual(a)
      expect(exampleEvent(tektree, event.type, {seed: 8}).event_id).not.toBe(a.event_id)
    }
  })

  it('the examples written in the catalog itself match their payload schemas', async () => {
    const {parse} = await import('yaml')
    const {readFile} = await import('node:fs/promises')
    const doc = parse(await readFile(tektree.source, 'utf8'))
    let checked = 0
    for (const event of tektree.events) {
      const examples = (doc.components.messages[event.type]?.examples ?? []) as Array<{payload?: Record<string, unknown>}>
      for (const ex of examples) {
        if (!ex.payload) continue
        const envelope = {...exampleEvent(tektree, event.type, {seed: 1}), payload: ex.payload}
        const result = validator.validate(envelope)
        expect(result.ok ? 'ok' : `${event.type}: ${result.error.error.message}`).toBe('ok')
        checked++
      }
    }
    expect(checked).toBeGreaterThan(0)
  })
})

describe('validator errors (seed 002 contract)', () => {
  const good = () => exampleEvent(tektree, 'user.registered', {seed: 5}) as unknown as Record<string, any>

  it('accepts an alias and returns the canonical type, without touching the input', () => {
    const input = {...exampleEvent(tektree, 'knowledge.insight.published', {seed: 1}), event_type: 'knowledge.insight.shared'}
    const result = validator.validate(input)
    expect(result.ok).toBe(true)
    if (result.ok) {
      expect(result.event.event_type).toBe('knowledge.insight.published')
      expect(result.definition.type).toBe('knowledge.insight.published')
    }
    expect(input.event_type).toBe('knowledge.insight.shared')
    const fromJson = validator.validateJson(JSON.stringify(input))
    expect(fromJson.ok && fromJson.event.event_type).toBe('knowledge.insight.published')
  })

  it('bad JSON: INVALID_JSON', () => {
    const error = failed(validator.validateJson('{"event_id": '))
    expect(error.code).toBe('INVALID_JSON')
    expect(error.details.path).toBe('$')
  })

  it('unknown type: UNKNOWN_EVENT_TYPE with suggestions', () => {
    const error = failed(validator.validate({...good(), event_type: 'user.registred'}))
    expect(error).toMatchObject({code: 'UNKNOWN_EVENT_TYPE', details: {path: '$.event_type', suggestions: ['user.registered']}})
  })

  it('missing required payload field: its path', () => {
    const event = good()
    delete event.payload.user_id
    const error = failed(validator.validate(event))
    expect(error).toMatchObject({code: 'VALIDATION_FAILED', message: '$.payload.user_id is required', details: {path: '$.payload.user_id', keyword: 'required'}})
  })

  it('missing envelope field', () => {
    const {trace_id: _drop, ...event} = good()
    expect(failed(validator.validate(event)).details).toMatchObject({path: '$.trace_id', keyword: 'required'})
  })

  it('wrong format: path, keyword, expected format', () => {
    const event = good()
    event.payload.user_id = 'not-a-uuid'
    const error = failed(validator.validate(event))
    expect(error.message).toBe('$.payload.user_id must match format "uuid"')
    expect(error.details).toMatchObject({path: '$.payload.user_id', keyword: 'format', expected: 'uuid', event_type: 'user.registered'})
  })

  it('envelope formats: event_id must be a UUID v4, timestamp UTC, version semver', () => {
    expect(failed(validator.validate({...good(), event_id: '6ba7b810-9dad-11d1-80b4-00c04fd430c8'})).details).toMatchObject({path: '$.event_id', keyword: 'pattern'})
    expect(failed(validator.validate({...good(), timestamp: '2025-12-16T10:00:00+02:00'})).details.path).toBe('$.timestamp')
    expect(failed(validator.validate({...good(), event_version: '1.0'})).details.path).toBe('$.event_version')
    expect(failed(validator.validate({...good(), causation_id: 'x'})).details.path).toBe('$.causation_id')
  })

  it('extra payload field: additionalProperties with its path', () => {
    const event = good()
    event.payload.password = 'hunter2'
    expect(failed(validator.validate(event))).toMatchObject({code: 'VALIDATION_FAILED', details: {path: '$.payload.password', keyword: 'additionalProperties'}})
  })

  it('metadata.ip must be "redacted"', () => {
    const error = failed(validator.validate({...good(), metadata: {ip: '203.0.113.7'}}))
    expect(error).toMatchObject({message: '$.metadata.ip must be "redacted"', details: {path: '$.metadata.ip', keyword: 'const', expected: 'redacted'}})
    expect(validator.validate({...good(), metadata: {ip: 'redacted', sequence: 3}}).ok).toBe(true)
    expect(failed(validator.validate({...good(), metadata: {sequence: -1}})).details.path).toBe('$.metadata.sequence')
  })

  it('an enum violation lists the allowed values', async () => {
    const catalog = await loadCatalog(fixture('mini.asyncapi.yaml'))
    const check = createValidator(catalog)
    const event = exampleEvent(catalog, 'user.registered', {seed: 1}) as any
    event.payload.tier = 'platinum'
    expect(failed(check.validate(event)).details).toMatchObject({path: '$.payload.tier', keyword: 'enum', allowed: ['free', 'pro', 'team']})
    event.payload.tier = 'free'
    event.payload.interests = ['ok', 'x']
    expect(failed(check.validate(event)).details).toMatchObject({path: '$.payload.interests[1]', keyword: 'minLength'})
  })

  it('a type the catalog could not load reports why', async () => {
    const catalog = await loadCatalog(fixture('avro.asyncapi.yaml'))
    const event = {...exampleEvent(catalog, 'payment.refunded', {seed: 1}), event_type: 'payment.settled'}
    expect(failed(createValidator(catalog).validate(event)).code).toBe('UNSUPPORTED_SCHEMA_FORMAT')
  })

  it('JSON paths for odd keys and array items', () => {
    expect(toJsonPath('$.payload', '/tags/0')).toBe('$.payload.tags[0]')
    expect(toJsonPath('$', '/metadata/a~1b', 'x y')).toBe('$.metadata["a/b"]["x y"]')
  })
})

describe('NDJSON streaming', () => {
  it('counts valid, invalid and blank lines and reports each bad line with its number', async () => {
    const lines = [
      JSON.stringify(exampleEvent(tektree, 'user.registered', {seed: 1})),
      '',
      '{nope',
      JSON.stringify({...exampleEvent(tektree, 'notification.sent', {seed: 2}), event_type: 'no.such'}),
      '   ',
      JSON.stringify(exampleEvent(tektree, 'payment.invoice.paid', {seed: 3})),
    ]
    const errors: ErrorContract[] = []
    const summary = await validateNdjson(Readable.from([lines.join('\r\n').slice(0, 50), lines.join('\r\n').slice(50)]), validator, (e) => {
      errors.push(e)
    })
    expect(summary).toEqual({valid: 2, invalid: 2, total: 4, blank: 2, byCode: {INVALID_JSON: 1, UNKNOWN_EVENT_TYPE: 1}})
    expect(errors.map((e) => [e.error.code, e.error.details.line])).toEqual([
      ['INVALID_JSON', 3],
      ['UNKNOWN_EVENT_TYPE', 4],
    ])
  })
})
