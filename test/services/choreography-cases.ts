/**
 * The three choreographies of seed 000, run by runDemo on a given runtime, with what must hold at
 * the end: shared by the in-process test and the Redis + MongoDB integration test.
 */
import {mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {expect, it} from 'vitest'
import type {Catalog} from '../../src/catalog/types.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import type {Runtime} from '../../src/core/runtime.js'
import {runDemo, type DemoResult} from '../../src/services/demo.js'
import {verifyProjections} from '../../src/services/verify.js'

async function journey(runtime: Runtime, correlation: string): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = []
  for await (const e of runtime.store.events.query({correlationId: correlation})) out.push(e)
  return out
}

function derivedOf(events: EventEnvelope[], type: string, user?: string): EventEnvelope[] {
  return events.filter((e) => e.event_type === type && (user === undefined || e.payload.user_id === user))
}

/** Every derived event names its cause, which is in the same journey. */
function expectCausalChain(events: EventEnvelope[], correlation: string): void {
  const ids = new Set(events.map((e) => e.event_id))
  for (const e of events) {
    expect(e.correlation_id).toBe(correlation)
    if (e.causation_id) expect(ids.has(e.causation_id)).toBe(true)
  }
}

export async function registrationCase(runtime: Runtime, catalog: Catalog): Promise<DemoResult> {
  const mail = mkdtempSync(join(tmpdir(), 'tektree-mail-'))
  const result = await runDemo('registration', {runtime, catalog, emailDir: mail})
  expect(result.settled).toBe(true)
  const [ada] = result.users
  // +100 welcome -> level 2; verified member; a two-day streak; free tier with its badge
  expect(ada).toMatchObject({name: 'Ada', xp: 100, level: 2, streak: 2, tier: 'free', tier_badge: 'free', level_badge: 2})
  expect(ada.achievements).toEqual(['verified_member'])
  const events = await journey(runtime, result.correlation_id)
  expectCausalChain(events, result.correlation_id)
  const registered = events.find((e) => e.event_type === 'user.registered')!
  const created = derivedOf(events, 'payment.subscription.created', ada.user_id)
  expect(created).toHaveLength(1)
  expect(created[0]).toMatchObject({causation_id: registered.event_id, source_service: 'payment', payload: {tier: 'free'}})
  expect(derivedOf(events, 'gamification.xp.earned', ada.user_id).map((e) => e.payload.amount)).toEqual([100])
  expect(derivedOf(events, 'gamification.level.up', ada.user_id).map((e) => e.payload.new_level)).toEqual([2])
  expect(derivedOf(events, 'gamification.streak.extended', ada.user_id).map((e) => e.payload.streak_days)).toEqual([1, 2])
  expect(derivedOf(events, 'notification.sent', ada.user_id).map((e) => e.payload.template).sort()).toEqual(['achievement_unlocked', 'level_up'])
  // two mails on disk, addressed without a raw address; the profile searchable; the cache invalidated
  const files = readdirSync(mail).sort()
  expect(files).toEqual([`${ada.user_id}-verification.eml`, `${ada.user_id}-welcome.eml`])
  expect(readFileSync(join(mail, files[1]), 'utf8')).toMatch(/^Subject: Welcome to TekTree\r$/m)
  expect(result.search?.hits.map((h) => h.kind)).toEqual(['user'])
  expect(result.cache_invalidations).toBe(1)
  return result
}

export async function engagementCase(runtime: Runtime, catalog: Catalog): Promise<DemoResult> {
  const result = await runDemo('engagement', {runtime, catalog})
  expect(result.settled).toBe(true)
  const grace = result.users.find((u) => u.name === 'Grace')!
  const linus = result.users.find((u) => u.name === 'Linus')!
  // Grace: 100 + 5 (question). Linus: 100 + 10 (answer) + 50 (accepted) + 2 (like) + 3 (comment)
  expect(grace).toMatchObject({xp: 105, level: 2})
  expect(linus).toMatchObject({xp: 165, level: 2})
  expect(grace.achievements).toEqual(['first_question'])
  expect(linus.achievements.sort()).toEqual(['first_accepted_answer', 'first_answer'])
  const events = await journey(runtime, result.correlation_id)
  expectCausalChain(events, result.correlation_id)
  const byType = (type: string) => events.find((e) => e.event_type === type)!
  const xpFor = (cause: string) => derivedOf(events, 'gamification.xp.earned').filter((e) => e.causation_id === byType(cause).event_id).map((e) => [e.payload.user_id, e.payload.amount])
  expect(xpFor('knowledge.answer.accepted')).toEqual([[linus.user_id, 50]])
  expect(xpFor('social.content.liked')).toEqual([[linus.user_id, 2]])
  expect(xpFor('social.comment.added')).toEqual([[linus.user_id, 3]])
  // notifications to the right people, never to the actor
  const notified = (cause: string) => derivedOf(events, 'notification.sent').filter((e) => e.causation_id === byType(cause).event_id).map((e) => e.payload.user_id)
  expect(notified('knowledge.answer.submitted')).toEqual([grace.user_id])
  expect(notified('knowledge.answer.accepted')).toEqual([linus.user_id])
  expect(notified('social.content.liked')).toEqual([linus.user_id])
  expect(notified('social.user.followed')).toEqual([grace.user_id])
  expect(result.search?.hits[0]).toMatchObject({kind: 'question'})
  const usage = await runtime.store.projections.find('payment_usage', {user_id: linus.user_id})
  expect(usage.map((u) => u.used)).toEqual([1])
  // The unlock is the acceptance's, though the like of the same answer was handled beside it.
  const unlock = derivedOf(events, 'gamification.achievement.unlocked').find((e) => e.payload.achievement_id === 'first_accepted_answer')!
  expect(unlock.causation_id).toBe(byType('knowledge.answer.accepted').event_id)
  const step5 = result.steps[4]
  expect(step5.reactions.find((e) => e.type === 'gamification.achievement.unlocked')).toMatchObject({causation_type: 'knowledge.answer.accepted', depth: 1})
  // The narration's running total moves with each award: 110 + 50, then + 2.
  expect(step5.reactions.filter((e) => e.type === 'gamification.xp.earned').map((e) => e.summary)).toEqual(['+50 XP to Linus (total 160)', '+2 XP to Linus (total 162)'])
  return result
}

export async function achievementCase(runtime: Runtime, catalog: Catalog): Promise<DemoResult> {
  const result = await runDemo('achievement', {runtime, catalog})
  expect(result.settled).toBe(true)
  const [barbara] = result.users
  // 100 welcome + 3 x 5 questions + 30 quest reward + 200 upgrade = 345 -> level 3 (250)
  expect(barbara).toMatchObject({xp: 345, level: 3, tier: 'pro', tier_badge: 'pro', level_badge: 3})
  expect(barbara.achievements).toEqual(['first_question'])
  expect(barbara.quests).toEqual(['ask_3_questions'])
  const events = await journey(runtime, result.correlation_id)
  expectCausalChain(events, result.correlation_id)
  expect(derivedOf(events, 'gamification.achievement.unlocked', barbara.user_id)).toHaveLength(1)
  expect(derivedOf(events, 'gamification.quest.completed', barbara.user_id).map((e) => e.payload.quest_id)).toEqual(['ask_3_questions'])
  expect(derivedOf(events, 'gamification.level.up', barbara.user_id).map((e) => e.payload.new_level).sort()).toEqual([2, 3])
  const invoice = derivedOf(events, 'payment.invoice.paid', barbara.user_id)
  expect(invoice).toHaveLength(1)
  expect(invoice[0].payload).toMatchObject({tier: 'pro', amount_cents: 1200, currency: 'USD'})
  expect(await runtime.leaderboards.score('all-time', barbara.user_id)).toBe(345)
  return result
}

export async function expectVerified(runtime: Runtime, catalog: Catalog): Promise<void> {
  const verdict = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})
  expect(verdict.differences).toEqual([])
  expect(verdict.checked).toBeGreaterThan(0)
}

/** The three tests, each on a fresh runtime from `open`, each checked by the oracle at the end. */
export function choreographyTests(open: () => Promise<Runtime>, catalog: () => Catalog): void {
  const cases = {'pattern 1: user registration': registrationCase, 'pattern 2: content engagement': engagementCase, 'pattern 3: achievement unlock': achievementCase}
  for (const [name, run] of Object.entries(cases)) {
    it(name, async () => {
      const runtime = await open()
      await run(runtime, catalog())
      await expectVerified(runtime, catalog())
    })
  }
}
