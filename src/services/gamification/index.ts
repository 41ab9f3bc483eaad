/**
 * Gamification: XP per the catalog's award_xp effects, levels, achievements, daily streaks, quests
 * and leaderboards (all-time, weekly, per area), each change announced as a gamification.* event.
 *
 * Idempotency under redelivery, with no state in this process:
 * - every profile write is projections.applyOnce(profile, guard): the guard and the change are one
 *   atomic document write; leaderboard increments are incrementOnce (ZINCRBY is not idempotent);
 * - thresholds (level L, achievement A, quest Q) are decided from the profile re-read AFTER the
 *   atomic increment, and announced with an identity id (user + threshold), so the store keeps one
 *   event however many handlers observe the threshold, concurrently or on redelivery;
 * - when the triggering write was already applied (a redelivery, perhaps after a crash before this
 *   handler's events were appended), every threshold the profile has reached is announced again:
 *   the identity ids make that safe, and nothing is lost;
 * - a quest's reward is guarded by the quest (not the event) so it is paid once per user ever.
 */
import type {EventEnvelope} from '../../core/envelope.js'
import type {HandlerContext, ServiceDefinition} from '../../engine/consumer.js'
import type {ProjectionDoc} from '../../core/ports.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, isoWeek, str} from '../util.js'
import {ALL_TIME_BOARD, areaBoard, counterValue, levelForXp, loadGamificationRules, weeklyBoard, type GamificationRules} from './rules.js'

export const PROFILES = 'gamification_profiles'
export {levelForXp, loadGamificationRules, isoWeek}

export interface GamificationProfile {
  user_id: string
  xp: number
  level: number
  achievements: string[]
  quests: string[]
  counters: Record<string, number>
  streak: {current: number; longest: number; last_day: string | null}
}

/** A user's profile as the service keeps it (defaults filled in), or null when it has none. */
export function toProfile(doc: ProjectionDoc | null): GamificationProfile | null {
  if (!doc) return null
  const streak = (doc.streak ?? {}) as Record<string, unknown>
  return {
    user_id: String(doc.user_id ?? doc._id),
    xp: Number(doc.xp ?? 0),
    level: Number(doc.level ?? 1),
    achievements: (doc.achievements as string[] | undefined) ?? [],
    quests: (doc.quests as string[] | undefined) ?? [],
    counters: (doc.counters as Record<string, number> | undefined) ?? {},
    streak: {current: Number(streak.current ?? 0), longest: Number(streak.longest ?? 0), last_day: (streak.last_day as string | undefined) ?? null},
  }
}

const onInsert = (user: string) => ({$setOnInsert: {user_id: user}})

export function createGamificationService(options: ServiceOptions): ServiceDefinition {
  const rules = loadGamificationRules(options.rulesDir)
  const effects = effectsByType(options.catalog, 'gamification')
  // Per-process throttle memory only decides whether to TRY; the identity id decides what is kept.
  const lastWindow = new Map<string, number>()
  const deps = {rules, lastWindow}

  return {
    name: 'gamification',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        const params = effect.params
        switch (effect.action) {
          case 'award_xp': {
            const user = str(event.payload, params.target as string)
            if (!user) break
            const counter = rules.counters[ctx.definition.type]
            await award(deps, ctx, event, user, Number(params.amount), counter && event.payload[counter.target] === user ? counter.counter : null)
            break
          }
          case 'update_streak': {
            const user = str(event.payload, (params.target as string) ?? 'user_id')
            if (user) await updateStreak(deps, ctx, event, user)
            break
          }
          case 'check_milestones': {
            const user = str(event.payload, params.target as string)
            const count = Number(event.payload[params.count_field as string])
            if (user && Number.isFinite(count)) await followers(deps, ctx, event, user, count)
            break
          }
          case 'unlock_achievement': {
            const user = str(event.payload, (params.target as string) ?? 'user_id')
            const achievement = rules.achievements.find((a) => a.id === params.achievement)
            if (user && achievement) announceAchievement(ctx, user, achievement)
            break
          }
          case 'update_profile': {
            const user = str(event.payload, 'user_id')
            const id = str(event.payload, 'achievement_id')
            if (user && id) await ctx.store.projections.applyOnce(PROFILES, user, event.event_id, {$addToSet: {achievements: id}, ...onInsert(user)})
            break
          }
          default:
            break
        }
      }
    },
  }
}

interface Deps {
  rules: GamificationRules
  lastWindow: Map<string, number>
}

async function award(deps: Deps, ctx: HandlerContext, event: EventEnvelope, user: string, amount: number, counter: string | null): Promise<void> {
  const {store, leaderboards} = ctx
  const inc: Record<string, number> = {xp: amount}
  if (counter) inc[`counters.${counter}`] = 1
  const applied = await store.projections.applyOnce(PROFILES, user, event.event_id, {$inc: inc, ...onInsert(user)})

  const area = str(event.payload, 'area_id')
  const boards = [ALL_TIME_BOARD, weeklyBoard(isoWeek(event.timestamp))]
  if (area) boards.push(areaBoard(area))
  // Together: one round trip for every board (the Redis adapter pipelines them).
  await Promise.all(boards.map((board) => leaderboards.incrementOnce(board, user, amount, event.event_id)))

  const profile = toProfile(await store.projections.get(PROFILES, user))!
  ctx.emit('gamification.xp.earned', {
    user_id: user,
    amount,
    reason: ctx.definition.type,
    source_event_id: event.event_id,
    total_xp: Math.max(1, profile.xp),
    area_id: area,
  })
  await thresholds(deps, ctx, event, user, profile, applied)
  await announceBoards(deps, ctx, event, boards)
}

/**
 * Quests, then levels (a reward may cross one), then counter achievements: every one the profile has
 * reached and not recorded, whichever counter this event moved. Two processes of the group that
 * each read the profile without the other's increment would both miss a threshold they cross
 * together: on a transactional store the later commit is refused as a stale read and its event
 * decides again (unit-of-work.ts); on a standalone mongod the next event of the user pays and
 * announces it (test/chaos/sigstop checks the first).
 */
async function thresholds(deps: Deps, ctx: HandlerContext, event: EventEnvelope, user: string, profile: GamificationProfile, applied: boolean): Promise<void> {
  const {rules} = deps
  const {store, leaderboards} = ctx
  let xp = profile.xp
  for (const quest of rules.quests) {
    if (counterValue(profile, quest.counter) < quest.target) continue
    const paid = profile.quests.includes(quest.id)
    if (paid && applied) continue
    if (!paid) {
      // Guarded by the quest, not the event: two events completing it at once pay it once.
      const rewarded = await store.projections.applyOnce(PROFILES, user, `quest:${quest.id}`, {$inc: {xp: quest.reward_xp}, $addToSet: {quests: quest.id}})
      if (rewarded) xp += quest.reward_xp
    }
    await leaderboards.incrementOnce(ALL_TIME_BOARD, user, quest.reward_xp, `quest:${user}:${quest.id}`)
    ctx.emit('gamification.quest.completed', {user_id: user, quest_id: quest.id, name: quest.name, reward_xp: quest.reward_xp}, {identity: `${user}:quest:${quest.id}`})
    ctx.emit(
      'gamification.xp.earned',
      {user_id: user, amount: quest.reward_xp, reason: 'gamification.quest.completed', source_event_id: event.event_id, total_xp: Math.max(1, xp), area_id: null},
      {identity: `${user}:quest-xp:${quest.id}`},
    )
  }

  const level = levelForXp(rules.levels, xp)
  const announced = applied ? profile.level : 1
  for (let l = announced + 1; l <= level; l++) {
    ctx.emit('gamification.level.up', {user_id: user, previous_level: l - 1, new_level: l, total_xp: Math.max(1, xp)}, {identity: `${user}:level:${l}`})
  }
  if (level > profile.level) await store.projections.applyOnce(PROFILES, user, `${event.event_id}:level`, {$max: {level}})

  announceReached(deps, ctx, user, profile, applied)
}

/** Counter achievements the profile has reached and (on a first delivery) not yet recorded. */
function announceReached(deps: Deps, ctx: HandlerContext, user: string, profile: GamificationProfile, applied: boolean): void {
  for (const achievement of deps.rules.achievements) {
    if (!achievement.counter || achievement.threshold === undefined) continue
    if (counterValue(profile, achievement.counter) < achievement.threshold) continue
    if (applied && profile.achievements.includes(achievement.id)) continue
    announceAchievement(ctx, user, achievement)
  }
}

function announceAchievement(ctx: HandlerContext, user: string, achievement: GamificationRules['achievements'][number]): void {
  // The profile's set is updated when gamification consumes this event (the catalog's update_profile).
  ctx.emit(
    'gamification.achievement.unlocked',
    {user_id: user, achievement_id: achievement.id, name: achievement.name, category: achievement.category},
    {identity: `${user}:achievement:${achievement.id}`},
  )
}

async function announceBoards(deps: Deps, ctx: HandlerContext, event: EventEnvelope, boards: string[]): Promise<void> {
  const {throttle_ms: throttle, top} = deps.rules.leaderboards
  const at = Date.parse(event.timestamp)
  const due: Array<{board: string; window: number}> = []
  for (const board of boards) {
    const window = throttle > 0 ? Math.floor(at / throttle) : at
    if (deps.lastWindow.get(board) === window) continue
    deps.lastWindow.set(board, window)
    if (deps.lastWindow.size > 10_000) deps.lastWindow.delete(deps.lastWindow.keys().next().value!)
    due.push({board, window})
  }
  // Read together, announced in the boards' order.
  const tops = await Promise.all(due.map(({board}) => ctx.leaderboards.top(board, top)))
  for (const [i, {board, window}] of due.entries()) {
    const entries = tops[i]
    ctx.emit(
      'gamification.leaderboard.updated',
      {
        board_id: board,
        period: board === ALL_TIME_BOARD ? 'all_time' : board.startsWith('weekly:') ? 'weekly' : 'area',
        top: entries.map((e) => ({user_id: e.member, score: e.score, rank: e.rank})),
      },
      {identity: `${board}:${window}`},
    )
  }
}

/** user.authenticated is keyed by user: one user's logins run in order, so read-then-write is safe. */
async function updateStreak(deps: Deps, ctx: HandlerContext, event: EventEnvelope, user: string): Promise<void> {
  const {store} = ctx
  const day = str(event.payload, 'day') ?? event.timestamp.slice(0, 10)
  const doc = await store.projections.get(PROFILES, user)
  const profile = toProfile(doc)
  const streak = profile?.streak ?? {current: 0, longest: 0, last_day: null}
  if ((doc?.streak as {last_event?: string} | undefined)?.last_event === event.event_id) {
    // This very event again (its write is in): announce again what it did, in case that was lost.
    announceStreak(deps, ctx, user, streak.current, day)
    announceReached(deps, ctx, user, profile!, false)
    return
  }
  const gap = streak.last_day === null ? null : daysFrom(streak.last_day, day)
  if (gap !== null && gap <= 0) {
    // The same day again, or an older day arriving late: a login, no streak change.
    await store.projections.applyOnce(PROFILES, user, event.event_id, {$inc: {'counters.logins': 1}, ...onInsert(user)})
    return
  }
  const current = gap === 1 ? streak.current + 1 : 1
  const applied = await store.projections.applyOnce(PROFILES, user, event.event_id, {
    $set: {'streak.current': current, 'streak.last_day': day, 'streak.last_event': event.event_id},
    $max: {'streak.longest': current},
    $inc: {'counters.logins': 1},
    ...onInsert(user),
  })
  announceStreak(deps, ctx, user, current, day)
  const longest = Math.max(streak.longest, current)
  announceReached(deps, ctx, user, {...(profile ?? toProfile({_id: user})!), streak: {current, longest, last_day: day}}, applied)
}

function announceStreak(deps: Deps, ctx: HandlerContext, user: string, current: number, day: string): void {
  ctx.emit('gamification.streak.extended', {user_id: user, streak_days: current, day})
  if (deps.rules.streaks.milestones.includes(current)) ctx.emit('gamification.streak.milestone', {user_id: user, streak_days: current, milestone: current})
}

async function followers(deps: Deps, ctx: HandlerContext, event: EventEnvelope, user: string, count: number): Promise<void> {
  const applied = await ctx.store.projections.applyOnce(PROFILES, user, event.event_id, {$max: {'counters.followers': count}, ...onInsert(user)})
  const profile = toProfile(await ctx.store.projections.get(PROFILES, user))!
  announceReached(deps, ctx, user, profile, applied)
}

function daysFrom(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000)
}
