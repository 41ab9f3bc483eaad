import {describe, it, expect} from 'vitest'
import {compileTypeGlobs, typeGlobsToRegExpSource} from '../../src/core/glob.js'

describe('event type globs', () => {
  const cases: Array<[glob: string, type: string, matches: boolean]> = [
    // A trailing ".*" is the domain and everything below it.
    ['knowledge.*', 'knowledge.question.posted', true],
    ['knowledge.*', 'knowledge.x', true],
    ['knowledge.*', 'knowledge', false],
    ['knowledge.*', 'knowledgebase.article.created', false],
    // "*" elsewhere is exactly one segment (or part of one).
    ['*.content.liked', 'social.content.liked', true],
    ['*.content.liked', 'a.social.content.liked', false],
    ['*.content.liked', '.content.liked', false],
    ['social.*.liked', 'social.content.liked', true],
    ['social.*.liked', 'social.a.b.liked', false],
    ['social.content.lik*', 'social.content.liked', true],
    ['social.content.lik*', 'social.content.liked.x', false],
    ['social.content.like?', 'social.content.liked', true],
    // "**" is any number of segments, none included.
    ['knowledge.**.posted', 'knowledge.posted', true],
    ['knowledge.**.posted', 'knowledge.question.posted', true],
    ['knowledge.**.posted', 'knowledge.a.b.posted', true],
    ['knowledge.**.posted', 'social.a.posted', false],
    ['**.posted', 'posted', true],
    ['**.posted', 'knowledge.a.posted', true],
    ['knowledge.**', 'knowledge', true],
    ['knowledge.**', 'knowledge.a.b', true],
    ['a.**.**.b', 'a.x.y.b', true],
    ['**.*', 'x', true],
    ['*', 'x.y.z', true],
    // Literals are literal: regex characters mean nothing.
    ['social.content.liked', 'social.content.liked', true],
    ['social.content.liked', 'social.contentXliked', false],
    ['a+b.(c)', 'a+b.(c)', true],
    ['a+b.(c)', 'aab.c', false],
  ]

  it.each(cases)('%s vs %s -> %s', (glob, type, matches) => {
    expect(compileTypeGlobs([glob])(type)).toBe(matches)
    // The regex a backend would send ($regex) agrees with the predicate.
    expect(new RegExp(typeGlobsToRegExpSource([glob])).test(type)).toBe(matches)
  })

  it('matches any of several globs; an empty list matches everything', () => {
    const match = compileTypeGlobs(['knowledge.*', 'social.content.liked'])
    expect(match('knowledge.answer.accepted')).toBe(true)
    expect(match('social.content.liked')).toBe(true)
    expect(match('social.content.shared')).toBe(false)
    expect(compileTypeGlobs([])('anything.at.all')).toBe(true)
  })

  it('rejects an empty glob', () => {
    expect(() => compileTypeGlobs(['knowledge.*', ' *', ''])).toThrow(/empty/)
  })
})
