/**
 * What changed between two versions of a catalog, and whether each event's version says so
 * (seed 000 "Event Versioning Strategy", seed 002 "Schema Governance": CI gates on the schema diff).
 *
 * Seen from a consumer that was written against the OLD schema:
 *   breaking  field removed, type changed, new required field, field made optional, enum narrowed,
 *             format/pattern changed, a limit tightened, topic changed, event removed
 *   minor     added optional field, enum widened, a limit relaxed, new event, partition key changed,
 *             consumers/aliases changed
 *   patch     documentation (title/description/summary/examples), retention
 * A breaking change is OK only with a major bump of the event's version (for a removed event: of the
 * catalog's version); a minor change needs at least a minor bump (otherwise a warning, not a failure).
 */
import {mergeSchemas} from './example.js'
import type {Catalog, CatalogEvent} from './types.js'

export type ChangeKind = 'breaking' | 'minor' | 'patch'

export interface CatalogChange {
  type: string
  kind: ChangeKind
  /** What happened, e.g. "field removed", "type changed", "event added". */
  change: string
  /** Where, as a JSON path into the envelope ("$.payload.user_id"); "$" for the event as a whole. */
  path: string
  detail?: string
  oldVersion: string | null
  newVersion: string | null
  producer: string | null
  /** Services consuming the event (old and new), i.e. whom the change hits. */
  consumers: string[]
  /** Whether the version bump covers the change. */
  versionOk: boolean
}

export interface DiffSummary {
  breaking: number
  minor: number
  patch: number
  /** Breaking changes without a major bump: these fail the gate. */
  unbumpedBreaking: number
  /** Minor changes without at least a minor bump: warnings. */
  unbumpedMinor: number
  ok: boolean
}

type S = Record<string, any>
type Raw = {kind: ChangeKind; change: string; path: string; detail?: string}

export function diffCatalogs(oldCatalog: Catalog, newCatalog: Catalog): CatalogChange[] {
  const changes: CatalogChange[] = []
  const catalogMajorBump = major(newCatalog.version) > major(oldCatalog.version)
  const matched = new Set<CatalogEvent>()
  for (const before of oldCatalog.events) {
    const after = newCatalog.get(before.type)
    const consumers = services(before, after)
    if (!after) {
      changes.push({
        type: before.type,
        kind: 'breaking',
        change: 'event removed',
        path: '$',
        detail: `catalog version ${oldCatalog.version} -> ${newCatalog.version}`,
        oldVersion: before.version,
        newVersion: null,
        producer: before.producer,
        consumers,
        versionOk: catalogMajorBump,
      })
      continue
    }
    matched.add(after)
    const raws = diffEvent(before, after)
    const bump = compareVersions(before.version, after.version)
    for (const raw of raws) {
      changes.push({
        type: before.type,
        ...raw,
        oldVersion: before.version,
        newVersion: after.version,
        producer: after.producer ?? before.producer,
        consumers,
        versionOk: bump === 'down' ? false : raw.kind === 'breaking' ? bump === 'major' : raw.kind === 'minor' ? bump === 'major' || bump === 'minor' : true,
      })
    }
    if (bump === 'down') {
      changes.push({
        type: before.type,
        kind: 'breaking',
        change: 'version decreased',
        path: '$',
        oldVersion: before.version,
        newVersion: after.version,
        producer: after.producer ?? before.producer,
        consumers,
        versionOk: false,
      })
    }
  }
  for (const after of newCatalog.events) {
    if (matched.has(after)) continue
    changes.push({
      type: after.type,
      kind: 'minor',
      change: 'event added',
      path: '$',
      oldVersion: null,
      newVersion: after.version,
      producer: after.producer,
      consumers: services(after),
      versionOk: true,
    })
  }
  return changes
}

export function summarizeDiff(changes: CatalogChange[]): DiffSummary {
  const summary: DiffSummary = {breaking: 0, minor: 0, patch: 0, unbumpedBreaking: 0, unbumpedMinor: 0, ok: true}
  for (const change of changes) {
    summary[change.kind]++
    if (!change.versionOk && change.kind === 'breaking') summary.unbumpedBreaking++
    if (!change.versionOk && change.kind === 'minor') summary.unbumpedMinor++
  }
  summary.ok = summary.unbumpedBreaking === 0
  return summary
}

function services(...events: Array<CatalogEvent | undefined>): string[] {
  const names = new Set<string>()
  for (const event of events) for (const consumer of event?.consumers ?? []) names.add(consumer.service)
  return [...names].sort()
}

function major(version: string): number {
  return Number(/^v?(\d+)/.exec(version)?.[1] ?? 0)
}

/** How `after` moved from `before`: 'major' | 'minor' | 'patch' | 'none' | 'down'. */
export function compareVersions(before: string, after: string): 'major' | 'minor' | 'patch' | 'none' | 'down' {
  const a = parts(before)
  const b = parts(after)
  for (let i = 0; i < 3; i++) {
    if (b[i] > a[i]) return (['major', 'minor', 'patch'] as const)[i]
    if (b[i] < a[i]) return 'down'
  }
  return 'none'
}

function parts(version: string): [number, number, number] {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version.trim())
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [0, 0, 0]
}

function diffEvent(before: CatalogEvent, after: CatalogEvent): Raw[] {
  const out: Raw[] = []
  if (before.topic !== after.topic) out.push({kind: 'breaking', change: 'topic changed', path: '$', detail: `${before.topic} -> ${after.topic}`})
  if (before.partitionKey !== after.partitionKey) {
    out.push({kind: 'minor', change: 'partition key changed', path: '$', detail: `${before.partitionKey ?? 'none'} -> ${after.partitionKey ?? 'none'} (per-aggregate ordering moves)`})
  }
  if (before.producer !== after.producer) out.push({kind: 'patch', change: 'producer changed', path: '$', detail: `${before.producer ?? 'none'} -> ${after.producer ?? 'none'}`})
  const removedAliases = before.aliases.filter((a) => !after.aliases.includes(a) && a !== after.type)
  if (removedAliases.length > 0) out.push({kind: 'breaking', change: 'alias removed', path: '$.event_type', detail: removedAliases.join(', ')})
  const addedAliases = after.aliases.filter((a) => !before.aliases.includes(a))
  if (addedAliases.length > 0) out.push({kind: 'patch', change: 'alias added', path: '$.event_type', detail: addedAliases.join(', ')})
  const oldServices = new Set(before.consumers.map((c) => c.service))
  const newServices = new Set(after.consumers.map((c) => c.service))
  const gone = [...oldServices].filter((s) => !newServices.has(s))
  const came = [...newServices].filter((s) => !oldServices.has(s))
  if (gone.length > 0) out.push({kind: 'patch', change: 'consumer removed', path: '$', detail: gone.join(', ')})
  if (came.length > 0) out.push({kind: 'patch', change: 'consumer added', path: '$', detail: came.join(', ')})
  const oldRetention = before.retention ? `${before.retention.category}/${before.retention.maxAgeMs ?? 'indefinite'}` : 'none'
  const newRetention = after.retention ? `${after.retention.category}/${after.retention.maxAgeMs ?? 'indefinite'}` : 'none'
  if (oldRetention !== newRetention) out.push({kind: 'patch', change: 'retention changed', path: '$', detail: `${oldRetention} -> ${newRetention}`})
  diffSchema(before.payloadSchema, after.payloadSchema, '$.payload', out)
  return out
}

function normalize(schema: unknown): S {
  if (!schema || typeof schema !== 'object') return {}
  const s = schema as S
  return Array.isArray(s.allOf) ? mergeSchemas([{...s, allOf: undefined}, ...s.allOf]) : s
}

function typeSet(schema: S): string[] {
  const types: string[] = Array.isArray(schema.type) ? [...schema.type] : typeof schema.type === 'string' ? [schema.type] : []
  if (schema.nullable === true && !types.includes('null')) types.push('null')
  return types.sort()
}

const LOWER_LIMITS = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties']
const UPPER_LIMITS = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties']
const DOC_KEYS = ['title', 'description', 'examples', 'example', 'default', 'deprecated', '$comment']

function diffSchema(beforeIn: unknown, afterIn: unknown, path: string, out: Raw[]): void {
  const before = normalize(beforeIn)
  const after = normalize(afterIn)

  const oldTypes = typeSet(before)
  const newTypes = typeSet(after)
  if (oldTypes.join() !== newTypes.join()) {
    // A type added to a union (incl. null) is still a change a consumer may not handle.
    out.push({kind: 'breaking', change: 'type changed', path, detail: `${oldTypes.join('|') || 'any'} -> ${newTypes.join('|') || 'any'}`})
    return
  }
  for (const key of ['format', 'pattern', 'const'] as const) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      out.push({kind: 'breaking', change: `${key} changed`, path, detail: `${JSON.stringify(before[key] ?? null)} -> ${JSON.stringify(after[key] ?? null)}`})
    }
  }
  if (Array.isArray(before.enum) || Array.isArray(after.enum)) {
    const oldValues: unknown[] = Array.isArray(before.enum) ? before.enum : []
    const newValues: unknown[] = Array.isArray(after.enum) ? after.enum : []
    const has = (list: unknown[], v: unknown) => list.some((x) => JSON.stringify(x) === JSON.stringify(v))
    const removed = Array.isArray(after.enum) ? oldValues.filter((v) => !has(newValues, v)) : []
    const added = Array.isArray(before.enum) ? newValues.filter((v) => !has(oldValues, v)) : []
    if (!Array.isArray(before.enum)) out.push({kind: 'breaking', change: 'enum narrowed', path, detail: `now only ${newValues.map((v) => JSON.stringify(v)).join(', ')}`})
    else if (removed.length > 0) out.push({kind: 'breaking', change: 'enum narrowed', path, detail: `removed ${removed.map((v) => JSON.stringify(v)).join(', ')}`})
    if (!Array.isArray(after.enum)) out.push({kind: 'minor', change: 'enum widened', path, detail: 'any value now allowed'})
    else if (added.length > 0) out.push({kind: 'minor', change: 'enum widened', path, detail: `added ${added.map((v) => JSON.stringify(v)).join(', ')}`})
  }
  for (const key of LOWER_LIMITS) limitChange(key, before[key], after[key], 'lower', path, out)
  for (const key of UPPER_LIMITS) limitChange(key, before[key], after[key], 'upper', path, out)
  for (const key of DOC_KEYS) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      out.push({kind: 'patch', change: `${key === 'example' ? 'examples' : key} changed`, path})
      break
    }
  }

  // Objects: fields removed / added / made required or optional.
  const oldProps = (before.properties ?? {}) as S
  const newProps = (after.properties ?? {}) as S
  const oldRequired = new Set<string>(before.required ?? [])
  const newRequired = new Set<string>(after.required ?? [])
  const child = (key: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`)
  for (const key of Object.keys(oldProps)) {
    if (!(key in newProps)) {
      out.push({kind: 'breaking', change: 'field removed', path: child(key)})
      continue
    }
    if (!oldRequired.has(key) && newRequired.has(key)) out.push({kind: 'breaking', change: 'field became required', path: child(key)})
    if (oldRequired.has(key) && !newRequired.has(key)) out.push({kind: 'breaking', change: 'field became optional', path: child(key), detail: 'consumers may no longer get it'})
    diffSchema(oldProps[key], newProps[key], child(key), out)
  }
  for (const key of Object.keys(newProps)) {
    if (key in oldProps) continue
    if (newRequired.has(key)) out.push({kind: 'breaking', change: 'new required field', path: child(key)})
    else out.push({kind: 'minor', change: 'added optional field', path: child(key)})
  }
  // Required names without a property schema on either side.
  for (const key of newRequired) if (!(key in newProps) && !(key in oldProps) && !oldRequired.has(key)) out.push({kind: 'breaking', change: 'new required field', path: child(key)})
  if (before.additionalProperties !== false && after.additionalProperties === false && Object.keys(oldProps).length > 0) {
    out.push({kind: 'breaking', change: 'additional properties forbidden', path})
  }
  if (before.additionalProperties === false && after.additionalProperties !== false && after.additionalProperties !== undefined) {
    out.push({kind: 'minor', change: 'additional properties allowed', path})
  }

  if (before.items !== undefined || after.items !== undefined) diffSchema(before.items, after.items, `${path}[]`, out)
  for (const key of ['oneOf', 'anyOf'] as const) {
    const a: unknown[] = Array.isArray(before[key]) ? before[key] : []
    const b: unknown[] = Array.isArray(after[key]) ? after[key] : []
    if (a.length === 0 && b.length === 0) continue
    if (b.length < a.length) out.push({kind: 'breaking', change: `${key} branch removed`, path, detail: `${a.length} -> ${b.length} branches`})
    if (b.length > a.length) out.push({kind: 'breaking', change: `${key} branch added`, path, detail: `${a.length} -> ${b.length} branches`})
    for (let i = 0; i < Math.min(a.length, b.length); i++) diffSchema(a[i], b[i], `${path}<${key}[${i}]>`, out)
  }
}

function limitChange(key: string, before: unknown, after: unknown, side: 'lower' | 'upper', path: string, out: Raw[]): void {
  if (before === after) return
  const a = typeof before === 'number' ? before : null
  const b = typeof after === 'number' ? after : null
  if (a === b) return
  // Tighter = a lower bound raised / appeared, an upper bound lowered / appeared.
  const tighter = side === 'lower' ? b !== null && (a === null || b > a) : b !== null && (a === null || b < a)
  out.push({kind: tighter ? 'breaking' : 'minor', change: tighter ? 'constraint tightened' : 'constraint relaxed', path, detail: `${key} ${a ?? 'none'} -> ${b ?? 'none'}`})
}
