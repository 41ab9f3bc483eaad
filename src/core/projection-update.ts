/**
 * The semantic reference for ProjectionUpdate (a portable subset of MongoDB's update operators) and
 * for the equality filters of ProjectionStore.find. The in-process store uses it directly; the
 * MongoDB adapter sends the operators to the server, and both run the same contract suite.
 *
 * Pure: applyUpdate never mutates its input.
 */
import {copyData} from './copy.js'
import type {ProjectionUpdate} from './ports.js'

export type Doc = Record<string, unknown>

/** The field applyOnce keeps the last applied event ids in (same name in every adapter). */
export const APPLIED_FIELD = '_applied'
/** How many applied event ids a document remembers (same bound in every adapter). */
export const APPLIED_LIMIT = 256

function isPlainObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function split(path: string): string[] {
  // Most paths are one field: no split, no scan.
  if (path !== '' && !path.includes('.')) return [path]
  const parts = path.split('.')
  if (parts.some((part) => part === '')) throw new Error(`Invalid field path "${path}"`)
  return parts
}

/** The value at a dotted path, or undefined. */
export function getPath(doc: unknown, path: string): unknown {
  let current: unknown = doc
  for (const part of split(path)) {
    if (!isPlainObject(current)) return undefined
    current = current[part]
  }
  return current
}

/** Structural equality for JSON-like values (key order does not matter, as in our filters). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const other = b as unknown[]
    return a.length === other.length && a.every((item, i) => deepEqual(item, other[i]))
  }
  const ka = Object.keys(a as Doc)
  const kb = Object.keys(b as Doc)
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as Doc, k) && deepEqual((a as Doc)[k], (b as Doc)[k]))
}

/**
 * Total order used by $max/$min and sorting, following MongoDB's type order for the types we carry:
 * missing/null < numbers < strings < objects < arrays < booleans.
 */
export function compareValues(a: unknown, b: unknown): number {
  const rank = (v: unknown) =>
    v === undefined || v === null ? 0 : typeof v === 'number' ? 1 : typeof v === 'string' ? 2 : Array.isArray(v) ? 4 : typeof v === 'object' ? 3 : typeof v === 'boolean' ? 5 : 6
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra - rb
  if (ra === 1) return (a as number) - (b as number)
  if (ra === 2) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
  if (ra === 5) return Number(a) - Number(b)
  return 0
}

/**
 * Applies `update` to a copy of `doc` (null = the document does not exist yet) and returns it.
 * `isInsert` decides whether $setOnInsert applies. Operators run in a fixed order:
 * $setOnInsert, $set, $unset, $inc, $max, $min, $addToSet, $push.
 */
export function applyUpdate(doc: Doc | null, update: ProjectionUpdate, options: {isInsert: boolean}): Doc {
  // Copy on write along each updated path: the objects on the way to a changed field are copied
  // (shallow), everything else is shared with `doc`. Stored documents are never mutated in place and
  // reads get copies, so sharing is safe; deep-copying whole documents (or whole top-level fields)
  // made every write cost the size of what it touched, which showed in profiles.
  const result: Doc = doc === null ? {} : {...doc}
  const owned = new WeakSet<object>([result])

  /** The object holding the path's last field, copying shared objects on the way (and creating missing ones). */
  const parentOf = (path: string, parts: string[], create: boolean): Doc | undefined => {
    let current = result
    for (let i = 0; i < parts.length - 1; i++) {
      let next = current[parts[i]]
      if (next === undefined || next === null) {
        if (!create) return undefined
        next = {}
        owned.add(next as Doc)
      } else if (isPlainObject(next)) {
        if (!owned.has(next)) {
          next = {...next}
          owned.add(next as Doc)
        }
      } else if (!create) {
        return undefined
      } else {
        throw new Error(`Cannot create field "${path}": "${parts.slice(0, i + 1).join('.')}" is not an object`)
      }
      current[parts[i]] = next
      current = next as Doc
    }
    return current
  }
  const set = (path: string, value: unknown) => {
    const parts = split(path)
    parentOf(path, parts, true)![parts[parts.length - 1]] = value
  }

  if (options.isInsert && update.$setOnInsert) {
    for (const [path, value] of Object.entries(update.$setOnInsert)) set(path, copyData(value))
  }
  for (const [path, value] of Object.entries(update.$set ?? {})) set(path, copyData(value))
  for (const path of Object.keys(update.$unset ?? {})) {
    const parts = split(path)
    const parent = parentOf(path, parts, false)
    if (parent) delete parent[parts[parts.length - 1]]
  }
  for (const [path, delta] of Object.entries(update.$inc ?? {})) {
    const current = getPath(result, path)
    if (current !== undefined && current !== null && typeof current !== 'number') {
      throw new Error(`$inc on non-numeric field "${path}"`)
    }
    set(path, ((current as number | undefined) ?? 0) + delta)
  }
  for (const [path, value] of Object.entries(update.$max ?? {})) {
    const current = getPath(result, path)
    if (current === undefined || compareValues(value, current) > 0) set(path, copyData(value))
  }
  for (const [path, value] of Object.entries(update.$min ?? {})) {
    const current = getPath(result, path)
    if (current === undefined || compareValues(value, current) < 0) set(path, copyData(value))
  }
  for (const [path, value] of Object.entries(update.$addToSet ?? {})) {
    const current = getPath(result, path)
    if (current !== undefined && !Array.isArray(current)) throw new Error(`$addToSet on non-array field "${path}"`)
    const list = (current as unknown[] | undefined) ?? []
    // A new array: the old one may be shared with the stored document.
    if (!list.some((item) => deepEqual(item, value))) set(path, [...list, copyData(value)])
  }
  for (const [path, {each, slice}] of Object.entries(update.$push ?? {})) {
    const current = getPath(result, path)
    if (current !== undefined && !Array.isArray(current)) throw new Error(`$push on non-array field "${path}"`)
    let list = [...((current as unknown[] | undefined) ?? []), ...each.map(copyData)]
    if (slice !== undefined) list = slice < 0 ? list.slice(slice) : slice === 0 ? [] : list.slice(0, slice)
    set(path, list)
  }
  return result
}

/**
 * Equality filter on top-level or dotted fields, MongoDB style: a scalar filter value also matches
 * an array field that contains it.
 */
export function matchesFilter(doc: Doc, filter: Record<string, unknown> | undefined): boolean {
  if (!filter) return true
  for (const [path, expected] of Object.entries(filter)) {
    const actual = getPath(doc, path)
    if (deepEqual(actual, expected)) continue
    if (Array.isArray(actual) && !Array.isArray(expected) && actual.some((item) => deepEqual(item, expected))) continue
    if (expected === null && actual === undefined) continue
    return false
  }
  return true
}
