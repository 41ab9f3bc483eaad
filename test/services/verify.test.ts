/**
 * The oracle can fail: a state built by the services verifies clean, and each kind of corruption
 * (XP off by one, a lost achievement, a leaderboard double increment, a wrong tier, a missing search
 * document, a duplicated threshold event) is reported with its projection, id and field.
 */
import {randomUUID} from 'node:crypto'
import {afterEach, beforeAll, describe, expect, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import {openRuntime} from '../../src/adapters/open.js'
import type {Runtime} from '../../src/core/runtime.js'
import {runDemo} from '../../src/services/demo.js'
import {verifyProjections, type Difference} from '../../src/services/verify.js'

let catalog: Catalog
const runtimes: Runtime[] = []
beforeAll(async () => {
  catalog = await loadCatalog()
})
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

/** The achievement demo's end state: Barbara, 345 XP, level 3, pro, one quest, one achievement. */
async function settled(): Promise<{runtime: Runtime; user: string; correlation: string}> {
  const runtime = await openRuntime({inProcess: true, log: () => undefined})
  runtimes.push(runtime)
  const result = await runDemo('achievement', {runtime, catalog})
  return {runtime, user: result.users[0].user_id, correlation: result.correlation_id}
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

const verify = async (runtime: Runtime): Promise<Difference[]> =>
  (await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})).differences

describe('verify', () => {
  it('finds nothing wrong with what the services built', async () => {
    const {runtime} = await settled()
    expect(await verify(runtime)).toEqual([])
  })

  it('names XP off by one', async () => {
    const {runtime, user} = await settled()
    await runtime.store.projections.update('gamification_profiles', user, {$inc: {xp: 1}})
    expect(await verify(runtime)).toContainEqual({projection: 'gamification_profiles', id: user, field: 'xp', expected: 345, actual: 346})
  })

  it('names a lost achievement', async () => {
    const {runtime, user} = await settled()
    await runtime.store.projections.update('gamification_profiles', user, {$set: {achievements: []}})
    expect(await verify(runtime)).toContainEqual({projection: 'gamification_profiles', id: user, field: 'achievements', expected: ['first_question'], actual: []})
  })

  it('names a leaderboard increment applied twice', async () => {
    const {runtime, user} = await settled()
    await runtime.leaderboards.incrementOnce('all-time', user, 5, randomUUID())
    expect(await verify(runtime)).toContainEqual({projection: 'leaderboard:all-time', id: `all-time/${user}`, field: 'score', expected: 345, actual: 350})
  })

  it('names a wrong tier and a wrong tier badge', async () => {
    const {runtime, user} = await settled()
    await runtime.store.projections.update('payment_subscriptions', user, {$set: {tier: 'team'}})
    await runtime.store.projections.update('user_badges', user, {$set: {tier: 'free'}})
    const differences = await verify(runtime)
    expect(differences).toContainEqual({projection: 'payment_subscriptions', id: user, field: 'tier', expected: 'pro', actual: 'team'})
    expect(differences).toContainEqual({projection: 'user_badges', id: user, field: 'tier', expected: 'pro', actual: 'free'})
  })

  it('names a missing search document and an unexpected one', async () => {
    const {runtime} = await settled()
    const [doc] = await runtime.store.projections.find('search_documents', {kind: 'question'}, {limit: 1})
    await runtime.store.projections.drop('search_documents')
    await runtime.store.projections.update('search_documents', 'question:nobody-asked', {$set: {kind: 'question'}})
    const differences = await verify(runtime)
    expect(differences).toContainEqual({projection: 'search_documents', id: doc._id, field: '(document)', expected: 'present', actual: null})
    expect(differences).toContainEqual({projection: 'search_documents', id: 'question:nobody-asked', field: '(document)', expected: null, actual: 'present'})
  })

  it('names a threshold event that is in the log twice', async () => {
    const {runtime, user, correlation} = await settled()
    const levelUp = (await collect(runtime.store.events.query({types: ['gamification.level.up'], correlationId: correlation}))).find((e) => e.payload.new_level === 3)!
    await runtime.store.events.append([{...levelUp, event_id: randomUUID()}])
    expect(await verify(runtime)).toContainEqual({projection: 'events:gamification.level.up', id: `${user}:3`, field: 'count', expected: 1, actual: 2})
  })

  it('leaves out of a group what that group dead-lettered, and only that group', async () => {
    const {runtime, user, correlation} = await settled()
    const upgrade = (await collect(runtime.store.events.query({types: ['payment.subscription.upgraded'], correlationId: correlation})))[0]
    // as if gamification had dead-lettered the upgrade: its +200 XP is then expected nowhere
    await runtime.store.dlq.add({
      id: `gamification:${upgrade.event_id}`,
      group: 'gamification',
      event_id: upgrade.event_id,
      event_type: upgrade.event_type,
      topic: 'tektree.payment',
      partition: 0,
      delivery_id: '1',
      error: {error: {code: 'HANDLER_FAILED', message: 'test', details: {}}},
      attempts: 3,
      first_failure_at: upgrade.timestamp,
      last_failure_at: upgrade.timestamp,
      dead_lettered_at: upgrade.timestamp,
      raw: JSON.stringify(upgrade),
      envelope: upgrade,
    })
    const differences = await verify(runtime)
    expect(differences).toContainEqual({projection: 'gamification_profiles', id: user, field: 'xp', expected: 145, actual: 345})
    expect(differences.some((d) => d.projection === 'payment_subscriptions')).toBe(false)
  })
})
