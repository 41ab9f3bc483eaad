/**
 * Scenarios are data: fixtures/scenarios/*.yaml, checked against SCENARIO_SCHEMA with ajv. A bad file
 * is a UserError naming the file, the field path and what is wrong; command-line flags override.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {basename, dirname, extname, isAbsolute, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv, type ErrorObject} from 'ajv'
import {parse as parseYaml} from 'yaml'
import {UserError} from '../errors.js'
import {formatDuration, parseDuration} from '../core/duration.js'
import {closest, didYouMean} from '../core/suggest.js'

export const JOURNEY_STEPS = [
  'register',
  'authenticate',
  'verify_email',
  'update_profile',
  'follow',
  'ask',
  'answer',
  'accept',
  'like',
  'comment',
  'upvote',
  'insight',
  'discussion',
  'resource',
  'upgrade',
  'downgrade',
  'cancel',
  'join_realtime',
  'create_area',
] as const
export type JourneyStep = (typeof JOURNEY_STEPS)[number]

export type StageShape = 'ramp' | 'step'

export interface Stage {
  /** Milliseconds. */
  durationMs: number
  /** Events per second reached at the end of the stage (ramp) or held through it (step). */
  target: number
  shape: StageShape
}

export interface RateProfileSpec {
  /** Rate at t=0, where the first ramp starts from (k6's startRate). */
  start: number
  stages: Stage[]
}

export interface FaultSpec {
  /** Percent of generated events that are accompanied by a poison message (0-100). */
  poisonPct: number
  duplicatePct: number
  reorderPct: number
  /** service -> fraction (0-1) of events whose first attempt(s) fail. */
  handlerFailure: Record<string, number>
  /** service -> fraction (0-1) of events that always fail (they end in the DLQ). */
  permanentFailure: Record<string, number>
  /** Milliseconds between consumer crashes; null = none. */
  consumerCrashEveryMs: number | null
}

export interface Scenario {
  name: string
  description: string
  /** Where it was read from ("flags" when built from flags alone). */
  source: string
  seed: number | null
  population: {users: number; areas: number}
  journeys: Record<JourneyStep, number>
  rate: RateProfileSpec
  /** Stop after this long (ms); null = the stages' total, or until `events` when only that is set. */
  durationMs: number | null
  /** Stop after this many simulated events; null = no cap. */
  events: number | null
  /**
   * The first milliseconds of generation, left out of the latencies the report gives and the
   * assertions judge (JIT compilation, cold caches): 0 = none.
   */
  warmupMs: number
  faults: FaultSpec
  clock: {speed: number}
  services: 'all' | string[]
  /** Consumers per service. */
  consumers: number
  assert: string[]
}

const DURATION = '^\\d+(\\.\\d+)?(ms|s|m|h)$'
const rateMap = {
  type: 'object',
  additionalProperties: {type: 'number', minimum: 0, maximum: 1},
}

/** The JSON Schema of a scenario file (also documents it). */
export const SCENARIO_SCHEMA = {
  $id: 'https://tektree.dev/schemas/scenario.json',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'population', 'rate'],
  properties: {
    name: {type: 'string', minLength: 1},
    description: {type: 'string'},
    seed: {type: 'integer', minimum: 0},
    population: {
      type: 'object',
      additionalProperties: false,
      required: ['users'],
      properties: {users: {type: 'integer', minimum: 1}, areas: {type: 'integer', minimum: 1}},
    },
    journeys: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(JOURNEY_STEPS.map((step) => [step, {type: 'number', minimum: 0}])),
    },
    rate: {
      type: 'object',
      additionalProperties: false,
      required: ['stages'],
      properties: {
        start: {type: 'number', minimum: 0},
        shape: {enum: ['ramp', 'step']},
        stages: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['duration', 'target'],
            properties: {
              duration: {type: 'string', pattern: DURATION},
              target: {type: 'number', minimum: 0},
              shape: {enum: ['ramp', 'step']},
            },
          },
        },
      },
    },
    duration: {type: 'string', pattern: DURATION},
    events: {type: 'integer', minimum: 1},
    warmup: {type: 'string', pattern: DURATION},
    faults: {
      type: 'object',
      additionalProperties: false,
      properties: {
        poison_pct: {type: 'number', minimum: 0, maximum: 100},
        duplicate_pct: {type: 'number', minimum: 0, maximum: 100},
        reorder_pct: {type: 'number', minimum: 0, maximum: 100},
        handler_failure: rateMap,
        permanent_failure: rateMap,
        consumer_crash_every: {type: 'string', pattern: DURATION},
      },
    },
    clock: {
      type: 'object',
      additionalProperties: false,
      properties: {speed: {type: 'number', exclusiveMinimum: 0}},
    },
    services: {
      anyOf: [{const: 'all'}, {type: 'array', items: {type: 'string', minLength: 1}}],
    },
    consumers: {type: 'integer', minimum: 1, maximum: 64},
    assert: {type: 'array', items: {type: 'string', minLength: 1}},
  },
} as const

export {formatDuration, parseDuration}

const DEFAULT_JOURNEYS: Record<JourneyStep, number> = {
  register: 4,
  authenticate: 14,
  verify_email: 3,
  update_profile: 3,
  follow: 8,
  ask: 8,
  answer: 10,
  accept: 3,
  like: 16,
  comment: 8,
  upvote: 10,
  insight: 3,
  discussion: 2,
  resource: 2,
  upgrade: 1,
  downgrade: 0.5,
  cancel: 0.3,
  join_realtime: 4,
  create_area: 0.2,
}

let ajvValidate: ReturnType<Ajv['compile']> | undefined
function validator() {
  // verbose: errors carry their parentSchema, whose properties name the fields an unknown one may be a typo of.
  ajvValidate ??= new Ajv({allErrors: true, strict: false, verbose: true}).compile(SCENARIO_SCHEMA)
  return ajvValidate
}

/** "/rate/stages/1/target" -> "rate.stages[1].target" */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean)
  if (extra) parts.push(extra)
  let out = ''
  for (const part of parts) out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part
  return out || '(top level)'
}

function describeError(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required':
      return `${fieldPath(error.instancePath, String(p.missingProperty))} is required`
    case 'additionalProperties': {
      const known = Object.keys((error.parentSchema as {properties?: Record<string, unknown>} | undefined)?.properties ?? {})
      const field = String(p.additionalProperty)
      const guess = closest(field, known)
      if (guess.length > 0) return `${fieldPath(error.instancePath, field)} is not a known field.${didYouMean(guess, (name) => fieldPath(error.instancePath, name))}`
      return `${fieldPath(error.instancePath, field)} is not a known field${known.length > 0 ? ` (known here: ${known.join(', ')})` : ''}`
    }
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum': {
      const op = error.keyword === 'minimum' ? '>=' : error.keyword === 'maximum' ? '<=' : '>'
      return `${fieldPath(error.instancePath)} must be a number ${op} ${String(p.limit)}`
    }
    case 'type':
      return `${fieldPath(error.instancePath)} must be ${p.type === 'integer' ? 'an integer' : `a ${String(p.type)}`}`
    case 'pattern':
      return `${fieldPath(error.instancePath)} must be a duration like 500ms, 30s, 10m or 1h`
    case 'enum':
      return `${fieldPath(error.instancePath)} must be one of ${(p.allowedValues as unknown[]).join(', ')}`
    default:
      return `${fieldPath(error.instancePath)} ${error.message ?? 'is invalid'}`
  }
}

/**
 * The most useful error first: an unknown field (a typo, `populaton:`, also makes the field it was
 * meant to be "required"), then a typed leaf, which beats the anyOf summary above it.
 */
function pickError(errors: ErrorObject[]): ErrorObject {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties')
  if (unknown) return unknown
  const concrete = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'const')
  if (concrete.length > 0 && !errors.some((e) => e.keyword === 'anyOf')) return concrete[0]
  const anyOf = errors.find((e) => e.keyword === 'anyOf')
  if (anyOf) return {...anyOf, message: 'must be "all" or a list of service names'}
  return errors[0]
}

function bad(source: string, message: string): UserError {
  return new UserError(`${source}: ${message}`, {code: 'SCENARIO_INVALID', hint: 'Fix the scenario file (see fixtures/scenarios/ for examples).'})
}

/** Turns raw (parsed YAML) data into a Scenario, or throws a UserError naming `source` and the field. */
export function parseScenario(raw: unknown, source: string): Scenario {
  const validate = validator()
  if (!validate(raw)) {
    const errors = validate.errors ?? []
    const first = pickError(errors)
    throw bad(source, first.keyword === 'anyOf' ? `${fieldPath(first.instancePath)} ${first.message}` : describeError(first))
  }
  const data = raw as Record<string, any>
  const defaultShape: StageShape = data.rate.shape ?? 'ramp'
  const stages: Stage[] = (data.rate.stages as Array<{duration: string; target: number; shape?: StageShape}>).map((s) => ({
    durationMs: parseDuration(s.duration),
    target: s.target,
    shape: s.shape ?? defaultShape,
  }))
  stages.forEach((stage, i) => {
    if (stage.durationMs <= 0) throw bad(source, `rate.stages[${i}].duration must be longer than 0`)
  })
  const journeys = {...(data.journeys ? Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 0])) : DEFAULT_JOURNEYS), ...(data.journeys ?? {})} as Record<JourneyStep, number>
  if (!JOURNEY_STEPS.some((s) => journeys[s] > 0)) throw bad(source, 'journeys must give at least one step a weight > 0')
  if (journeys.register <= 0) throw bad(source, 'journeys.register must be > 0 (users register before anything else)')
  const faults = data.faults ?? {}
  const scenario: Scenario = {
    name: data.name,
    description: data.description ?? '',
    source,
    seed: data.seed ?? null,
    population: {users: data.population.users, areas: data.population.areas ?? Math.max(1, Math.min(20, Math.ceil(data.population.users / 50)))},
    journeys,
    rate: {start: data.rate.start ?? 0, stages},
    durationMs: data.duration ? parseDuration(data.duration) : null,
    events: data.events ?? null,
    warmupMs: data.warmup ? parseDuration(data.warmup) : 0,
    faults: {
      poisonPct: faults.poison_pct ?? 0,
      duplicatePct: faults.duplicate_pct ?? 0,
      reorderPct: faults.reorder_pct ?? 0,
      handlerFailure: faults.handler_failure ?? {},
      permanentFailure: faults.permanent_failure ?? {},
      consumerCrashEveryMs: faults.consumer_crash_every ? parseDuration(faults.consumer_crash_every) : null,
    },
    clock: {speed: data.clock?.speed ?? 1},
    services: data.services ?? 'all',
    consumers: data.consumers ?? 1,
    assert: data.assert ?? [],
  }
  const tooLong = warmupTooLong(scenario)
  if (tooLong) throw bad(source, `warmup ${tooLong}`)
  return scenario
}

/** Why the scenario's warm-up cannot be left out of its run, or null when it can. */
function warmupTooLong(scenario: Scenario): string | null {
  const planned = plannedDurationMs(scenario)
  if (scenario.warmupMs === 0 || planned === null || scenario.warmupMs < planned) return null
  return `(${formatDuration(scenario.warmupMs)}) must be shorter than the run (${formatDuration(planned)}): nothing would be measured`
}

/** fixtures/scenarios of the installed package: works from src/ (tsx) and from dist/. */
export function scenariosDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'fixtures', 'scenarios')
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error('fixtures/scenarios not found above ' + fileURLToPath(import.meta.url))
}

export function listScenarios(): string[] {
  return readdirSync(scenariosDir())
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => basename(f, extname(f)))
    .sort()
}

/** A shipped name ("smoke") or a path to a YAML/JSON file. */
export function resolveScenarioPath(nameOrFile: string, cwd = process.cwd()): string {
  const looksLikePath = /[\\/]/.test(nameOrFile) || /\.(ya?ml|json)$/.test(nameOrFile)
  if (looksLikePath) {
    const path = isAbsolute(nameOrFile) ? nameOrFile : resolve(cwd, nameOrFile)
    if (!existsSync(path)) throw new UserError(`Scenario file not found: ${nameOrFile}`, {code: 'SCENARIO_NOT_FOUND'})
    return path
  }
  for (const ext of ['.yaml', '.yml']) {
    const path = join(scenariosDir(), nameOrFile + ext)
    if (existsSync(path)) return path
  }
  const shipped = listScenarios()
  throw new UserError(`Unknown scenario "${nameOrFile}".${didYouMean(closest(nameOrFile, shipped))}`, {
    code: 'SCENARIO_NOT_FOUND',
    hint: `Shipped scenarios: ${shipped.join(', ')}; or give a path to a YAML file.`,
  })
}

export function loadScenarioFile(path: string, displayPath = path): Scenario {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(path, 'utf8'))
  } catch (error) {
    throw bad(displayPath, `not valid YAML: ${(error as Error).message.split('\n')[0]}`)
  }
  return parseScenario(raw, displayPath)
}

export function loadScenario(nameOrFile: string, cwd = process.cwd()): Scenario {
  const path = resolveScenarioPath(nameOrFile, cwd)
  const rel = path.startsWith(cwd + '/') ? path.slice(cwd.length + 1) : path
  return loadScenarioFile(path, rel)
}

export interface ScenarioOverrides {
  /** A single steady stage at this rate (events/s). */
  rate?: number
  duration?: string
  events?: number
  seed?: number
  population?: number
  assert?: string[]
  /** Replaces the scenario's warm-up ("0s" = none). */
  warmup?: string
}

/** Flags win over the file. --rate replaces the stages with one steady stage. */
export function applyOverrides(scenario: Scenario, o: ScenarioOverrides): Scenario {
  const out: Scenario = {...scenario, rate: {...scenario.rate, stages: [...scenario.rate.stages]}}
  const flagError = (flag: string, what: string) => new UserError(`--${flag} ${what}`, {code: 'INVALID_FLAG'})
  if (o.duration !== undefined) {
    try {
      out.durationMs = parseDuration(o.duration)
    } catch (error) {
      throw flagError('duration', (error as Error).message)
    }
    if (out.durationMs <= 0) throw flagError('duration', 'must be longer than 0')
    // --duration alone: run that long, whatever event cap the scenario has (smoke's 2,000).
    if (o.events === undefined) out.events = null
  }
  if (o.rate !== undefined) {
    if (!(o.rate > 0) || !Number.isFinite(o.rate)) throw flagError('rate', 'must be a number > 0')
    const durationMs = out.durationMs ?? totalStagesMs(scenario.rate)
    out.rate = {start: o.rate, stages: [{durationMs, target: o.rate, shape: 'step'}]}
  }
  if (o.events !== undefined) {
    if (!Number.isInteger(o.events) || o.events < 1) throw flagError('events', 'must be an integer >= 1')
    out.events = o.events
    // --events alone: run until that many, however long the stages last.
    if (o.duration === undefined) out.durationMs = null
  }
  if (o.seed !== undefined) {
    if (!Number.isInteger(o.seed) || o.seed < 0) throw flagError('seed', 'must be an integer >= 0')
    out.seed = o.seed
  }
  if (o.population !== undefined) {
    if (!Number.isInteger(o.population) || o.population < 1) throw flagError('population', 'must be an integer >= 1')
    out.population = {...out.population, users: o.population}
  }
  if (o.assert && o.assert.length > 0) out.assert = [...out.assert, ...o.assert]
  if (o.warmup !== undefined) {
    try {
      out.warmupMs = parseDuration(o.warmup)
    } catch (error) {
      throw flagError('warmup', (error as Error).message)
    }
  }
  const tooLong = warmupTooLong(out)
  if (tooLong) {
    const hint = o.warmup !== undefined ? 'Give a shorter --warmup or a longer --duration.' : 'Give a longer --duration, or --warmup 0s to measure the whole run.'
    throw new UserError(`The warm-up ${tooLong}.`, {code: 'INVALID_FLAG', hint})
  }
  return out
}

export function totalStagesMs(rate: RateProfileSpec): number {
  return rate.stages.reduce((sum, s) => sum + s.durationMs, 0)
}

/** How long generation may run: --duration, else the stages (or unbounded when only --events caps it). */
export function plannedDurationMs(scenario: Scenario): number | null {
  if (scenario.durationMs !== null) return scenario.durationMs
  if (scenario.events !== null) return null
  return totalStagesMs(scenario.rate)
}
