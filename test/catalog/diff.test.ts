import {describe, expect, it} from 'vitest'
import {compareVersions, diffCatalogs, summarizeDiff, type CatalogChange} from '../../src/catalog/diff.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {catalogOf} from './helpers.js'

const base = {
  type: 'object',
  additionalProperties: false,
  required: ['user_id', 'tier'],
  properties: {
    user_id: {type: 'string', format: 'uuid'},
    tier: {type: 'string', enum: ['free', 'pro', 'team']},
    note: {type: 'string'},
  },
}
const clone = () => structuredClone(base) as any

async function diff(payload: Record<string, unknown>, version: string, extra: {consumers?: string[]} = {}): Promise<CatalogChange[]> {
  const before = await catalogOf([{type: 'user.changed', version: '1.0.0', payload: base}])
  const after = await catalogOf([{type: 'user.changed', version, payload, ...extra}])
  return diffCatalogs(before, after)
}

const only = (changes: CatalogChange[]) => {
  expect(changes).toHaveLength(1)
  return changes[0]
}

describe('diffCatalogs', () => {
  it('no change, no report', async () => {
    expect(await diff(clone(), '1.0.0')).toEqual([])
  })

  it('added optional field = minor; OK with a minor bump, a warning without', async () => {
    const payload = clone()
    payload.properties.locale = {type: 'string'}
    const bumped = only(await diff(payload, '1.1.0'))
    expect(bumped).toMatchObject({type: 'user.changed', kind: 'minor', change: 'added optional field', path: '$.payload.locale', oldVersion: '1.0.0', newVersion: '1.1.0', versionOk: true})
    const unbumped = await diff(payload, '1.0.0')
    expect(only(unbumped).versionOk).toBe(false)
    expect(summarizeDiff(unbumped)).toMatchObject({minor: 1, unbumpedMinor: 1, unbumpedBreaking: 0, ok: true})
    expect(only(await diff(payload, '1.0.1')).versionOk).toBe(false)
  })

  it('removed field = breaking', async () => {
    const payload = clone()
    delete payload.properties.note
    expect(only(await diff(payload, '1.1.0'))).toMatchObject({kind: 'breaking', change: 'field removed', path: '$.payload.note', versionOk: false, producer: 'producer-svc', consumers: ['gamification']})
  })

  it('type changed = breaking', async () => {
    const payload = clone()
    payload.properties.note = {type: 'integer'}
    expect(only(await diff(payload, '1.0.0'))).toMatchObject({kind: 'breaking', change: 'type changed', path: '$.payload.note', detail: 'string -> integer'})
  })

  it('new required field = breaking', async () => {
    const payload = clone()
    payload.properties.locale = {type: 'string'}
    payload.required.push('locale')
    expect(only(await diff(payload, '1.1.0'))).toMatchObject({kind: 'breaking', change: 'new required field', path: '$.payload.locale', versionOk: false})
  })

  it('enum narrowed = breaking; widened = minor', async () => {
    const narrowed = clone()
    narrowed.properties.tier.enum = ['free', 'pro']
    expect(only(await diff(narrowed, '1.1.0'))).toMatchObject({kind: 'breaking', change: 'enum narrowed', path: '$.payload.tier', detail: 'removed "team"'})
    const widened = clone()
    widened.properties.tier.enum = ['free', 'pro', 'team', 'enterprise']
    expect(only(await diff(widened, '1.1.0'))).toMatchObject({kind: 'minor', change: 'enum widened', versionOk: true})
  })

  it('a major bump makes a breaking change OK', async () => {
    const payload = clone()
    delete payload.properties.note
    const changes = await diff(payload, '2.0.0')
    expect(only(changes)).toMatchObject({kind: 'breaking', versionOk: true})
    expect(summarizeDiff(changes).ok).toBe(true)
    expect(summarizeDiff(await diff(payload, '1.9.0'))).toMatchObject({unbumpedBreaking: 1, ok: false})
  })

  it('format changes, tightened limits and optional->required are breaking; docs are patch', async () => {
    const payload = clone()
    payload.properties.user_id.format = 'uri'
    payload.properties.note.maxLength = 10
    payload.properties.note.description = 'a note'
    expect((await diff(payload, '1.0.0')).map((c) => [c.kind, c.change, c.path])).toEqual([
      ['breaking', 'format changed', '$.payload.user_id'],
      ['breaking', 'constraint tightened', '$.payload.note'],
      ['patch', 'description changed', '$.payload.note'],
    ])
  })

  it('walks nested objects and array items', async () => {
    const before = await catalogOf([{type: 'a.b', payload: {type: 'object', properties: {list: {type: 'array', items: {type: 'object', properties: {x: {type: 'string'}, y: {type: 'string'}}}}}}}])
    const after = await catalogOf([{type: 'a.b', payload: {type: 'object', properties: {list: {type: 'array', items: {type: 'object', properties: {x: {type: 'number'}}}}}}}])
    expect(diffCatalogs(before, after).map((c) => [c.change, c.path])).toEqual([
      ['type changed', '$.payload.list[].x'],
      ['field removed', '$.payload.list[].y'],
    ])
  })

  it('event removed = breaking unless the catalog major version moved; event added = minor', async () => {
    const one = {type: 'a.one', payload: {type: 'object'}}
    const two = {type: 'a.two', payload: {type: 'object'}, consumers: ['search']}
    const before = await catalogOf([one, two], {version: '1.4.0'})
    const removed = diffCatalogs(before, await catalogOf([one], {version: '1.5.0'}))
    expect(only(removed)).toMatchObject({type: 'a.two', kind: 'breaking', change: 'event removed', newVersion: null, consumers: ['search'], versionOk: false})
    expect(only(diffCatalogs(before, await catalogOf([one], {version: '2.0.0'}))).versionOk).toBe(true)
    expect(only(diffCatalogs(await catalogOf([one]), before))).toMatchObject({type: 'a.two', kind: 'minor', change: 'event added', versionOk: true})
  })

  it('a type renamed with the old name kept as an alias is matched, not removed', async () => {
    const before = await catalogOf([{type: 'knowledge.insight.shared', payload: {type: 'object'}}])
    const after = await catalogOf([{type: 'knowledge.insight.published', aliases: ['knowledge.insight.shared'], payload: {type: 'object'}}])
    expect(diffCatalogs(before, after).filter((c) => c.kind === 'breaking')).toEqual([])
  })

  it('a version that goes down is never OK', async () => {
    const payload = clone()
    delete payload.properties.note
    const changes = await diff(payload, '0.9.0')
    expect(changes.every((c) => !c.versionOk)).toBe(true)
    expect(changes.map((c) => c.change)).toContain('version decreased')
  })

  it('the TekTree catalog against itself has no changes', async () => {
    const catalog = await loadCatalog()
    expect(diffCatalogs(catalog, await loadCatalog())).toEqual([])
  })

  it('compares versions', () => {
    expect(compareVersions('1.2.3', '2.0.0')).toBe('major')
    expect(compareVersions('1.2.3', '1.3.0')).toBe('minor')
    expect(compareVersions('1.2.3', '1.2.4')).toBe('patch')
    expect(compareVersions('1.2.3', '1.2.3')).toBe('none')
    expect(compareVersions('1.2.3', '1.1.9')).toBe('down')
  })
})
