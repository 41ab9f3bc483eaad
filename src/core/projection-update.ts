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
  const draft = new DocDraft(doc)
  draft.apply(update, options.isInsert)
  return draft.doc!
}

/**
 * Several updates of one document in a row (a commit's writes to a hot document, a read through a
 * unit's uncommitted writes), as applyUpdate would apply them one after the other, but copying the
 * document once instead of once per update. Copy on write along each updated path: the objects on
 * the way to a changed field are copied (shallow), everything else is shared with the document
 * given, which is never mutated. `owned`: the document is the caller's own throughout (freshly
 * parsed), so it is changed in place and nothing is copied. After apply() throws, the draft is
 * partly applied: the caller drops it.
 */
export class DocDraft {
  private current: Doc | null
  /** The objects of `current` that are the draft's own to change; null: only `current` itself. */
  private owned: WeakSet<object> | null = null
  private copied: boolean

  constructor(
    doc: Doc | null,
    private readonly deep: {owned: boolean} = {owned: false},
  ) {
    this.current = doc
    this.copied = deep.owned
  }

  /** The document as the updates so far leave it (null when there is none and none was applied). */
  get doc(): Doc | null {
    return this.current
  }

  apply(update: ProjectionUpdate, isInsert: boolean = this.current === null): void {
    if (!this.copied || this.current === null) {
      this.current = this.current === null ? {} : {...this.current}
      this.copied = true
    }
    // for-in over each operator present: a write names two or three of eight, and iterating the
    // others' entries allocated on every write.
    const {$setOnInsert, $set, $unset, $inc, $max, $min, $addToSet, $push} = update
    const result = this.current
    if (isInsert && $setOnInsert) for (const path in $setOnInsert) this.set(path, copyData($setOnInsert[path]))
    if ($set) for (const path in $set) this.set(path, copyData($set[path]))
    if ($unset) {
      for (const path in $unset) {
        const parts = split(path)
        const parent = this.parentOf(path, parts, false)
        if (parent) delete parent[parts[parts.length - 1]]
      }
    }
    if ($inc) {
      for (const path in $inc) {
        const current = getPath(result, path)
        if (current !== undefined && current !== null && typeof current !== 'number') {
          throw new Error(`$inc on non-numeric field "${path}"`)
        }
        this.set(path, ((current as number | undefined) ?? 0) + $inc[path])
      }
    }
    if ($max) {
      for (const path in $max) {
        const current = getPath(result, path)
        if (current === undefined || compareValues($max[path], current) > 0) this.set(path, copyData($max[path]))
      }
    }
    if ($min) {
      for (const path in $min) {
        const current = getPath(result, path)
        if (current === undefined || compareValues($min[path], current) < 0) this.set(path, copyData($min[path]))
      }
    }
    if ($addToSet) {
      for (const path in $addToSet) {
        const value = $addToSet[path]
        const current = getPath(result, path)
        if (current !== undefined && !Array.isArray(current)) throw new Error(`$addToSet on non-array field "${path}"`)
        const list = (current as unknown[] | undefined) ?? []
        // A new array: the old one may be shared with the document given.
        if (!list.some((item) => deepEqual(item, value))) this.set(path, [...list, copyData(value)])
      }
    }
    if ($push) for (const path in $push) this.set(path, pushed(getPath(result, path), path, $push[path]))
  }

  private set(path: string, value: unknown): void {
    const parts = split(path)
    this.parentOf(path, parts, true)![parts[parts.length - 1]] = value
  }

  /** The object holding the path's last field, copying shared objects on the way (and creating missing ones). */
  private parentOf(path: string, parts: string[], create: boolean): Doc | undefined {
    let current = this.current!
    for (let i = 0; i < parts.length - 1; i++) {
      // Only dotted paths copy nested objects, and most paths are one field: made when first needed.
      const owned = this.deep.owned ? null : (this.owned ??= new WeakSet<object>([current]))
      let next = current[parts[i]]
      if (next === undefined || next === null) {
        if (!create) return undefined
        next = {}
        owned?.add(next as Doc)
      } else if (isPlainObject(next)) {
        if (owned && !owned.has(next)) {
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
}

/**
 * A new array (the old one may be shared with the stored document): `current` and `each`, of which
 * only the last `slice` items (negative) or the first (positive) are kept, built in one pass
 * (a capped feed takes a push per notification).
 */
function pushed(current: unknown, path: string, {each, slice}: {each: unknown[]; slice?: number}): unknown[] {
  if (current !== undefined && !Array.isArray(current)) throw new Error(`$push on non-array field "${path}"`)
  const old = (current as unknown[] | undefined) ?? []
  const total = old.length + each.length
  let from = 0
  let to = total
  if (slice !== undefined) {
    if (slice < 0) from = Math.max(0, total + slice)
    else to = Math.min(total, slice)
  }
  const list = new Array<unknown>(to - from)
  for (let i = from; i < to; i++) list[i - from] = i < old.length ? old[i] : copyData(each[i - old.length])
  return list
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
