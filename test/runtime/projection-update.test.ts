/**
 * The pure reference for ProjectionUpdate. The store contract checks the same semantics through
 * every adapter; these tests pin the edge cases of the reference itself (purity, errors, filters).
 */
import {describe, it, expect} from 'vitest'
import type {ProjectionUpdate} from '../../src/core/ports.js'
import {applyUpdate, compareValues, DocDraft, matchesFilter} from '../../src/core/projection-update.js'

describe('applyUpdate', () => {
  it('never mutates its input', () => {
    const doc = {_id: 'd', n: 1, nested: {list: [1]}, tags: ['a']}
    const copy = structuredClone(doc)
    const value = {deep: [1]}
    const result = applyUpdate(
      doc,
      {$inc: {n: 1}, $push: {'nested.list': {each: [2]}}, $addToSet: {tags: 'b'}, $set: {v: value}},
      {isInsert: false},
    )
    expect(doc).toEqual(copy)
    expect(result).toEqual({_id: 'd', n: 2, nested: {list: [1, 2]}, tags: ['a', 'b'], v: {deep: [1]}})
    value.deep.push(2)
    expect(result.v).toEqual({deep: [1]})
  })

  it('copies only the objects on the way to a changed field; the rest is shared, untouched', () => {
    const doc = {_id: 'd', counters: {likes: 1, deep: {x: 1}}, feed: [{id: 1}], big: {items: [1, 2, 3]}}
    const copy = structuredClone(doc)
    const result = applyUpdate(doc, {$inc: {'counters.deep.x': 1}, $unset: {'counters.likes': true}}, {isInsert: false})
    expect(doc).toEqual(copy)
    expect(result.counters).toEqual({deep: {x: 2}})
    expect(result.counters).not.toBe(doc.counters)
    expect(result.big).toBe(doc.big) // untouched: shared, not copied
    expect(result.feed).toBe(doc.feed)
    // Two operators on one path copy its objects once, and both changes land.
    const twice = applyUpdate(doc, {$set: {'counters.a': 1}, $inc: {'counters.b': 2}}, {isInsert: false})
    expect(twice.counters).toEqual({likes: 1, deep: {x: 1}, a: 1, b: 2})
    expect((twice.counters as {deep: unknown}).deep).toBe(doc.counters.deep)
    expect(doc).toEqual(copy)
  })

  it('$setOnInsert only with isInsert', () => {
    expect(applyUpdate(null, {$setOnInsert: {a: 1}}, {isInsert: true})).toEqual({a: 1})
    expect(applyUpdate({b: 2}, {$setOnInsert: {a: 1}}, {isInsert: false})).toEqual({b: 2})
  })

  it('$max/$min compare numbers and strings (ISO dates), missing fields are set', () => {
    const doc = applyUpdate(null, {$max: {n: 3, at: '2025-01-02'}, $min: {m: 3}}, {isInsert: true})
    expect(applyUpdate(doc, {$max: {n: 2, at: '2025-01-03'}, $min: {m: 1}}, {isInsert: false})).toEqual({
      n: 3,
      at: '2025-01-03',
      m: 1,
    })
  })

  it('$push slices: negative keeps the last, positive the first, 0 empties', () => {
    const doc = {list: [1, 2, 3]}
    expect(applyUpdate(doc, {$push: {list: {each: [4], slice: -2}}}, {isInsert: false}).list).toEqual([3, 4])
    expect(applyUpdate(doc, {$push: {list: {each: [4], slice: 2}}}, {isInsert: false}).list).toEqual([1, 2])
    expect(applyUpdate(doc, {$push: {list: {each: [4], slice: 0}}}, {isInsert: false}).list).toEqual([])
    expect(applyUpdate(doc, {$push: {list: {each: []}}}, {isInsert: false}).list).toEqual([1, 2, 3])
  })

  it('$addToSet compares objects by value, whatever the key order', () => {
    const doc = {refs: [{a: 1, b: 2}]}
    expect(applyUpdate(doc, {$addToSet: {refs: {b: 2, a: 1}}}, {isInsert: false}).refs).toHaveLength(1)
    expect(applyUpdate(doc, {$addToSet: {refs: {a: 1}}}, {isInsert: false}).refs).toHaveLength(2)
  })

  it('rejects operators on the wrong type, like MongoDB', () => {
    expect(() => applyUpdate({n: 'x'}, {$inc: {n: 1}}, {isInsert: false})).toThrow(/non-numeric/)
    expect(() => applyUpdate({l: 1}, {$push: {l: {each: [1]}}}, {isInsert: false})).toThrow(/non-array/)
    expect(() => applyUpdate({l: 1}, {$addToSet: {l: 1}}, {isInsert: false})).toThrow(/non-array/)
    expect(() => applyUpdate({a: 1}, {$set: {'a.b': 1}}, {isInsert: false})).toThrow(/not an object/)
    expect(() => applyUpdate({}, {$set: {'a..b': 1}}, {isInsert: false})).toThrow(/Invalid field path/)
  })
})

describe('matchesFilter', () => {
  const doc = {_id: 'd', team: 'red', author: {id: 'u1'}, tags: ['a', 'b'], n: 0, gone: null}
  it('matches equality on top-level and dotted fields', () => {
    expect(matchesFilter(doc, {team: 'red', 'author.id': 'u1'})).toBe(true)
    expect(matchesFilter(doc, {team: 'blue'})).toBe(false)
    expect(matchesFilter(doc, {'author.id': 'u2'})).toBe(false)
    expect(matchesFilter(doc, {n: 0})).toBe(true)
    expect(matchesFilter(doc, {n: false})).toBe(false)
    expect(matchesFilter(doc, undefined)).toBe(true)
  })

  it('a scalar matches an array containing it; null matches missing', () => {
    expect(matchesFilter(doc, {tags: 'a'})).toBe(true)
    expect(matchesFilter(doc, {tags: ['a', 'b']})).toBe(true)
    expect(matchesFilter(doc, {tags: 'c'})).toBe(false)
    expect(matchesFilter(doc, {missing: null, gone: null})).toBe(true)
  })
})

describe('compareValues', () => {
  it('orders null < numbers < strings, numerically and lexically within a type', () => {
    const values = ['b', 10, null, 'a', 2]
    expect([...values].sort(compareValues)).toEqual([null, 2, 10, 'a', 'b'])
  })
})

describe('applyUpdate copies on write', () => {
  it('never changes the document it was given, whichever operators touch it', () => {
    const original = {_id: 'u', counters: {a: 1}, tags: ['x'], items: [{n: 1}], streak: {current: 1}, untouched: {deep: [1, 2]}}
    const snapshot = structuredClone(original)
    const next = applyUpdate(
      original,
      {$inc: {'counters.a': 1}, $addToSet: {tags: 'y'}, $push: {items: {each: [{n: 2}], slice: -5}}, $set: {'streak.current': 2}, $max: {'streak.longest': 2}},
      {isInsert: false},
    )
    expect(original).toEqual(snapshot)
    expect(next).toMatchObject({counters: {a: 2}, tags: ['x', 'y'], items: [{n: 1}, {n: 2}], streak: {current: 2, longest: 2}, untouched: {deep: [1, 2]}})
    // an untouched field may be shared; a touched one never is
    expect(next.counters).not.toBe(original.counters)
    expect(next.streak).not.toBe(original.streak)
  })
})

describe('DocDraft: several updates of one document', () => {
  const updates: ProjectionUpdate[] = [
    {$inc: {'counters.a': 1, n: 1}, $setOnInsert: {created: true}},
    {$set: {'streak.current': 2}, $push: {items: {each: [{n: 2}], slice: -2}}},
    {$inc: {'counters.a': 1}, $addToSet: {tags: 'y'}, $unset: {gone: true}},
    {$push: {items: {each: [{n: 3}], slice: -2}}, $max: {'streak.longest': 5}, $min: {low: 1}},
  ]
  const oneByOne = (doc: Record<string, unknown> | null) => updates.reduce<Record<string, unknown> | null>((d, u) => applyUpdate(d, u, {isInsert: d === null}), doc)
  const drafted = (doc: Record<string, unknown> | null, owned = false) => {
    const draft = new DocDraft(doc, {owned})
    for (const u of updates) draft.apply(u)
    return draft.doc
  }
  const given = () => ({_id: 'u', n: 1, counters: {a: 1, b: 7}, streak: {current: 1}, items: [{n: 1}], tags: ['x'], gone: 1, low: 3, untouched: {deep: [1]}})

  it('leaves it as applyUpdate one after the other would, and the document given unchanged', () => {
    const doc = given()
    const snapshot = structuredClone(doc)
    expect(drafted(doc)).toEqual(oneByOne(doc))
    expect(doc).toEqual(snapshot)
    // a new document: $setOnInsert applies to the first update only, as with isInsert
    expect(drafted(null)).toEqual(oneByOne(null))
    expect(drafted(null)).toMatchObject({created: true, n: 1})
  })

  it('owned, changes the document in place and copies nothing', () => {
    const doc = given()
    const counters = doc.counters
    const expected = oneByOne(structuredClone(doc))
    expect(drafted(doc, true)).toBe(doc)
    expect(doc).toEqual(expected)
    expect(doc.counters).toBe(counters)
  })

  it('shared, copies a nested object the first time an update reaches into it, then changes that copy', () => {
    const doc = given()
    const draft = new DocDraft(doc)
    draft.apply({$inc: {'counters.a': 1}})
    const counters = draft.doc!.counters
    expect(counters).not.toBe(doc.counters)
    draft.apply({$inc: {'counters.b': 1}})
    expect(draft.doc!.counters).toBe(counters)
    expect(draft.doc!.counters).toEqual({a: 2, b: 8})
    expect(draft.doc!.untouched).toBe(doc.untouched)
  })
})
