/**
 * The oracle: recomputes from the event log alone what every projection should hold and reports
 * each difference from the live projections and leaderboards.
 *
 * It is deliberately a separate, simple batch computation over the log (one pass in append order,
 * per-user aggregates), sharing only the RULES data and pure helpers (levelForXp, isoWeek) with the
 * services: had it called the handlers' code, it could not catch their bugs. Facts it takes from
 * the log: the source events, and the derived events that are the source of truth for what they
 * say (a subscription tier change). What the services decide themselves (XP, levels, achievements,
 * quests, streaks, notifications, usage) it recomputes, and it checks that threshold events
 * (level.up, achievement.unlocked, quest.completed, subscription.created) are in the log exactly once.
 */
import type {Catalog} from '../catalog/types.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {Leaderboards, ProjectionDoc, Store} from '../core/ports.js'
import {withArchived} from '../core/merged-log.js'
import {ALL_TIME_BOARD, areaBoard, levelForXp, loadGamificationRules, weeklyBoard, type GamificationRules} from './gamification/rules.js'
import {loadNotificationRules} from './notification/index.js'
import {dayOf, daysBetween, isoWeek, monthOf} from './util.js'

export interface Difference {
  projection: string
  id: string
  field: string
  expected: unknown
  actual: unknown
}

export interface VerifyResult {
  /** Values compared. */
  checked: number
  differences: Difference[]
  /** Events read from the log (the store's and the archive's). */
  events?: number
  /** Of those, read from the archive (events archived out of the store). */
  archived?: number
  /** Per projection: values compared and differences found. */
  projections?: Record<string, {checked: number; differences: number}>
}

interface UserFacts {
  xp: number
  counters: Map<string, number>
  followers: number
  streak: {current: number; longest: number; last_day: string | null}
  verified: boolean
  touched: boolean
}

const SUBSCRIPTION_TYPES = new Set(['payment.subscription.upgraded', 'payment.subscription.downgraded', 'payment.subscription.cancelled'])
const SEARCH_ID: Record<string, string> = {question: 'question_id', insight: 'insight_id', discussion: 'discussion_id', resource: 'resource_id', area: 'area_id', user: 'user_id'}

export interface VerifyOptions {
  store: Store
  leaderboards: Leaderboards
  catalog: Catalog
  rulesDir?: string
  /**
   * Events archived out of the store (`tektree archive run`): their effects stay in the
   * projections, so the oracle counts them too. Merged into the log by timestamp; an event both
   * archived and back in the store (restored) counts once.
   */
  archived?: AsyncIterable<EventEnvelope>
}

export async function verifyProjections(options: VerifyOptions): Promise<VerifyResult> {
  const {store, leaderboards, catalog} = options
  const rules = loadGamificationRules(options.rulesDir)
  const notificationRules = loadNotificationRules(options.rulesDir)
  // A dead-lettered event took no effect in its group (that is what the DLQ records; a redrive
  // applies it): the oracle leaves it out of that group's projections only.
  const deadLettered = new Map<string, Set<string>>()
  for (const record of await store.dlq.list({limit: 10_000_000})) {
    if (!record.event_id) continue
    let ids = deadLettered.get(record.group)
    if (!ids) deadLettered.set(record.group, (ids = new Set()))
    ids.add(record.event_id)
  }
  const oracle = new Oracle(catalog, rules, notificationRules.actors, deadLettered)
  let events = 0
  let fromArchive = 0
  for await (const {event, archived} of withArchived(store.events.query({order: 'asc'}), options.archived)) {
    events++
    if (archived) fromArchive++
    oracle.add(event)
  }
  const result = await oracle.compare(store, leaderboards)
  return {...result, events, ...(options.archived ? {archived: fromArchive} : {})}
}

class Oracle {
  readonly users = new Map<string, UserFacts>()
  readonly boards = new Map<string, Map<string, number>>()
  /** Subscription tier per user as payment and as user (each skips what it dead-lettered). */
  readonly tiers = {payment: new Map<string, {tier: string; status: string}>(), user: new Map<string, {tier: string; status: string}>()}
  readonly registered = new Set<string>()
  readonly mailed = new Set<string>()
  readonly usage = new Map<string, number>()
  readonly feeds = new Map<string, number>()
  readonly searchIds = new Set<string>()
  invalidations = 0
  readonly dau = new Map<string, Set<string>>()
  /** Threshold events in the log: kind -> identity -> count. */
  readonly thresholds = new Map<string, Map<string, number>>()

  constructor(
    readonly catalog: Catalog,
    readonly rules: GamificationRules,
    readonly actors: Record<string, string>,
    readonly deadLettered: Map<string, Set<string>>,
  ) {}

  private dead(service: string, eventId: string): boolean {
    return this.deadLettered.get(service)?.has(eventId) ?? false
  }

  private user(id: string): UserFacts {
    let facts = this.users.get(id)
    if (!facts) {
      facts = {xp: 0, counters: new Map(), followers: 0, streak: {current: 0, longest: 0, last_day: null}, verified: false, touched: true}
      this.users.set(id, facts)
    }
    return facts
  }

  private board(board: string, member: string, delta: number): void {
    let scores = this.boards.get(board)
    if (!scores) this.boards.set(board, (scores = new Map()))
    scores.set(member, (scores.get(member) ?? 0) + delta)
  }

  private seen(kind: string, identity: string): void {
    let counts = this.thresholds.get(kind)
    if (!counts) this.thresholds.set(kind, (counts = new Map()))
    counts.set(identity, (counts.get(identity) ?? 0) + 1)
  }

  add(event: EventEnvelope): void {
    const definition = this.catalog.get(event.event_type)
    if (!definition) return
    const type = definition.type
    const p = event.payload
    const s = (field: unknown) => (typeof field === 'string' && typeof p[field] === 'string' && p[field] !== '' ? (p[field] as string) : null)

    // Facts from derived events.
    if (SUBSCRIPTION_TYPES.has(type) && s('user_id')) {
      const user = s('user_id')!
      const next = type === 'payment.subscription.cancelled' ? {tier: 'free', status: 'cancelled'} : {tier: String(p.new_tier), status: 'active'}
      if (!this.dead('payment', event.event_id)) this.tiers.payment.set(user, next)
      if (!this.dead('user', event.event_id)) this.tiers.user.set(user, next)
    }
    if (type === 'gamification.level.up') this.seen('gamification.level.up', `${p.user_id}:${p.new_level}`)
    if (type === 'gamification.achievement.unlocked') this.seen('gamification.achievement.unlocked', `${p.user_id}:${p.achievement_id}`)
    if (type === 'gamification.quest.completed') this.seen('gamification.quest.completed', `${p.user_id}:${p.quest_id}`)
    if (type === 'payment.subscription.created') this.seen('payment.subscription.created', String(p.user_id))

    for (const consumer of definition.consumers) {
      if (this.dead(consumer.service, event.event_id)) continue
      for (const effect of consumer.effects) {
        const params = effect.params
        const key = `${consumer.service}/${effect.action}`
        switch (key) {
          case 'gamification/award_xp': {
            const user = s(params.target)
            if (!user) break
            const amount = Number(params.amount)
            const facts = this.user(user)
            facts.xp += amount
            const counter = this.rules.counters[type]
            if (counter && p[counter.target] === user) facts.counters.set(counter.counter, (facts.counters.get(counter.counter) ?? 0) + 1)
            this.board(ALL_TIME_BOARD, user, amount)
            this.board(weeklyBoard(isoWeek(event.timestamp)), user, amount)
            const area = s('area_id')
            if (area) this.board(areaBoard(area), user, amount)
            break
          }
          case 'gamification/update_streak': {
            const user = s(params.target ?? 'user_id')
            if (!user) break
            const facts = this.user(user)
            facts.counters.set('logins', (facts.counters.get('logins') ?? 0) + 1)
            const day = s('day') ?? event.timestamp.slice(0, 10)
            const streak = facts.streak
            const gap = streak.last_day === null ? null : daysBetween(streak.last_day, day)
            if (gap !== null && gap <= 0) break
            streak.current = gap === 1 ? streak.current + 1 : 1
            streak.last_day = day
            streak.longest = Math.max(streak.longest, streak.current)
            break
          }
          case 'gamification/check_milestones': {
            const user = s(params.target)
            if (user) this.user(user).followers = Math.max(this.user(user).followers, Number(p[params.count_field as string] ?? 0))
            break
          }
          case 'gamification/unlock_achievement': {
            const user = s(params.target ?? 'user_id')
            if (user) this.user(user).verified = true
            break
          }
          case 'payment/create_subscription': {
            const user = s('user_id')
            if (user) this.registered.add(user)
            break
          }
          case 'email/send_email': {
            const user = s('user_id')
            if (user) this.mailed.add(user)
            break
          }
          case 'payment/meter_usage': {
            const user = s(params.target)
            if (user) {
              const id = `${user}:${params.quota}:${monthOf(event.timestamp)}`
              this.usage.set(id, (this.usage.get(id) ?? 0) + 1)
            }
            break
          }
          case 'notification/notify':
          case 'notification/add_to_feed': {
            const actor = s(this.actors[type])
            const recipients = new Set<string>()
            for (const field of [...((params.recipients as string[] | undefined) ?? []), ...(params.target ? [params.target as string] : [])]) {
              const user = s(field)
              if (user && user !== actor) recipients.add(user)
            }
            for (const user of recipients) this.feeds.set(user, (this.feeds.get(user) ?? 0) + 1)
            break
          }
          case 'search/index':
          case 'search/reindex': {
            const kind = String(params.document)
            const id = s(SEARCH_ID[kind])
            if (id) this.searchIds.add(`${kind}:${id}`)
            break
          }
          case 'cache/invalidate_cache':
            this.invalidations++
            break
          case 'analytics/track': {
            if (params.metric !== 'dau') break
            const user = s('user_id')
            if (!user) break
            const day = dayOf(event.timestamp)
            let users = this.dau.get(day)
            if (!users) this.dau.set(day, (users = new Set()))
            users.add(user)
            break
          }
          default:
            break
        }
      }
    }
  }

  /** Quest rewards and the values derived from the totals. */
  private finish(): Map<string, {xp: number; level: number; achievements: string[]; quests: string[]}> {
    const out = new Map<string, {xp: number; level: number; achievements: string[]; quests: string[]}>()
    for (const [user, facts] of this.users) {
      const value = (counter: string) =>
        counter === 'longest_streak' ? facts.streak.longest : counter === 'followers' ? facts.followers : (facts.counters.get(counter) ?? 0)
      const quests = this.rules.quests.filter((q) => value(q.counter) >= q.target)
      const xp = facts.xp + quests.reduce((sum, q) => sum + q.reward_xp, 0)
      for (const q of quests) this.board(ALL_TIME_BOARD, user, q.reward_xp)
      const achievements = this.rules.achievements
        .filter((a) => (a.event ? facts.verified : value(a.counter!) >= a.threshold!))
        .map((a) => a.id)
        .sort()
      out.set(user, {xp, level: levelForXp(this.rules.levels, xp), achievements, quests: quests.map((q) => q.id).sort()})
    }
    return out
  }

  async compare(store: Store, leaderboards: Leaderboards): Promise<VerifyResult> {
    const differences: Difference[] = []
    const perProjection: Record<string, {checked: number; differences: number}> = {}
    const check = (projection: string, id: string, field: string, expected: unknown, actual: unknown) => {
      const stats = (perProjection[projection] ??= {checked: 0, differences: 0})
      stats.checked++
      if (JSON.stringify(expected) === JSON.stringify(actual)) return
      stats.differences++
      differences.push({projection, id, field, expected, actual})
    }
    const projections = store.projections
    const derived = this.finish()

    // Gamification profiles.
    const profiles = new Map((await projections.find('gamification_profiles')).map((d) => [d._id, d]))
    for (const [user, facts] of this.users) {
      const doc = profiles.get(user)
      const expected = derived.get(user)!
      const P = 'gamification_profiles'
      check(P, user, 'xp', expected.xp, Number(doc?.xp ?? 0))
      check(P, user, 'level', expected.level, Number(doc?.level ?? 1))
      check(P, user, 'achievements', expected.achievements, [...((doc?.achievements as string[] | undefined) ?? [])].sort())
      check(P, user, 'quests', expected.quests, [...((doc?.quests as string[] | undefined) ?? [])].sort())
      const counters = (doc?.counters ?? {}) as Record<string, number>
      for (const [name, value] of facts.counters) check(P, user, `counters.${name}`, value, counters[name] ?? 0)
      if (facts.followers > 0) check(P, user, 'counters.followers', facts.followers, counters.followers ?? 0)
      const streak = (doc?.streak ?? {}) as Record<string, unknown>
      if (facts.streak.last_day !== null) {
        check(P, user, 'streak.current', facts.streak.current, streak.current ?? 0)
        check(P, user, 'streak.longest', facts.streak.longest, streak.longest ?? 0)
        check(P, user, 'streak.last_day', facts.streak.last_day, streak.last_day ?? null)
      }
      // Threshold events: each reached threshold announced exactly once.
      for (let l = 2; l <= expected.level; l++) check('events:gamification.level.up', `${user}:${l}`, 'count', 1, this.thresholds.get('gamification.level.up')?.get(`${user}:${l}`) ?? 0)
      for (const a of expected.achievements) check('events:gamification.achievement.unlocked', `${user}:${a}`, 'count', 1, this.thresholds.get('gamification.achievement.unlocked')?.get(`${user}:${a}`) ?? 0)
      for (const q of expected.quests) check('events:gamification.quest.completed', `${user}:${q}`, 'count', 1, this.thresholds.get('gamification.quest.completed')?.get(`${user}:${q}`) ?? 0)
    }
    for (const [user] of profiles) if (!this.users.has(user)) check('gamification_profiles', user, '(document)', null, 'present')
    for (const [kind, counts] of this.thresholds) {
      for (const [identity, count] of counts) if (count > 1) check(`events:${kind}`, identity, 'count', 1, count)
    }

    // Leaderboards.
    const actualBoards = new Set((await leaderboards.boards()).filter((b) => b === ALL_TIME_BOARD || b.startsWith('weekly:') || b.startsWith('area:')))
    for (const board of new Set([...this.boards.keys(), ...actualBoards])) {
      const expected = this.boards.get(board) ?? new Map<string, number>()
      const actual = new Map((await leaderboards.top(board, 1_000_000)).map((e) => [e.member, e.score]))
      for (const member of new Set([...expected.keys(), ...actual.keys()])) check(`leaderboard:${board.split(':')[0]}`, `${board}/${member}`, 'score', expected.get(member) ?? null, actual.get(member) ?? null)
    }

    // Payment.
    const subscriptions = new Map((await projections.find('payment_subscriptions')).map((d) => [d._id, d]))
    for (const user of new Set([...this.registered, ...this.tiers.payment.keys()])) {
      const expected = this.tiers.payment.get(user) ?? {tier: 'free', status: 'active'}
      const doc = subscriptions.get(user)
      check('payment_subscriptions', user, 'tier', expected.tier, doc?.tier ?? null)
      check('payment_subscriptions', user, 'status', expected.status, doc?.status ?? null)
      if (this.registered.has(user)) check('events:payment.subscription.created', user, 'count', 1, this.thresholds.get('payment.subscription.created')?.get(user) ?? 0)
    }
    const usage = new Map((await projections.find('payment_usage')).map((d) => [d._id, d]))
    for (const id of new Set([...this.usage.keys(), ...usage.keys()])) check('payment_usage', id, 'used', this.usage.get(id) ?? 0, Number(usage.get(id)?.used ?? 0))

    // Notification feeds (named recipients; follower fan-out is a race by design, see the service).
    const feeds = new Map((await projections.find('notification_feeds')).map((d) => [d._id, d]))
    for (const user of new Set([...this.feeds.keys(), ...[...feeds.values()].filter((d) => Number(d.direct ?? 0) > 0).map((d) => d._id)])) {
      check('notification_feeds', user, 'direct', this.feeds.get(user) ?? 0, Number(feeds.get(user)?.direct ?? 0))
    }

    // Search, cache, analytics.
    const searchDocs = new Set((await projections.find('search_documents')).map((d) => d._id))
    for (const id of new Set([...this.searchIds, ...searchDocs])) check('search_documents', id, '(document)', this.searchIds.has(id) ? 'present' : null, searchDocs.has(id) ? 'present' : null)
    check('cache_invalidations', 'user_profile', 'count', this.invalidations, await projections.count('cache_invalidations', {cache: 'user_profile'}))
    const dauDocs = await projections.find('analytics_dau')
    const actualDau = new Map<string, number>()
    for (const doc of dauDocs) actualDau.set(String(doc.day), (actualDau.get(String(doc.day)) ?? 0) + 1)
    for (const day of new Set([...this.dau.keys(), ...actualDau.keys()])) check('analytics_dau', day, 'users', this.dau.get(day)?.size ?? 0, actualDau.get(day) ?? 0)

    // User badges.
    const badges = new Map((await projections.find('user_badges')).map((d) => [d._id, d]))
    for (const user of new Set([...this.registered, ...this.tiers.user.keys(), ...badges.keys()])) {
      const doc: ProjectionDoc | undefined = badges.get(user)
      const expectedTier = this.tiers.user.get(user)?.tier ?? (this.registered.has(user) ? 'free' : null)
      check('user_badges', user, 'tier', expectedTier, doc ? (doc.tier ?? doc.created_tier ?? null) : null)
    }
    for (const [user, expected] of derived) {
      if (expected.level < 2 && !badges.has(user)) continue
      check('user_badges', user, 'level', expected.level, Number(badges.get(user)?.level ?? 1))
    }

    // Email: both mails of every registration.
    const mails = new Set((await projections.find('email_messages')).map((d) => d._id))
    for (const user of this.mailed) for (const template of ['welcome', 'verification']) check('email_messages', `${template}:${user}`, '(document)', 'present', mails.has(`${template}:${user}`) ? 'present' : null)

    const checked = Object.values(perProjection).reduce((sum, p) => sum + p.checked, 0)
    return {checked, differences, projections: perProjection}
  }
}
