/**
 * Valid example payloads and envelopes from the catalog's JSON Schemas.
 *
 * createPayloadGenerator walks a schema ONCE and returns a closure tree; calling it with a faker draws
 * a payload. Values come from the schema first (const, enum, format, pattern, limits) and from the
 * field's name second (user_id -> uuid, *_hash -> sha-256 hex, title -> a sentence), so the data reads
 * like TekTree data and always passes the schema. Everything random goes through the given faker:
 * a seeded faker gives the same payload every time.
 */
import {base, en, Faker} from '@faker-js/faker'
import type {EventEnvelope} from '../core/envelope.js'
import {UserError} from '../errors.js'
import {requireEvent} from './load.js'
import {compilePattern} from './regex-gen.js'
import type {Catalog, CatalogEvent, JsonSchema} from './types.js'

export type Generator = (faker: Faker) => unknown
export type PayloadGenerator = (faker: Faker) => Record<string, unknown>

export interface GeneratorOptions {
  /** Chance that an optional property is present (default 0.7). */
  optionalProbability?: number
  /** Chance that a nullable value is null (default 0.15). */
  nullProbability?: number
}

interface Ctx {
  optional: number
  nulls: number
}

/** A fixed "now" for seeded examples, so the same seed gives the same timestamps on any day. */
export const EXAMPLE_REF_DATE = '2025-12-16T12:00:00.000Z'

export function createPayloadGenerator(schema: JsonSchema, options: GeneratorOptions = {}): PayloadGenerator {
  const ctx: Ctx = {optional: options.optionalProbability ?? 0.7, nulls: options.nullProbability ?? 0.15}
  const gen = compile(schema, '', ctx, 0)
  return (faker) => {
    const value = gen(faker)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {value}
  }
}

type S = Record<string, any>

const MAX_DEPTH = 24

function compile(schemaIn: unknown, name: string, ctx: Ctx, depth: number): Generator {
  if (depth > MAX_DEPTH) return () => null
  if (schemaIn === true || schemaIn === undefined || schemaIn === null || typeof schemaIn !== 'object') return (f) => f.lorem.word()
  let schema = schemaIn as S
  if ('const' in schema) {
    const value = schema.const
    return () => structuredClone(value)
  }
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    const values = schema.enum as unknown[]
    return (f) => structuredClone(values[f.number.int({min: 0, max: values.length - 1})])
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const {allOf, ...rest} = schema
    return compile(mergeSchemas([rest, ...(allOf as S[])]), name, ctx, depth + 1)
  }
  const branches = (Array.isArray(schema.oneOf) && schema.oneOf.length > 0 ? schema.oneOf : Array.isArray(schema.anyOf) && schema.anyOf.length > 0 ? schema.anyOf : null) as S[] | null
  if (branches) {
    const {oneOf: _o, anyOf: _a, ...rest} = schema
    const gens = branches.map((b) => compile(mergeSchemas([rest, b]), name, ctx, depth + 1))
    return (f) => gens[f.number.int({min: 0, max: gens.length - 1})](f)
  }

  const declared: string[] = Array.isArray(schema.type) ? schema.type : typeof schema.type === 'string' ? [schema.type] : []
  const nullable = declared.includes('null') || schema.nullable === true
  let types = declared.filter((t) => t !== 'null')
  if (types.length === 0) {
    if (declared.includes('null')) return () => null
    types = [schema.properties || schema.required ? 'object' : schema.items ? 'array' : 'string']
  }
  schema = {...schema}
  const gens = types.map((type) => byType(type, schema, name, ctx, depth))
  const gen: Generator = gens.length === 1 ? gens[0] : (f) => gens[f.number.int({min: 0, max: gens.length - 1})](f)
  if (!nullable) return gen
  const p = ctx.nulls
  return (f) => (f.number.float({min: 0, max: 1}) < p ? null : gen(f))
}

function byType(type: string, schema: S, name: string, ctx: Ctx, depth: number): Generator {
  switch (type) {
    case 'object':
      return objectGen(schema, ctx, depth)
    case 'array':
      return arrayGen(schema, name, ctx, depth)
    case 'integer':
    case 'number':
      return numberGen(schema, name, type === 'integer')
    case 'boolean':
      return (f) => f.datatype.boolean()
    case 'null':
      return () => null
    default:
      return stringGen(schema, name)
  }
}

function objectGen(schema: S, ctx: Ctx, depth: number): Generator {
  const properties = (schema.properties ?? {}) as Record<string, unknown>
  const required = new Set<string>(Array.isArray(schema.required) ? schema.required : [])
  const fields = Object.keys(properties).map((key) => ({key, required: required.has(key), gen: compile(properties[key], key, ctx, depth + 1)}))
  // A required field the schema does not describe still has to be there.
  for (const key of required) if (!(key in properties)) fields.push({key, required: true, gen: compile({}, key, ctx, depth + 1)})
  const minProperties = typeof schema.minProperties === 'number' ? schema.minProperties : 0
  const p = ctx.optional
  return (f) => {
    const out: Record<string, unknown> = {}
    let count = 0
    for (const field of fields) {
      if (field.required || count < minProperties || f.number.float({min: 0, max: 1}) < p) {
        out[field.key] = field.gen(f)
        count++
      }
    }
    return out
  }
}

function arrayGen(schema: S, name: string, ctx: Ctx, depth: number): Generator {
  const itemName = name.endsWith('s') ? name.slice(0, -1) : name
  const items = compile(Array.isArray(schema.items) ? schema.items[0] : schema.items, itemName, ctx, depth + 1)
  const min = typeof schema.minItems === 'number' ? schema.minItems : 0
  const max = typeof schema.maxItems === 'number' ? schema.maxItems : Math.max(min, 3) + (min === 0 ? 0 : 2)
  const unique = schema.uniqueItems === true
  return (f) => {
    const n = f.number.int({min: Math.min(min === 0 ? 1 : min, max), max})
    const out: unknown[] = []
    const seen = unique ? new Set<string>() : null
    for (let attempts = 0; out.length < n && attempts < n * 20; attempts++) {
      const value = items(f)
      if (seen) {
        const key = JSON.stringify(value)
        if (seen.has(key)) continue
        seen.add(key)
      }
      out.push(value)
    }
    return out
  }
}

function numberGen(schema: S, name: string, integer: boolean): Generator {
  const lower = name.toLowerCase()
  const defaultSpan = /xp|amount|points|score/.test(lower) ? 500 : /count|total|level|rank|sequence|position|streak/.test(lower) ? 100 : /percent|pct/.test(lower) ? 100 : 1000
  let min = typeof schema.minimum === 'number' ? schema.minimum : typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum + (integer ? 1 : 0.01) : 0
  let max =
    typeof schema.maximum === 'number' ? schema.maximum : typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum - (integer ? 1 : 0.01) : Math.max(min, 0) + defaultSpan
  if (max < min) max = min
  const multipleOf = typeof schema.multipleOf === 'number' && schema.multipleOf > 0 ? schema.multipleOf : null
  if (multipleOf) {
    const lo = Math.ceil(min / multipleOf)
    const hi = Math.floor(max / multipleOf)
    return (f) => Number((f.number.int({min: lo, max: Math.max(lo, hi)}) * multipleOf).toPrecision(12))
  }
  if (integer) {
    min = Math.ceil(min)
    max = Math.floor(max)
    return (f) => f.number.int({min, max: Math.max(min, max)})
  }
  return (f) => {
    const value = Math.round(f.number.float({min, max}) * 100) / 100
    return Math.min(max, Math.max(min, value))
  }
}

const STRING_FORMATS: Record<string, (f: Faker) => string> = {
  uuid: (f) => f.string.uuid(),
  'date-time': (f) => f.date.recent({days: 30}).toISOString(),
  date: (f) => f.date.past({years: 30}).toISOString().slice(0, 10),
  time: (f) => f.date.recent().toISOString().slice(11, 19) + 'Z',
  uri: (f) => f.internet.url(),
  url: (f) => f.internet.url(),
  iri: (f) => f.internet.url(),
  'uri-reference': (f) => `/${f.lorem.slug(2)}`,
  'iri-reference': (f) => `/${f.lorem.slug(2)}`,
  'uri-template': (f) => `${f.internet.url()}/{id}`,
  email: (f) => f.internet.email().toLowerCase(),
  'idn-email': (f) => f.internet.email().toLowerCase(),
  hostname: (f) => f.internet.domainName(),
  'idn-hostname': (f) => f.internet.domainName(),
  ipv4: (f) => f.internet.ipv4(),
  ipv6: (f) => f.internet.ipv6(),
  duration: (f) => `PT${f.number.int({min: 1, max: 59})}M`,
  byte: (f) => Buffer.from(f.lorem.word()).toString('base64'),
  regex: () => '^[a-z]+$',
  'json-pointer': (f) => `/${f.lorem.word()}`,
}

/** Name heuristics for strings with no format or pattern: the data should look like what it names. */
const NAME_RULES: Array<[RegExp, (f: Faker) => string]> = [
  [/(hash|sha256|digest|checksum)$/, (f) => f.string.hexadecimal({length: 64, casing: 'lower', prefix: ''})],
  [/(^|_)(id|uuid)$|Id$/, (f) => f.string.uuid()],
  [/(^|_)(ip|ip_address)$/, () => 'redacted'],
  [/email/, (f) => f.internet.email().toLowerCase()],
  [/(url|uri|link|href)$/, (f) => f.internet.url()],
  [/(username|handle|login)$/, (f) => f.internet.username().toLowerCase().replace(/[^a-z0-9_]/g, '_')],
  [/slug$/, (f) => f.lorem.slug({min: 1, max: 4})],
  [/(_at|timestamp|_time)$/, (f) => f.date.recent({days: 30}).toISOString()],
  [/date$/, (f) => f.date.past({years: 2}).toISOString().slice(0, 10)],
  [/(first_name|firstname)$/, (f) => f.person.firstName()],
  [/(last_name|lastname)$/, (f) => f.person.lastName()],
  [/(display_name|full_name|^name|author_name)$/, (f) => f.person.fullName()],
  [/(title|subject|headline)$/, (f) => f.lorem.sentence({min: 3, max: 8}).replace(/\.$/, '')],
  [/(body|content|text|description|message|summary|bio|excerpt)$/, (f) => f.lorem.sentences({min: 1, max: 3})],
  [/currency/, (f) => f.finance.currencyCode()],
  [/country/, (f) => f.location.countryCode()],
  [/(locale|language|lang)$/, (f) => f.helpers.arrayElement(['en-US', 'en-GB', 'es-ES', 'pt-BR', 'de-DE'])],
  [/(token|secret|signature|key)$/, (f) => f.string.alphanumeric(32)],
  [/(tag|label|area|category|topic)$/, (f) => f.lorem.word()],
  [/(service|source|producer)$/, (f) => f.helpers.arrayElement(['user', 'knowledge', 'gamification', 'payment', 'notification'])],
]

/** Longer than any event a bus accepts: no example is made of a string required to be longer. */
const LONGEST_EXAMPLE_STRING = 1_000_000

/** minLength / maxLength as JSON Schema defines them (non-negative integers), or a clear error. */
function lengthLimit(schema: S, keyword: 'minLength' | 'maxLength', name: string): number | undefined {
  const value = schema[keyword]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new UserError(`${keyword} ${JSON.stringify(value)}${name ? ` of "${name}"` : ''} is not a non-negative integer`, {
      code: 'EXAMPLE_UNAVAILABLE',
      hint: `JSON Schema's ${keyword} is a whole number of characters, 0 or more; fix it in the catalog.`,
    })
  }
  return value
}

function stringGen(schema: S, name: string): Generator {
  const minLength = lengthLimit(schema, 'minLength', name) ?? 0
  const maxLength = lengthLimit(schema, 'maxLength', name) ?? Infinity
  if (minLength > LONGEST_EXAMPLE_STRING || minLength > maxLength) {
    throw new UserError(`cannot generate a string of ${minLength}..${maxLength} characters${name ? ` for "${name}"` : ''}`, {
      code: 'EXAMPLE_UNAVAILABLE',
      hint: minLength > maxLength ? 'minLength is above maxLength: fix the limits in the catalog.' : `tektree makes example strings of at most ${LONGEST_EXAMPLE_STRING.toLocaleString('en-US')} characters; give the field an example.`,
    })
  }
  const fit = (value: string, f: Faker): string => {
    let out = value
    if (out.length < minLength) out += f.string.alpha({length: minLength - out.length, casing: 'lower'})
    if (out.length > maxLength) out = out.slice(0, maxLength)
    return out
  }
  if (typeof schema.pattern === 'string') {
    const pattern = schema.pattern
    const regex = new RegExp(pattern, 'u')
    let draw: ((f: Faker) => string) | null = null
    try {
      const compiled = compilePattern(pattern)
      draw = (f) => compiled((min, max) => f.number.int({min, max}))
    } catch (error) {
      throw new UserError(`cannot generate strings for the pattern ${JSON.stringify(pattern)}${name ? ` of "${name}"` : ''}: ${(error as Error).message}`, {
        code: 'EXAMPLE_UNAVAILABLE',
        hint: 'tektree generates from patterns without lookarounds or back-references; give the field an example or a simpler pattern.',
      })
    }
    const generate = draw
    return (f) => {
      for (let attempt = 0; attempt < 25; attempt++) {
        const value = generate(f)
        if (value.length >= minLength && value.length <= maxLength && regex.test(value)) return value
      }
      throw new UserError(`could not generate a string of ${minLength}..${maxLength} characters matching ${JSON.stringify(pattern)}${name ? ` for "${name}"` : ''}`, {
        code: 'EXAMPLE_UNAVAILABLE',
        hint: 'Check that the pattern can match a string within minLength..maxLength.',
      })
    }
  }
  // Own keys only: a format named "constructor" or "toString" is not one of ours.
  if (typeof schema.format === 'string' && Object.hasOwn(STRING_FORMATS, schema.format)) {
    const format = STRING_FORMATS[schema.format]
    return (f) => format(f)
  }
  const lower = name.toLowerCase()
  const rule = NAME_RULES.find(([test]) => test.test(name) || test.test(lower))
  const draw = rule ? rule[1] : (f: Faker) => f.lorem.words({min: 1, max: 3})
  return (f) => fit(draw(f), f)
}

/** allOf as one schema: properties merged, required united, the tighter limit kept. */
export function mergeSchemas(schemas: S[]): S {
  const out: S = {}
  for (const schema of schemas) {
    if (!schema || typeof schema !== 'object') continue
    const flat = Array.isArray(schema.allOf) ? mergeSchemas([{...schema, allOf: undefined}, ...schema.allOf]) : schema
    for (const [key, value] of Object.entries(flat)) {
      if (value === undefined || key === 'allOf') continue
      if (key === 'properties') {
        const props: S = {...(out.properties ?? {})}
        for (const [prop, sub] of Object.entries(value as S)) props[prop] = prop in props ? {allOf: [props[prop], sub]} : sub
        out.properties = props
      } else if (key === 'required') {
        out.required = [...new Set([...(out.required ?? []), ...(value as string[])])]
      } else if ((key === 'minimum' || key === 'minLength' || key === 'minItems' || key === 'exclusiveMinimum' || key === 'minProperties') && key in out) {
        out[key] = Math.max(out[key], value as number)
      } else if ((key === 'maximum' || key === 'maxLength' || key === 'maxItems' || key === 'exclusiveMaximum' || key === 'maxProperties') && key in out) {
        out[key] = Math.min(out[key], value as number)
      } else if (key === 'additionalProperties' && key in out) {
        out[key] = out[key] === false || value === false ? false : value
      } else if (key === 'type' && key in out) {
        const a: string[] = Array.isArray(out.type) ? out.type : [out.type]
        const b: string[] = Array.isArray(value) ? value : [value as string]
        const both = a.filter((t) => b.includes(t) || (t === 'integer' && b.includes('number')))
        const extra = b.filter((t) => t === 'integer' && a.includes('number'))
        const types = [...new Set([...both, ...extra])]
        out.type = types.length === 1 ? types[0] : types
      } else {
        out[key] = value
      }
    }
  }
  return out
}

export interface ExampleOptions {
  /** Same seed, same event (ids, timestamps and payload). Without one, a fresh random event. */
  seed?: number
  /** Use this faker instead (its state advances); overrides seed. */
  faker?: Faker
}

/** One generator per event type, compiled on first use. */
export function createExampleFactory(catalog: Catalog, options: GeneratorOptions = {}): (type: string, example?: ExampleOptions) => EventEnvelope {
  const generators = new Map<CatalogEvent, PayloadGenerator>()
  return (type, example = {}) => {
    const definition = requireEvent(catalog, type)
    let generate = generators.get(definition)
    if (!generate) {
      generate = createPayloadGenerator(definition.payloadSchema, options)
      generators.set(definition, generate)
    }
    return buildEnvelope(definition, generate, example)
  }
}

/** A full, valid example envelope of `type` (canonical or alias). */
export function exampleEvent(catalog: Catalog, type: string, options: ExampleOptions = {}): EventEnvelope {
  const definition = requireEvent(catalog, type)
  return buildEnvelope(definition, createPayloadGenerator(definition.payloadSchema), options)
}

function buildEnvelope(definition: CatalogEvent, generate: PayloadGenerator, options: ExampleOptions): EventEnvelope {
  let faker = options.faker
  if (!faker) {
    faker = new Faker({locale: [en, base]})
    if (options.seed !== undefined) {
      faker.seed(options.seed)
      faker.setDefaultRefDate(EXAMPLE_REF_DATE)
    }
  }
  const payload = generate(faker)
  const service = definition.producer ?? 'example'
  const key = definition.partitionKey ? payload[definition.partitionKey] : undefined
  return {
    event_id: faker.string.uuid(),
    event_type: definition.type,
    event_version: definition.version,
    timestamp: faker.date.recent({days: 1}).toISOString(),
    source_service: service,
    payload,
    trace_id: faker.string.hexadecimal({length: 32, casing: 'lower', prefix: ''}),
    correlation_id: faker.string.uuid(),
    causation_id: null,
    producer_id: `${service}-${faker.number.int({min: 1, max: 4})}`,
    metadata: typeof key === 'string' && key.length > 0 ? {aggregate_id: key} : {},
  }
}
