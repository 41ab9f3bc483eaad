import {Readable} from 'node:stream'
import {describe, expect, it} from 'vitest'
import {parseIsoDuration, retentionMs} from '../../src/catalog/duration.js'
import {defaultCatalogPath, loadCatalog, requireEvent} from '../../src/catalog/load.js'
import {UserError} from '../../src/errors.js'
import {fixture} from './helpers.js'

/** Seed 000's 24 events plus the 7 that only seed 001 names. */
const TEKTREE_TYPES = [
  'user.registered',
  'user.profile.updated',
  'user.authenticated',
  'user.email.verified',
  'knowledge.area.created',
  'knowledge.question.posted',
  'knowledge.answer.submitted',
  'knowledge.answer.accepted',
  'knowledge.insight.published',
  'knowledge.discussion.started',
  'knowledge.resource.shared',
  'social.content.liked',
  'social.comment.added',
  'social.content.upvoted',
  'social.user.followed',
  'gamification.xp.earned',
  'gamification.level.up',
  'gamification.achievement.unlocked',
  'gamification.streak.extended',
  'gamification.streak.milestone',
  'gamification.leaderboard.updated',
  'gamification.quest.completed',
  'payment.subscription.created',
  'payment.subscription.upgraded',
  'payment.subscription.downgraded',
  'payment.subscription.cancelled',
  'payment.quota.exceeded',
  'payment.webhook.received',
  'payment.invoice.paid',
  'realtime.user.joined',
  'notification.sent',
]

async function userError(promise: Promise<unknown>): Promise<UserError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(UserError)
  return error as UserError
}

describe('ISO-8601 durations', () => {
  it('reads the periods of the retention table', () => {
    expect(parseIsoDuration('P7D')).toBe(7 * 86_400_000)
    expect(parseIsoDuration('P30D')).toBe(30 * 86_400_000)
    expect(parseIsoDuration('P2Y')).toBe(2 * 365 * 86_400_000)
    expect(parseIsoDuration('PT1H30M')).toBe(90 * 60_000)
    expect(parseIsoDuration('P1W')).toBe(7 * 86_400_000)
    expect(parseIsoDuration('PT0.5S')).toBe(500)
    expect(parseIsoDuration('P')).toBeNull()
    expect(parseIsoDuration('PT')).toBeNull()
    expect(parseIsoDuration('7 days')).toBeNull()
    expect(retentionMs('indefinite')).toBeNull()
    expect(retentionMs('soon')).toBeUndefined()
  })
})

describe('the TekTree catalog', () => {
  it('loads by default with exactly the 31 TekTree event types', async () => {
    const catalog = await loadCatalog()
    expect(catalog.source).toBe(defaultCatalogPath())
    expect(catalog.tektree).toBe(true)
    expect(catalog.asyncapi).toMatch(/^3\./)
    expect(catalog.problems).toEqual([])
    expect(catalog.events.map((e) => e.type).sort()).toEqual([...TEKTREE_TYPES].sort())
  })

  it('resolves seed 001 names as aliases of seed 000 types', async () => {
    const catalog = await loadCatalog()
    expect(catalog.get('knowledge.insight.shared')?.type).toBe('knowledge.insight.published')
    expect(catalog.get('knowledge.resource.uploaded')?.type).toBe('knowledge.resource.shared')
    expect(catalog.get('knowledge.content.liked')?.type).toBe('social.content.liked')
    expect(catalog.get('knowledge.comment.added')?.type).toBe('social.comment.added')
    for (const event of catalog.events) for (const alias of event.aliases) expect(catalog.get(alias)).toBe(event)
  })

  it('carries producers, consumers, retention and partition keys from x-tektree', async () => {
    const catalog = await loadCatalog()
    const registered = catalog.get('user.registered')!
    expect(registered.producer).toBe('user')
    expect(registered.consumers.map((c) => c.service).sort()).toEqual(['email', 'gamification', 'payment'])
    expect(registered.retention).toMatchObject({category: 'user', maxAgeMs: null})
    expect(registered.topic).toBe('tektree.user')
    expect(registered.partitionKey).toBe('user_id')
    for (const event of catalog.events) {
      expect(event.producer).toBeTruthy()
      expect(event.retention).not.toBeNull()
      expect(event.partitionKey).toBeTruthy()
      // the partition key names a payload field
      expect(Object.keys((event.payloadSchema.properties ?? {}) as object)).toContain(event.partitionKey)
    }
  })

  it('gives one topic per domain with 8 partitions and retention from the periods', async () => {
    const topics = await loadCatalog().then((c) => c.topics())
    const byName = Object.fromEntries(topics.map((t) => [t.name, t]))
    expect(Object.keys(byName).sort()).toEqual(
      ['tektree.gamification', 'tektree.knowledge', 'tektree.notification', 'tektree.payment', 'tektree.realtime', 'tektree.social', 'tektree.user'],
    )
    for (const t of topics) expect(t.partitions).toBe(8)
    expect(byName['tektree.user'].retention).toBeUndefined()
    expect(byName['tektree.realtime'].retention).toEqual({maxAgeMs: 7 * 86_400_000})
    expect(byName['tektree.gamification'].retention).toEqual({maxAgeMs: 2 * 365 * 86_400_000})
  })
})

describe('loading other documents', () => {
  it('loads a third-party catalog without x-tektree: names, keys and channel addresses', async () => {
    const catalog = await loadCatalog(fixture('foreign.asyncapi.yaml'))
    expect(catalog.tektree).toBe(false)
    expect(catalog.title).toBe('Streetlights')
    const measured = catalog.get('LightMeasured')!
    expect(measured).toMatchObject({topic: 'smartylighting/streetlights/measured', producer: null, consumers: [], retention: null, partitionKey: null, version: '2.3.0'})
    // no name: the message key; address null: the channel key
    expect(catalog.get('turnOnOff')).toMatchObject({topic: 'turnOn'})
    expect(catalog.topics()).toEqual([
      {name: 'smartylighting/streetlights/measured', partitions: 3},
      {name: 'turnOn', partitions: 1},
    ])
  })

  it('resolves relative-file $refs and keeps allOf/oneOf as JSON Schema', async () => {
    const catalog = await loadCatalog(fixture('mini.asyncapi.yaml'))
    const registered = catalog.get('user.registered')!
    expect((registered.payloadSchema.properties as any).profile.properties.locale.pattern).toBe('^[a-z]{2}-[A-Z]{2}$')
    const xp = catalog.get('xp.earned')!
    expect(xp.type).toBe('gamification.xp.earned')
    expect((xp.payloadSchema.allOf as any[])[0].properties.user_id.format).toBe('uuid')
    expect((catalog.get('realtime.user.joined')!.payloadSchema.properties as any).client.oneOf).toHaveLength(2)
    expect(xp.retention).toEqual({category: 'gamification', maxAgeMs: 2 * 365 * 86_400_000, storage: 'event-store'})
  })

  it('reads stdin for "-"', async () => {
    const text = 'asyncapi: 3.0.0\ninfo: {title: Piped, version: "1.0"}\nchannels:\n  c: {address: piped.topic, messages: {hello: {payload: {type: object}}}}\n'
    const catalog = await loadCatalog('-', {stdin: Readable.from([text])})
    expect(catalog.source).toBe('-')
    expect(catalog.get('hello')).toMatchObject({topic: 'piped.topic', version: '1.0.0'})
  })

  it('a recursive payload fails only that message, naming the $ref (REF_CYCLE), without hanging', async () => {
    const catalog = await loadCatalog(fixture('cycle.asyncapi.yaml'))
    expect(catalog.get('leaf.created')).toBeDefined()
    expect(catalog.get('node.created')).toBeUndefined()
    const error = (() => {
      try {
        requireEvent(catalog, 'node.created')
      } catch (e) {
        return e as UserError
      }
    })()!
    expect(error.code).toBe('REF_CYCLE')
    expect(error.message).toContain('#/components/schemas/Node')
    expect(error.message).toContain('node.created')
  })

  it('a message that is only a $ref to itself is a REF_CYCLE naming the chain, not a made-up type', async () => {
    const catalog = await loadCatalog(fixture('message-cycle.asyncapi.yaml'))
    expect(catalog.events.map((e) => e.type)).toEqual(['ok.created'])
    expect(catalog.problems!.map((p) => [p.type, p.code])).toEqual([
      ['thing.created', 'REF_CYCLE'],
      ['ping.sent', 'REF_CYCLE'],
    ])
    expect(catalog.problems![0].message).toContain('#/channels/things/messages/thing.created -> #/components/messages/thing.created -> #/components/messages/thing.created')
    expect(catalog.problems![1].message).toContain('#/components/messages/ping.sent -> #/components/messages/pong.sent -> #/components/messages/ping.sent')
    expect(() => requireEvent(catalog, 'thing.created')).toThrowError(/\$ref cycle/)
  })

  it('never fetches a remote $ref: REMOTE_REF naming it', async () => {
    const catalog = await loadCatalog(fixture('remote.asyncapi.yaml'))
    expect(catalog.get('order.cancelled')).toBeDefined()
    expect(catalog.problems).toEqual([expect.objectContaining({type: 'order.placed', code: 'REMOTE_REF'})])
    expect(catalog.problems![0].message).toContain('https://schemas.example.com/order.json#/Order')
    // inside a referenced file the whole load stops (there is no message to pin it on yet)
    const error = await userError(loadCatalog(fixture('nested-remote.asyncapi.yaml')))
    expect(error.code).toBe('REMOTE_REF')
    expect(error.message).toContain('http://schemas.example.com/thing.json')
  })

  it('an Avro payload fails only that message, naming message and format', async () => {
    const catalog = await loadCatalog(fixture('avro.asyncapi.yaml'))
    expect(catalog.get('payment.refunded')?.payloadSchema).toMatchObject({required: ['id']})
    expect(() => requireEvent(catalog, 'payment.settled')).toThrowError(/payment\.settled.*application\/vnd\.apache\.avro;version=1\.9\.0/)
    expect(catalog.problems![0].code).toBe('UNSUPPORTED_SCHEMA_FORMAT')
  })

  it('a missing file is CATALOG_NOT_FOUND with the path', async () => {
    const error = await userError(loadCatalog(fixture('does-not-exist.yaml')))
    expect(error.code).toBe('CATALOG_NOT_FOUND')
    expect(error.message).toContain(fixture('does-not-exist.yaml'))
  })

  it('unparseable YAML or JSON is CATALOG_PARSE_ERROR with file, line and column', async () => {
    const yaml = await userError(loadCatalog(fixture('broken.yaml')))
    expect(yaml.code).toBe('CATALOG_PARSE_ERROR')
    expect(yaml.message).toContain(`${fixture('broken.yaml')}:7:3`)
    expect(yaml.details).toMatchObject({line: 7, column: 3})
    const json = await userError(loadCatalog(fixture('broken.json')))
    expect(json.details).toMatchObject({line: 4})
    expect(json.message).toContain('broken.json:4:')
  })

  it('an alias used before its anchor is CATALOG_PARSE_ERROR, not a ReferenceError (found by the fuzz pass)', async () => {
    const text = 'asyncapi: 3.0.0\ninfo: {title: x, version: 1.0.0}\nx-a: *later\nx-b: &later 1\n'
    const error = await userError(loadCatalog('-', {stdin: Readable.from([text])}))
    expect(error.code).toBe('CATALOG_PARSE_ERROR')
    expect(error.message).toMatch(/Unresolved alias/)
  })

  it('a key that is half a character is CATALOG_INVALID, and leaves no file read failing unobserved (found by the fuzz pass)', async () => {
    // The $ref resolver threw on such a key after it had started reading the files of the $refs
    // before it, and those reads then failed as unhandled rejections.
    const text = 'asyncapi: 3.0.0\ninfo: {title: x, version: 1.0.0}\ncomponents:\n  schemas:\n    A: {$ref: nowhere-a.yaml}\n    B: {$ref: nowhere-b.yaml}\n    "bad\\ud800": {type: string}\n'
    const unhandled: unknown[] = []
    const listener = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', listener)
    try {
      const error = await userError(loadCatalog('-', {stdin: Readable.from([text])}))
      expect(error.code).toBe('CATALOG_INVALID')
      expect(error.message).toContain('lone UTF-16 surrogate) at #/components/schemas/bad\\ud800')
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', listener)
    }
  })

  it('a document that is not AsyncAPI 3 is CATALOG_INVALID saying what was found', async () => {
    const v2 = await userError(loadCatalog(fixture('asyncapi2.yaml')))
    expect(v2.code).toBe('CATALOG_INVALID')
    expect(v2.message).toContain('2.6.0')
    const openapi = await userError(loadCatalog('-', {stdin: Readable.from(['openapi: 3.0.3\ninfo: {title: x}\n'])}))
    expect(openapi.message).toContain('OpenAPI 3.0.3')
  })

  it('an unknown type suggests the closest names', async () => {
    const catalog = await loadCatalog()
    expect(() => requireEvent(catalog, 'user.registerd')).toThrowError(UserError)
    try {
      requireEvent(catalog, 'user.registerd')
    } catch (e) {
      expect((e as UserError).code).toBe('UNKNOWN_EVENT_TYPE')
      expect((e as UserError).details.suggestions).toContain('user.registered')
    }
  })

  it('the shipped catalog passes the payload-schema checks a user catalog gets (they are skipped for it at run time)', async () => {
    // Given by path, it is loaded as any --catalog file is: every payload checked against the meta-schema.
    const checked = await loadCatalog(defaultCatalogPath())
    expect(checked.problems ?? []).toEqual([])
    expect(checked.events.length).toBe((await loadCatalog()).events.length)
  })
})
