import {describe, expect, it} from 'vitest'
import {copyData} from '../../src/core/copy.js'

describe('copyData', () => {
  it('copies JSON-shaped data deeply: nothing is shared with the original', () => {
    const original = {a: 1, s: 'x', n: null, u: undefined, list: [1, {b: [2, 3]}], nested: {c: {d: true}}}
    const copy = copyData(original)
    expect(copy).toStrictEqual(original)
    copy.list.push(9)
    ;(copy.list[1] as {b: number[]}).b.push(4)
    copy.nested.c.d = false
    expect(original).toStrictEqual({a: 1, s: 'x', n: null, u: undefined, list: [1, {b: [2, 3]}], nested: {c: {d: true}}})
  })

  it('gives what structuredClone gives for values that are not plain data', () => {
    const when = new Date('2026-11-23T10:00:00.000Z')
    const copy = copyData({when, tags: new Set(['a']), bytes: new Uint8Array([1, 2])})
    expect(copy.when).toBeInstanceOf(Date)
    expect(copy.when).not.toBe(when)
    expect(copy.when.getTime()).toBe(when.getTime())
    expect(copy.tags).toEqual(new Set(['a']))
    expect(copy.bytes).toEqual(new Uint8Array([1, 2]))
  })

  it('keeps an own "__proto__" key as data instead of setting the prototype', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>
    const copy = copyData(parsed)
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype)
    expect((copy as {polluted?: boolean}).polluted).toBeUndefined()
    expect(Object.keys(copy)).toEqual(['__proto__', 'ok'])
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed))
  })

  it('refuses what structuredClone refuses: a function is not data', () => {
    expect(() => copyData({handler: () => 1})).toThrow(/could not be cloned/)
  })

  it('returns primitives as they are', () => {
    for (const value of [0, 'text', true, null, undefined, 12n]) expect(copyData(value)).toBe(value)
  })
})
