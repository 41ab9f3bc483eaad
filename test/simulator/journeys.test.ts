import {describe, expect, it} from 'vitest'
import {createJourneys, type SimDraft} from '../../src/simulator/journeys.js'
import {JOURNEY_STEPS, type JourneyStep} from '../../src/simulator/scenario.js'
import {Population, Ring} from '../../src/simulator/population.js'
import {createRandom} from '../../src/simulator/random.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const all = Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 1])) as Record<JourneyStep, number>
const DAY = 86_400_000

function generate(seed: number | null, n: number, weights = all, users = 300) {
  let now = Date.UTC(2026, 10, 20)
  const j = createJourneys({users, areas: 6, weights, seed, now: () => (now += DAY / 100)})
  return {drafts: j.next(n), journeys: j}
}

/** Replays drafts and checks every reference against what came before (causal order). */
function checkCausal(drafts: SimDraft[]) {
  const users = new Set<string>()
  const areas = new Set<string>()
  const content = new Map<string, {type: string; author: string}>()
  const questions = new Map<string, {author: string; answers: Map<string, string>; accepted: boolean}>()
  const comments = new Map<string, string>()
  const followers = new Map<string, number>()
  const follows = new Set<string>()
  const tiers = new Map<string, string>()
  const need = (cond: boolean, what: string, d: SimDraft) => {
    if (!cond) throw new Error(`${what}: ${JSON.stringify(d)}`)
  }
  for (const d of drafts) {
    const p = d.payload as Record<string, any>
    for (const [k, v] of Object.entries(p)) if (k.endsWith('_id') && typeof v === 'string') need(UUID_V4.test(v), `${k} is a uuid v4`, d)
    if (d.type !== 'user.registered') {
      const actor = p.user_id ?? p.author_id ?? p.follower_id ?? p.creator_id ?? p.question_author_id
      need(users.has(actor), 'actor registered first', d)
    }
    switch (d.type) {
      case 'user.registered':
        need(!users.has(p.user_id), 'registers once', d)
        need(/^[a-z0-9_]{3,32}$/.test(p.username), 'username pattern', d)
        need(/^sha256:[0-9a-f]{64}$/.test(p.email_hash), 'email hash', d)
        users.add(p.user_id)
        tiers.set(p.user_id, 'free')
        break
      case 'user.authenticated':
        need(/^\d{4}-\d{2}-\d{2}$/.test(p.day), 'day', d)
        break
      case 'knowledge.area.created':
        areas.add(p.area_id)
        break
      case 'knowledge.question.posted':
        need(areas.has(p.area_id), 'area exists', d)
        need(p.title.length >= 10 && p.title.length <= 200, 'title length', d)
        questions.set(p.question_id, {author: p.author_id, answers: new Map(), accepted: false})
        content.set(p.question_id, {type: 'question', author: p.author_id})
        break
      case 'knowledge.answer.submitted': {
        const q = questions.get(p.question_id)
        need(q !== undefined, 'question exists', d)
        need(q!.author === p.question_author_id, 'question_author_id', d)
        q!.answers.set(p.answer_id, p.author_id)
        content.set(p.answer_id, {type: 'answer', author: p.author_id})
        break
      }
      case 'knowledge.answer.accepted': {
        const q = questions.get(p.question_id)
        need(q !== undefined && q.author === p.question_author_id, 'accepted by the question author', d)
        need(q!.answers.get(p.answer_id) === p.answer_author_id, 'an existing answer, right author', d)
        need(!q!.accepted, 'accepted once', d)
        q!.accepted = true
        break
      }
      case 'knowledge.insight.published':
      case 'knowledge.discussion.started':
      case 'knowledge.resource.shared': {
        const id = p.insight_id ?? p.discussion_id ?? p.resource_id
        need(areas.has(p.area_id), 'area exists', d)
        content.set(id, {type: d.type.split('.')[1], author: p.author_id})
        break
      }
      case 'social.content.liked':
      case 'social.content.upvoted': {
        const c = content.get(p.content_id)
        need(c !== undefined && c.type === p.content_type && c.author === p.content_author_id, 'content ref', d)
        break
      }
      case 'social.comment.added': {
        const c = content.get(p.content_id)
        need(c !== undefined && c.type === p.content_type && c.author === p.content_author_id, 'content ref', d)
        if (p.parent_comment_id !== null) need(comments.get(p.parent_comment_id) === p.parent_comment_author_id, 'parent comment', d)
        comments.set(p.comment_id, p.author_id)
        content.set(p.comment_id, {type: 'comment', author: p.author_id})
        break
      }
      case 'social.user.followed': {
        const edge = `${p.follower_id}>${p.followee_id}`
        need(!follows.has(edge) && p.follower_id !== p.followee_id, 'new follow', d)
        need(users.has(p.followee_id), 'followee exists', d)
        follows.add(edge)
        followers.set(p.followee_id, (followers.get(p.followee_id) ?? 0) + 1)
        need(followers.get(p.followee_id) === p.followee_follower_count, 'follower count', d)
        break
      }
      case 'payment.subscription.upgraded':
      case 'payment.subscription.downgraded': {
        need(tiers.get(p.user_id) === p.previous_tier, 'previous tier is the current one', d)
        const order = ['free', 'pro', 'team', 'enterprise']
        const up = order.indexOf(p.new_tier) > order.indexOf(p.previous_tier)
        need(up === (d.type.endsWith('upgraded')), 'direction', d)
        tiers.set(p.user_id, p.new_tier)
        break
      }
      case 'payment.subscription.cancelled':
        need(tiers.get(p.user_id) === p.previous_tier && p.previous_tier !== 'free', 'cancel a paid tier', d)
        tiers.set(p.user_id, 'free')
        break
    }
  }
  return {users, questions, follows}
}

describe('journeys', () => {
  it('emit events in causal order that reference real ids', () => {
    const {drafts} = generate(11, 6000)
    expect(drafts).toHaveLength(6000)
    const {users, questions} = checkCausal(drafts)
    expect(users.size).toBeGreaterThan(50)
    expect([...questions.values()].some((q) => q.accepted)).toBe(true)
    const types = new Set(drafts.map((d) => d.type))
    for (const t of ['user.registered', 'user.authenticated', 'user.email.verified', 'user.profile.updated', 'social.user.followed', 'knowledge.question.posted', 'knowledge.answer.submitted', 'knowledge.answer.accepted', 'social.content.liked', 'social.comment.added', 'social.content.upvoted', 'knowledge.insight.published', 'knowledge.discussion.started', 'knowledge.resource.shared', 'payment.subscription.upgraded', 'payment.subscription.downgraded', 'payment.subscription.cancelled', 'realtime.user.joined', 'knowledge.area.created']) {
      expect(types, t).toContain(t)
    }
  })

  it('stays causal once the population is full (register falls back)', () => {
    const {drafts, journeys} = generate(5, 3000, all, 20)
    checkCausal(drafts)
    expect(journeys.population.registered).toBe(20)
  })

  it('same seed -> same events; another seed or no seed -> different ones', () => {
    const a = generate(99, 500).drafts
    const b = generate(99, 500).drafts
    expect(b).toEqual(a)
    expect(a.every((d) => d.eventId !== null && UUID_V4.test(d.eventId))).toBe(true)
    expect(generate(100, 500).drafts).not.toEqual(a)
    const u1 = generate(null, 50).drafts
    const u2 = generate(null, 50).drafts
    expect(u1[0].payload.user_id).not.toBe(u2[0].payload.user_id)
    expect(u1.every((d) => d.eventId === null)).toBe(true)
  })

  it('authenticate takes its day from the simulation clock', () => {
    const {drafts} = generate(3, 2000, {...Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 0])), register: 1, authenticate: 5} as Record<JourneyStep, number>)
    const days = new Set(drafts.filter((d) => d.type === 'user.authenticated').map((d) => d.payload.day))
    expect(days.size).toBeGreaterThan(10) // 2000 steps at 1/100 day each
  })

  it('correlates a user journey: every event of a user shares one correlation id', () => {
    const {drafts} = generate(4, 1000)
    const byUser = new Map<string, Set<string>>()
    for (const d of drafts) {
      if (d.type === 'user.authenticated' || d.type === 'user.registered') {
        const set = byUser.get(d.payload.user_id as string) ?? new Set()
        set.add(d.correlationId)
        byUser.set(d.payload.user_id as string, set)
      }
    }
    for (const set of byUser.values()) expect(set.size).toBe(1)
  })
})

describe('population', () => {
  it('derives distinct uuid v4 user ids without storing them', () => {
    const p = new Population({users: 50_000, areas: 1, random: createRandom(1)})
    const ids = new Set<string>()
    for (let i = 0; i < 50_000; i++) ids.add(p.userId(i))
    expect(ids.size).toBe(50_000)
    expect([...ids].every((id) => UUID_V4.test(id))).toBe(true)
  })

  it('never repeats a follow (a permutation of earlier users)', () => {
    const p = new Population({users: 100, areas: 1, random: createRandom(2)})
    p.registered = 100
    const seen = new Set<number>()
    for (;;) {
      const f = p.nextFollowee(60)
      if (f === undefined) break
      expect(f).toBeLessThan(60)
      seen.add(f)
      p.following[60]++
    }
    expect(seen.size).toBe(60)
  })

  it('rings keep only the newest items (bounded memory)', () => {
    const ring = new Ring<number>(10)
    for (let i = 0; i < 1000; i++) ring.push(i)
    expect(ring.size).toBe(10)
    const r = createRandom(1)
    for (let i = 0; i < 50; i++) expect(ring.pick(r)!).toBeGreaterThanOrEqual(990)
  })
})
