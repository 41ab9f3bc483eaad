/**
 * Envelope + payload validation against a catalog, on the simulator's hot path.
 *
 * One Ajv instance per validator; the envelope schema is compiled once and each payload schema once,
 * lazily, the first time its type is seen. allErrors is off: the first error is all a producer or a
 * DLQ record needs, and stopping early is what makes this fast. Failures are seed 002 error contracts.
 */
import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'
import * as ajvFormats from 'ajv-formats'
import {errorContract, type ErrorContract, type EventEnvelope} from '../core/envelope.js'
import {eventLimits, textTooDeep, tooDeepContract, tooLargeContract, valueTooDeep, type EventLimits} from '../core/limits.js'
import {envelopeSchema} from './envelope.schema.js'
import {suggestTypes} from './load.js'
import type {Catalog, CatalogEvent, JsonSchema} from './types.js'

export type ValidationResult = {ok: true; event: EventEnvelope; definition: CatalogEvent} | {ok: false; error: ErrorContract}

export interface EventValidator {
  /** Checks a parsed value. An alias event_type is normalized (in a shallow copy) to the canonical type. */
  validate(value: unknown): ValidationResult
  /** Parses one JSON text and validates it (INVALID_JSON when it does not parse). */
  validateJson(text: string): ValidationResult
  /** The size and depth this validator accepts (EVENT_TOO_LARGE, EVENT_TOO_DEEP beyond them). */
  readonly limits: EventLimits
}

export interface ValidatorOptions {
  /** Default: eventLimits() (TEKTREE_MAX_DEPTH, TEKTREE_MAX_EVENT_BYTES, else the defaults). */
  limits?: EventLimits
}

// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object or the function.
type AddFormats = (ajv: Ajv) => Ajv
const addFormats: AddFormats = ((ajvFormats as unknown as {default: AddFormats & {default?: AddFormats}}).default.default ??
  (ajvFormats as unknown as {default: AddFormats}).default) as AddFormats

/** An Ajv set up the way catalog schemas need it (AsyncAPI schemas carry x-* and other non-JSON-Schema keys). */
export function createAjv(): Ajv {
  const ajv = new Ajv({strict: false, allErrors: false, allowUnionTypes: true, logger: false, code: {optimize: true}})
  addFormats(ajv)
  return ajv
}

export function createValidator(catalog: Catalog, options: ValidatorOptions = {}): EventValidator {
  const limits = options.limits ?? eventLimits()
  const ajv = createAjv()
  const envelope = ajv.compile(envelopeSchema)
  const payloads = new Map<CatalogEvent, ValidateFunction | ErrorContract>()

  const payloadValidator = (definition: CatalogEvent): ValidateFunction | ErrorContract => {
    let compiled = payloads.get(definition)
    if (compiled === undefined) {
      try {
        compiled = ajv.compile(definition.payloadSchema as JsonSchema)
      } catch (error) {
        compiled = errorContract('CATALOG_INVALID', `The payload schema of ${definition.type} in the catalog does not compile: ${(error as Error).message}`, {
          event_type: definition.type,
          pointer: definition.pointer,
        })
      }
      payloads.set(definition, compiled)
    }
    return compiled
  }

  // Size and depth come first: ajv, the stores and the consumers all walk an event recursively.
  const checkLimits = (value: unknown): ValidationResult | null => {
    const deep = valueTooDeep(value, limits.maxDepth)
    if (deep) return tooDeep(deep.path, limits.maxDepth, value)
    let text: string | undefined
    try {
      text = JSON.stringify(value)
    } catch (error) {
      return {ok: false, error: errorContract('VALIDATION_FAILED', `The event is not JSON data: ${(error as Error).message}`, {path: '$'})}
    }
    // UTF-8 bytes, counted without encoding: only a string near the limit is measured exactly.
    const bytes = text === undefined ? 0 : text.length * 3 <= limits.maxEventBytes ? text.length : Buffer.byteLength(text, 'utf8')
    return bytes > limits.maxEventBytes ? tooLarge(bytes, limits.maxEventBytes, value) : null
  }

  const validateParsed = (value: unknown): ValidationResult => {
    if (!envelope(value)) return failure(envelope.errors![0], '$', value)
    const event = value as EventEnvelope
    const definition = catalog.get(event.event_type)
    if (definition === undefined) return unknownType(catalog, event.event_type)
    const check = payloadValidator(definition)
    if (typeof check !== 'function') return {ok: false, error: errorContract(check.error.code, check.error.message, {...check.error.details})}
    if (!check(event.payload)) return failure(check.errors![0], '$.payload', value)
    return {ok: true, event: definition.type === event.event_type ? event : {...event, event_type: definition.type}, definition}
  }

  const validate = (value: unknown): ValidationResult => checkLimits(value) ?? validateParsed(value)

  return {
    limits,
    validate,
    validateJson(text: string): ValidationResult {
      const bytes = text.length * 3 <= limits.maxEventBytes ? text.length : Buffer.byteLength(text, 'utf8')
      if (bytes > limits.maxEventBytes) return tooLarge(bytes, limits.maxEventBytes, undefined)
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch (error) {
        const message = (error as Error).message
        const position = /position (\d+)/.exec(message)
        return {
          ok: false,
          error: errorContract('INVALID_JSON', `Not valid JSON: ${message}`, position ? {path: '$', position: Number(position[1])} : {path: '$'}),
        }
      }
      // The text is scanned (cheap, no recursion); only a line found too deep is walked for its path.
      if (textTooDeep(text, limits.maxDepth)) return tooDeep(valueTooDeep(value, limits.maxDepth)?.path ?? '$', limits.maxDepth, value)
      return validateParsed(value)
    },
  }
}

function eventTypeOf(value: unknown): {event_type?: string} {
  const type = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as {event_type?: unknown}).event_type : undefined
  return typeof type === 'string' ? {event_type: type} : {}
}

function tooDeep(path: string, limit: number, value: unknown): ValidationResult {
  return {ok: false, error: tooDeepContract(path, limit, eventTypeOf(value))}
}

function tooLarge(bytes: number, limit: number, value: unknown): ValidationResult {
  return {ok: false, error: tooLargeContract(bytes, limit, eventTypeOf(value))}
}

function unknownType(catalog: Catalog, type: string): ValidationResult {
  const problem = catalog.problems?.find((p) => p.type === type)
  if (problem) return {ok: false, error: errorContract(problem.code, problem.message, {path: '$.event_type', event_type: type})}
  const suggestions = suggestTypes(catalog, type)
  return {
    ok: false,
    error: errorContract('UNKNOWN_EVENT_TYPE', `$.event_type "${type}" is not an event type of ${catalog.title}${suggestions.length > 0 ? ` (did you mean ${suggestions.join(', ')}?)` : ''}`, {
      path: '$.event_type',
      event_type: type,
      suggestions,
    }),
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** "/payload/tags/0" under "$" -> "$.payload.tags[0]"; odd keys in brackets. */
export function toJsonPath(prefix: string, instancePath: string, property?: string): string {
  let path = prefix
  if (instancePath !== '') {
    for (const raw of instancePath.slice(1).split('/')) path += segment(raw.replace(/~1/g, '/').replace(/~0/g, '~'))
  }
  if (property !== undefined) path += segment(property)
  return path
}

function segment(token: string): string {
  if (/^\d+$/.test(token)) return `[${token}]`
  return IDENTIFIER.test(token) ? `.${token}` : `[${JSON.stringify(token)}]`
}

function failure(error: ErrorObject, prefix: string, value: unknown): ValidationResult {
  const params = error.params as Record<string, unknown>
  const details: Record<string, unknown> = {path: '', keyword: error.keyword}
  let message: string
  switch (error.keyword) {
    case 'required': {
      details.path = toJsonPath(prefix, error.instancePath, String(params.missingProperty))
      message = `${details.path} is required`
      break
    }
    case 'additionalProperties': {
      details.path = toJsonPath(prefix, error.instancePath, String(params.additionalProperty))
      message = `${details.path} is not allowed (no such field in the schema)`
      break
    }
    case 'enum': {
      details.path = toJsonPath(prefix, error.instancePath)
      details.allowed = params.allowedValues
      message = `${details.path} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
      break
    }
    case 'const': {
      details.path = toJsonPath(prefix, error.instancePath)
      details.expected = params.allowedValue
      message = `${details.path} must be ${JSON.stringify(params.allowedValue)}`
      break
    }
    default: {
      details.path = toJsonPath(prefix, error.instancePath)
      const expected = params.type ?? params.format ?? params.pattern ?? (params.limit !== undefined ? `${params.comparison ?? ''} ${params.limit}`.trim() : undefined)
      if (expected !== undefined) details.expected = expected
      message = `${details.path} ${error.message ?? 'is invalid'}`
    }
  }
  const type = value !== null && typeof value === 'object' ? (value as {event_type?: unknown}).event_type : undefined
  if (typeof type === 'string') details.event_type = type
  return {ok: false, error: errorContract('VALIDATION_FAILED', message, details)}
}
