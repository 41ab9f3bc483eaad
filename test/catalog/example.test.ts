import {base, en, Faker} from '@faker-js/faker'
import {describe, expect, it} from 'vitest'
import {createPayloadGenerator, EXAMPLE_REF_DATE, mergeSchemas} from '../../src/catalog/example.js'
import {compilePattern} from '../../src/catalog/regex-gen.js'
import {createAjv} from '../../src/catalog/validate.js'

const seeded = (seed: number) => {
  const faker = new Faker({locale: [en, base]})
  faker.seed(seed)
  // dates are drawn relative to the reference date, so a fixed one makes them reproducible
  faker.setDefaultRefDate(EXAMPLE_REF_DATE)
  return faker
}

describe('pattern strings', () => {
  const patterns = [
    '^[a-f0-9]{64}$',
    '^sha256:[a-f0-9]{64}$',
    '^[a-z0-9]+(?:-[a-z0-9]+)*$',
    '^(area|user):[a-z0-9_]{3,20}$',
    '^\\d+\\.\\d+\\.\\d+$',
    '^[A-Z]{2}-\\d{4}[a-z]?$',
    '^[^\\s@]+@example\\.com$',
    '^v\\d+(\\.\\d+){0,2}$',
    'abc',
  ]
  for (const pattern of patterns) {
    it(`draws strings matching ${pattern}`, () => {
      const draw = compilePattern(pattern)
      const faker = seeded(3)
      const regex = new RegExp(pattern, 'u')
      for (let i = 0; i < 200; i++) expect(draw((min, max) => faker.number.int({min, max}))).toMatch(regex)
    })
  }

  it('refuses what it cannot generate', () => {
    expect(() => compilePattern('^(?=.*\\d)[a-z]+$')).toThrow(/lookaround/)
    expect(() => compilePattern('^(a)\\1$')).toThrow(/back-reference/)
  })
})

describe('payload generator', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'author_id', 'title', 'score', 'tags', 'kind', 'when', 'day', 'link', 'email_hash', 'nested'],
    properties: {
      id: {type: 'string', format: 'uuid'},
      author_id: {type: 'string'},
      title: {type: 'string', maxLength: 20},
      score: {type: 'number', minimum: 0.5, maximum: 1},
      count: {type: 'integer', exclusiveMinimum: 0, multipleOf: 5, maximum: 50},
      tags: {type: 'array', minItems: 2, maxItems: 4, uniqueItems: true, items: {type: 'string', enum: ['a', 'b', 'c', 'd', 'e']}},
      kind: {const: 'fixed'},
      when: {type: 'string', format: 'date-time'},
      day: {type: 'string', format: 'date'},
      link: {type: ['string', 'null'], format: 'uri'},
      email_hash: {type: 'string'},
      nested: {allOf: [{type: 'object', required: ['a'], properties: {a: {type: 'boolean'}}}, {required: ['b'], properties: {b: {type: 'integer', minimum: 3, maximum: 3}}}]},
      choice: {oneOf: [{type: 'object', required: ['k'], properties: {k: {const: 1}}, additionalProperties: false}, {type: 'string', minLength: 5, maxLength: 5}]},
    },
  }

  it('always produces values that pass the schema', () => {
    const validate = createAjv().compile(schema)
    const generate = createPayloadGenerator(schema)
    const faker = seeded(11)
    for (let i = 0; i < 300; i++) {
      const payload = generate(faker)
      if (!validate(payload)) throw new Error(`${JSON.stringify(payload)}: ${JSON.stringify(validate.errors)}`)
    }
  })

  it('refuses string lengths it cannot honour with EXAMPLE_UNAVAILABLE, not a crash (a fuzz finding)', () => {
    const generate = (name: Record<string, unknown>) => () => createPayloadGenerator({type: 'object', required: ['name'], properties: {name: {type: 'string', ...name}}})(seeded(1))
    for (const limits of [{minLength: 4294967296}, {minLength: 2.5}, {maxLength: -1}, {minLength: '3'}, {minLength: 5, maxLength: 2}]) {
      expect(generate(limits), JSON.stringify(limits)).toThrow(expect.objectContaining({code: 'EXAMPLE_UNAVAILABLE'}))
    }
    expect(generate({minLength: 3, maxLength: 3})()).toEqual({name: expect.stringMatching(/^.{3}$/)})
  })

  it('follows field-name heuristics when the schema says only "string"', () => {
    const payload = createPayloadGenerator(schema)(seeded(1))
    expect(payload.author_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(payload.email_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(payload.kind).toBe('fixed')
    expect((payload.nested as any).b).toBe(3)
  })

  it('is deterministic for a seeded faker', () => {
    const generate = createPayloadGenerator(schema)
    expect(generate(seeded(99))).toEqual(generate(seeded(99)))
    expect(generate(seeded(99))).not.toEqual(generate(seeded(100)))
  })

  it('covers optional and nullable values both ways over many draws', () => {
    const generate = createPayloadGenerator(schema)
    const faker = seeded(5)
    const draws = Array.from({length: 200}, () => generate(faker))
    expect(draws.some((d) => 'count' in d)).toBe(true)
    expect(draws.some((d) => !('count' in d))).toBe(true)
    expect(draws.some((d) => d.link === null)).toBe(true)
    expect(draws.some((d) => typeof d.link === 'string')).toBe(true)
    expect(draws.some((d) => typeof d.choice === 'string')).toBe(true)
    expect(draws.some((d) => typeof d.choice === 'object')).toBe(true)
  })

  it('merges allOf: properties, required, tighter limits', () => {
    expect(mergeSchemas([{type: 'object', required: ['a'], properties: {a: {type: 'string'}}, maxLength: 9}, {required: ['b'], properties: {b: {type: 'integer'}}, maxLength: 4}])).toEqual({
      type: 'object',
      required: ['a', 'b'],
      properties: {a: {type: 'string'}, b: {type: 'integer'}},
      maxLength: 4,
    })
  })
})
