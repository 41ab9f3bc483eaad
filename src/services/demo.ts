/**
 * The three choreography patterns of seed 000 as scripted runs on a runtime: registration,
 * content engagement, achievement unlock. Each publishes its source events one step at a time
 * under one correlation id, lets the services react, and records what flowed (the derived events
 * with their causation) and the state at the end. Rendering is the command's job.
 */
import {randomUUID, createHash} from 'node:crypto'
import type {Catalog} from '../catalog/types.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {Runtime} from '../core/runtime.js'
import {invalidationCount} from './cache/index.js'
import {toProfile, PROFILES} from './gamification/index.js'
import {startServices, waitForQuiet} from './host.js'
import {createServices} from './index.js'
import {searchDocuments, type SearchHit} from './search/index.js'
import {BADGES, toBadges} from './user/index.js'
import {FEEDS} from './notification/index.js'
import {SUBSCRIPTIONS} from './payment/index.js'

export const DEMOS = {
  registration: 'Pattern 1: user registration flow',
  engagement: 'Pattern 2: content engagement flow',
  achievement: 'Pattern 3: achievement unlock flow',
} as const
export type DemoName = keyof typeof DEMOS

export interface DemoEvent {
  event_id: string
  type: string
  source: string
  /** The event it was caused by (null for a source event), from the event's causation_id. */
  causation_id: string | null
  causation_type: string | null
  /** 0 for a published event, 1 for its reactions, 2 for theirs...; reactions follow their cause. */
  depth: number
  summary: string
}

export interface DemoStep {
  title: string
  published: DemoEvent[]
  reactions: DemoEvent[]
}

export interface DemoUserState {
  name: string
  user_id: string
  xp: number
  level: number
  achievements: string[]
  quests: string[]
  streak: number
  tier: string
  tier_badge: string | null
  level_badge: number | null
  notifications: number
}

export interface DemoResult {
  demo: DemoName
  title: string
  correlation_id: string
  steps: DemoStep[]
  users: DemoUserState[]
  search: {query: string; hits: SearchHit[]} | null
  cache_invalidations: number
  mail_dir: string | null
  events: number
  settled: boolean
}

interface Script {
  users: string[]
  steps: Array<{title: string; events: (ids: Ids) => Array<{type: string; payload: Record<string, unknown>}>}>
  search?: string
}

type Ids = {user(name: string): string; area: string; id(name: string): string; day(offset: number): string}

const hash = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`

function registration(name: string, ids: Ids) {
  return {type: 'user.registered', payload: {user_id: ids.user(name), username: name.toLowerCase(), email_hash: hash(`${name}@example.com`), signup_source: 'web', locale: 'en'}}
}

const SCRIPTS: Record<DemoName, Script> = {
  registration: {
    users: ['Ada'],
    steps: [
      {title: 'Ada signs up', events: (ids) => [registration('Ada', ids)]},
      {title: 'Ada verifies her email address', events: (ids) => [{type: 'user.email.verified', payload: {user_id: ids.user('Ada'), email_hash: hash('Ada@example.com'), verified_via: 'link'}}]},
      {
        title: 'Ada logs in two days running',
        events: (ids) => [0, 1].map((d) => ({type: 'user.authenticated', payload: {user_id: ids.user('Ada'), method: 'password', session_id: ids.id(`session-${d}`), day: ids.day(d)}})),
      },
      {
        title: 'Ada fills in her profile',
        events: (ids) => [{type: 'user.profile.updated', payload: {user_id: ids.user('Ada'), changed_fields: ['display_name', 'bio'], display_name: 'Ada Lovelace', bio: 'Analytical engines and event streaming'}}],
      },
    ],
    search: 'analytical engines',
  },
  engagement: {
    users: ['Grace', 'Linus'],
    steps: [
      {title: 'Grace and Linus sign up', events: (ids) => [registration('Grace', ids), registration('Linus', ids)]},
      {title: 'Linus follows Grace', events: (ids) => [{type: 'social.user.followed', payload: {follower_id: ids.user('Linus'), followee_id: ids.user('Grace'), followee_follower_count: 1}}]},
      {
        title: 'Grace asks a question',
        events: (ids) => [{type: 'knowledge.question.posted', payload: {question_id: ids.id('q1'), author_id: ids.user('Grace'), area_id: ids.area, title: 'How do consumer groups keep per-key order in Redis Streams?', tags: ['redis', 'streams']}}],
      },
      {
        title: 'Linus answers it',
        events: (ids) => [{type: 'knowledge.answer.submitted', payload: {answer_id: ids.id('a1'), question_id: ids.id('q1'), question_author_id: ids.user('Grace'), author_id: ids.user('Linus'), area_id: ids.area}}],
      },
      {
        title: 'Grace accepts the answer and likes it',
        events: (ids) => [
          {type: 'knowledge.answer.accepted', payload: {answer_id: ids.id('a1'), question_id: ids.id('q1'), question_author_id: ids.user('Grace'), answer_author_id: ids.user('Linus'), area_id: ids.area}},
          {type: 'social.content.liked', payload: {content_id: ids.id('a1'), content_type: 'answer', content_author_id: ids.user('Linus'), user_id: ids.user('Grace'), area_id: ids.area}},
        ],
      },
      {
        title: 'Linus comments on the question',
        events: (ids) => [
          {
            type: 'social.comment.added',
            payload: {comment_id: ids.id('c1'), content_id: ids.id('q1'), content_type: 'question', content_author_id: ids.user('Grace'), author_id: ids.user('Linus'), parent_comment_id: null, parent_comment_author_id: null},
          },
        ],
      },
    ],
    search: 'consumer groups order',
  },
  achievement: {
    users: ['Barbara'],
    steps: [
      {title: 'Barbara signs up (+100 XP: level 2)', events: (ids) => [registration('Barbara', ids)]},
      {
        title: 'Barbara asks three questions (first question, quest "ask 3 questions")',
        events: (ids) =>
          [1, 2, 3].map((n) => ({
            type: 'knowledge.question.posted',
            payload: {question_id: ids.id(`q${n}`), author_id: ids.user('Barbara'), area_id: ids.area, title: `Idempotent consumers, part ${n}: what breaks first?`, tags: ['idempotency']},
          })),
      },
      {
        title: 'Barbara upgrades to Pro (+200 XP: level 3)',
        events: (ids) => [{type: 'payment.subscription.upgraded', payload: {subscription_id: ids.id('sub'), user_id: ids.user('Barbara'), previous_tier: 'free', new_tier: 'pro'}}],
      },
    ],
    search: 'idempotent consumers',
  },
}

/**
 * One line about an event. `xp` holds each user's XP as the narration has told it so far: the total
 * printed after an award is that running sum (the event's own total_xp is read after the write, so
 * an award handled beside another of the same user's shows both: 162 after +2 and after +50).
 */
function summarize(event: EventEnvelope, names: Map<string, string>, xp: Map<string, number>): string {
  const p = event.payload
  const who = (field: string) => names.get(String(p[field])) ?? String(p[field] ?? '?').slice(0, 8)
  switch (event.event_type) {
    case 'gamification.xp.earned': {
      const user = String(p.user_id)
      const total = (xp.get(user) ?? 0) + Number(p.amount)
      xp.set(user, total)
      return `+${p.amount} XP to ${who('user_id')} (total ${total})`
    }
    case 'gamification.level.up':
      return `${who('user_id')} reaches level ${p.new_level}`
    case 'gamification.achievement.unlocked':
      return `${who('user_id')} unlocks "${p.name}"`
    case 'gamification.quest.completed':
      return `${who('user_id')} completes quest "${p.name}" (+${p.reward_xp} XP)`
    case 'gamification.streak.extended':
      return `${who('user_id')}'s streak: ${p.streak_days} day(s)`
    case 'gamification.streak.milestone':
      return `${who('user_id')} hits a ${p.milestone}-day streak`
    case 'gamification.leaderboard.updated':
      return `board ${p.board_id}: ${(p.top as Array<{user_id: string; score: number}>).slice(0, 3).map((e) => `${names.get(e.user_id) ?? e.user_id.slice(0, 8)} ${e.score}`).join(', ')}`
    case 'payment.subscription.created':
      return `${who('user_id')} gets a ${p.tier} subscription`
    case 'payment.invoice.paid':
      return `${who('user_id')} pays ${(Number(p.amount_cents) / 100).toFixed(2)} ${p.currency} (${p.tier})`
    case 'payment.quota.exceeded':
      return `${who('user_id')} exceeds ${p.quota} (${p.used}/${p.limit})`
    case 'notification.sent':
      return `notify ${who('user_id')}: ${p.template} (${p.channel})`
    default:
      return Object.entries(p)
        .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
        .slice(0, 3)
        .map(([k, v]) => `${k}=${names.get(String(v)) ?? String(v).slice(0, 40)}`)
        .join(' ')
  }
}

/**
 * A step's reactions under the event that caused them (its causation_id), depth first from each
 * published event in turn, in store order among siblings; reactions to an earlier step's events
 * come last, at depth 1.
 */
function inCausalOrder(published: readonly EventEnvelope[], reactions: readonly EventEnvelope[]): Array<{event: EventEnvelope; depth: number}> {
  const children = new Map<string, EventEnvelope[]>()
  for (const event of reactions) {
    const cause = event.causation_id ?? ''
    children.set(cause, [...(children.get(cause) ?? []), event])
  }
  const out: Array<{event: EventEnvelope; depth: number}> = []
  const placed = new Set<string>()
  const visit = (id: string, depth: number) => {
    for (const child of children.get(id) ?? []) {
      if (placed.has(child.event_id)) continue
      placed.add(child.event_id)
      out.push({event: child, depth})
      visit(child.event_id, depth + 1)
    }
  }
  for (const event of published) visit(event.event_id, 1)
  for (const event of reactions) {
    if (placed.has(event.event_id)) continue
    placed.add(event.event_id)
    out.push({event, depth: 1})
    visit(event.event_id, 2)
  }
  return out
}

export async function runDemo(name: DemoName, options: {runtime: Runtime; catalog: Catalog; emailDir?: string | null; settleTimeoutMs?: number}): Promise<DemoResult> {
  const {runtime, catalog} = options
  const script = SCRIPTS[name]
  const run = randomUUID()
  const names = new Map<string, string>()
  const userIds = new Map<string, string>()
  const ids: Ids = {
    user: (n) => {
      let id = userIds.get(n)
      if (!id) {
        id = randomUUID()
        userIds.set(n, id)
        names.set(id, n)
      }
      return id
    },
    area: randomUUID(),
    id: (() => {
      const made = new Map<string, string>()
      return (n: string) => made.get(n) ?? (made.set(n, randomUUID()), made.get(n)!)
    })(),
    day: (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10),
  }
  for (const user of script.users) ids.user(user)

  const services = createServices({catalog, clock: runtime.clock, emailDir: options.emailDir ?? null})
  const host = startServices({runtime, catalog, services, consumerOptions: {blockMs: 50}, beacon: {role: 'demo'}})
  const correlation = run
  const seen = new Set<string>()
  const byId = new Map<string, EventEnvelope>()
  // The demo's users are new: their XP starts at 0 and moves only by the xp.earned events narrated.
  const xp = new Map<string, number>()
  const steps: DemoStep[] = []
  let settled = true
  try {
    for (const step of script.steps) {
      const drafts = step.events(ids).map((e) => host.publisher.draft(e.type, e.payload, {correlationId: correlation}))
      // One event at a time, each settled before the next: a step's events then react in the order
      // told (an acceptance's unlock is the acceptance's, not the like's published beside it).
      for (const d of drafts) {
        const result = await host.publisher.publish([d])
        if (result.rejected.length > 0) throw new Error(`demo event rejected: ${result.rejected[0].error.error.message}`)
        seen.add(d.event_id)
        byId.set(d.event_id, d)
        settled = (await waitForQuiet(runtime, host, {timeoutMs: options.settleTimeoutMs ?? 20_000, groups: services.map((s) => s.name)})) && settled
      }
      const fresh: EventEnvelope[] = []
      for await (const event of runtime.store.events.query({correlationId: correlation})) {
        if (seen.has(event.event_id)) continue
        seen.add(event.event_id)
        byId.set(event.event_id, event)
        fresh.push(event)
      }
      const published = drafts.map((d) => ({event_id: d.event_id, type: d.event_type, source: d.source_service, causation_id: null, causation_type: null, depth: 0, summary: summarize(d, names, xp)}))
      const reactions = inCausalOrder(drafts, fresh).map(({event, depth}) => ({
        event_id: event.event_id,
        type: event.event_type,
        source: event.source_service,
        causation_id: event.causation_id ?? null,
        causation_type: event.causation_id ? (byId.get(event.causation_id)?.event_type ?? null) : null,
        depth,
        summary: summarize(event, names, xp),
      }))
      steps.push({title: step.title, published, reactions})
    }
  } finally {
    await host.stop()
  }

  const projections = runtime.store.projections
  const users: DemoUserState[] = []
  for (const [userName, userId] of userIds) {
    const profile = toProfile(await projections.get(PROFILES, userId))
    const badges = toBadges(await projections.get(BADGES, userId))
    const subscription = await projections.get(SUBSCRIPTIONS, userId)
    const feed = await projections.get(FEEDS, userId)
    users.push({
      name: userName,
      user_id: userId,
      xp: profile?.xp ?? 0,
      level: profile?.level ?? 1,
      achievements: profile?.achievements ?? [],
      quests: profile?.quests ?? [],
      streak: profile?.streak.current ?? 0,
      tier: String(subscription?.tier ?? 'none'),
      tier_badge: badges?.tier ?? null,
      level_badge: badges ? badges.level : null,
      notifications: Number(feed?.direct ?? 0) + Number(feed?.fanout ?? 0),
    })
  }
  const search = script.search ? {query: script.search, hits: await searchDocuments(projections, script.search, {limit: 5})} : null
  return {
    demo: name,
    title: DEMOS[name],
    correlation_id: correlation,
    steps,
    users,
    search,
    cache_invalidations: await invalidationCount(projections),
    mail_dir: options.emailDir ?? null,
    events: seen.size,
    settled,
  }
}
