/**
 * User journeys: each step is one thing a user does, emitted as a draft {type, payload} in causal
 * order (a user registers before anything else; an answer names a question that exists; only the
 * question's author accepts, once). The publisher turns drafts into envelopes.
 */
import {base, en, Faker} from '@faker-js/faker'
import {JOURNEY_STEPS, type JourneyStep} from './scenario.js'
import {type ContentRef, type ContentType, Population, type Tier, TIERS} from './population.js'
import {createRandom, type Random, runKey, runKeyedUuid, type RunKey, SeededEventIds, WeightedPicker} from './random.js'

export interface SimDraft {
  type: string
  payload: Record<string, unknown>
  /** The journey this event belongs to (the acting user's). */
  correlationId: string
  /** Deterministic under --seed (null: let the publisher choose). */
  eventId: string | null
  /** 32 hex; deterministic under --seed (null: let the publisher choose). */
  traceId?: string | null
}

/** What a generator gives the run loop: n drafts at a time. */
export interface DraftSource {
  next(n: number): SimDraft[]
  /** Steps taken, per journey step (or per event type for a foreign catalog). */
  counts(): Record<string, number>
}

const TAGS = ['typescript', 'rust', 'go', 'kubernetes', 'redis', 'mongodb', 'kafka', 'react', 'python', 'ml', 'security', 'testing', 'devops', 'sql', 'graphql']
const AREA_NAMES = ['Backend', 'Frontend', 'Data Engineering', 'Machine Learning', 'DevOps', 'Security', 'Mobile', 'Databases', 'Cloud', 'Testing', 'Architecture', 'Career']
const PROFILE_FIELDS = ['display_name', 'bio', 'avatar', 'expertise_areas'] as const

export interface JourneyOptions {
  users: number
  areas: number
  weights: Record<JourneyStep, number>
  seed: number | null
  /** Simulation time (the runtime clock: virtual under clock.speed). */
  now: () => number
  /** Ring capacity for recent content (memory bound). */
  recent?: number
  /**
   * This run's id, mixed into the seeded event and trace ids: the same seed makes the same users
   * and journeys in every run, but each run's events are new ones to a store that keeps the last
   * run's. Absent: the ids of the seed alone.
   */
  runId?: string | null
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

function slugify(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'area'
}

export class Journeys implements DraftSource {
  readonly population: Population
  private readonly random: Random
  private readonly faker: Faker
  private readonly picker: WeightedPicker<JourneyStep>
  private readonly now: () => number
  private readonly stepCounts: Record<string, number> = {}
  /** Under --seed, event ids come from the PRNG too (keyed by the run), so a run repeats exactly. */
  private readonly seeded: boolean
  private readonly runKey: RunKey | null
  private readonly eventIds: SeededEventIds

  constructor(options: JourneyOptions) {
    this.random = createRandom(options.seed)
    this.faker = new Faker({locale: [en, base]})
    // Unseeded faker picks its own seed: fine, ids do not come from faker.
    this.faker.seed(options.seed ?? this.random.int(0x7fffffff))
    this.population = new Population({users: options.users, areas: options.areas, random: this.random, recent: options.recent})
    this.picker = new WeightedPicker(options.weights)
    this.now = options.now
    this.seeded = options.seed !== null
    this.runKey = options.runId ? runKey(options.runId) : null
    this.eventIds = new SeededEventIds(this.runKey, 0)
    for (const step of JOURNEY_STEPS) this.stepCounts[step] = 0
  }

  counts(): Record<string, number> {
    return {...this.stepCounts}
  }

  next(n: number): SimDraft[] {
    const out: SimDraft[] = []
    while (out.length < n) out.push(...this.step())
    // A step makes one event today; keep exactly n even if a future step makes more.
    return out.length > n ? out.slice(0, n) : out
  }

  /** One step: the weighted choice, or a fallback when its preconditions do not hold yet. */
  step(): SimDraft[] {
    const p = this.population
    if (p.registered === 0) return this.run('register')!
    for (let tries = 0; tries < 6; tries++) {
      const drafts = this.run(this.picker.pick(this.random))
      if (drafts) return drafts
    }
    return this.run('register') ?? this.run('authenticate')!
  }

  /** Runs one named step; null when it cannot happen now (e.g. nothing to answer yet). */
  run(step: JourneyStep): SimDraft[] | null {
    const drafts = this.build(step)
    if (drafts) this.stepCounts[step]++
    return drafts
  }

  private draft(type: string, actor: number, payload: Record<string, unknown>): SimDraft {
    if (!this.seeded) return {type, payload, correlationId: this.population.journeyId(actor), eventId: null, traceId: null}
    const eventId = this.eventIds.next(this.random)
    return {type, payload, correlationId: this.population.journeyId(actor), eventId, traceId: runKeyedUuid(this.random, this.runKey, true).replace(/-/g, '')}
  }

  private title(kind: 'question' | 'other'): string {
    const phrase = this.faker.hacker.phrase().replace(/[.!]+$/, '')
    const text = kind === 'question' ? `How do I handle this: ${phrase.charAt(0).toLowerCase()}${phrase.slice(1)}?` : phrase
    return text.length > 200 ? text.slice(0, 199) : text.padEnd(10, '.')
  }

  private tags(): string[] {
    return this.faker.helpers.arrayElements(TAGS, {min: 1, max: 3})
  }

  private area(): {id: string} | undefined {
    const areas = this.population.areas
    return areas.length === 0 ? undefined : areas[this.random.int(areas.length)]
  }

  private addContent(ref: ContentRef): void {
    this.population.content.push(ref)
  }

  private build(step: JourneyStep): SimDraft[] | null {
    const p = this.population
    const r = this.random
    switch (step) {
      case 'register': {
        if (p.registered >= p.maxUsers) return null
        const i = p.registered++
        const base = this.faker.internet.username().toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 20)
        const username = `${base}_${i.toString(36)}`.replace(/^_+/, 'u_').slice(0, 32).padEnd(3, '0')
        const payload: Record<string, unknown> = {
          user_id: p.userId(i),
          username,
          email_hash: p.emailHash(i),
          signup_source: r.pick(['web', 'web', 'mobile', 'api'] as const),
          locale: r.pick(['en-US', 'en-GB', 'de-DE', 'fr-FR', 'es-ES', 'pt-BR']),
        }
        if (r.chance(0.2)) payload.referral_code = this.faker.string.alphanumeric({length: 8, casing: 'upper'})
        return [this.draft('user.registered', i, payload)]
      }
      case 'authenticate': {
        const u = p.pickUser(r)
        if (u === undefined) return null
        return [
          this.draft('user.authenticated', u, {
            user_id: p.userId(u),
            method: r.pick(['password', 'password', 'oauth', 'sso', 'magic_link'] as const),
            session_id: r.uuid(),
            day: isoDay(this.now()),
          }),
        ]
      }
      case 'verify_email': {
        // Users verify in signup order; about one in ten never does.
        while (p.verifyCursor < p.registered && (p.verified[p.verifyCursor] || r.chance(0.1))) p.verifyCursor++
        if (p.verifyCursor >= p.registered) return null
        const u = p.verifyCursor++
        p.verified[u] = 1
        return [this.draft('user.email.verified', u, {user_id: p.userId(u), email_hash: p.emailHash(u), verified_via: r.pick(['link', 'code'] as const)})]
      }
      case 'update_profile': {
        const u = p.pickUser(r)
        if (u === undefined) return null
        const fields = this.faker.helpers.arrayElements([...PROFILE_FIELDS], {min: 1, max: 3})
        const payload: Record<string, unknown> = {user_id: p.userId(u), changed_fields: fields}
        if (fields.includes('display_name')) payload.display_name = this.faker.person.fullName()
        if (fields.includes('bio')) payload.bio = this.faker.lorem.sentence()
        if (fields.includes('expertise_areas')) {
          if (p.areas.length === 0) payload.changed_fields = fields.filter((f) => f !== 'expertise_areas')
          else payload.expertise_area_ids = [...new Set([this.area()!.id, this.area()!.id])]
        }
        if ((payload.changed_fields as string[]).length === 0) payload.changed_fields = ['bio']
        if ((payload.changed_fields as string[]).includes('bio') && payload.bio === undefined) payload.bio = this.faker.lorem.sentence()
        return [this.draft('user.profile.updated', u, payload)]
      }
      case 'follow': {
        const u = p.pickOther(r, -1)
        if (u === undefined) return null
        const followee = p.nextFollowee(u)
        if (followee === undefined) return null
        p.following[u]++
        const count = ++p.followers[followee]
        return [this.draft('social.user.followed', u, {follower_id: p.userId(u), followee_id: p.userId(followee), followee_follower_count: count})]
      }
      case 'create_area': {
        if (p.areas.length >= p.maxAreas) return null
        const u = p.pickUser(r)
        if (u === undefined) return null
        const base = AREA_NAMES[p.areas.length % AREA_NAMES.length]
        const name = p.areas.length < AREA_NAMES.length ? base : `${base} ${Math.floor(p.areas.length / AREA_NAMES.length) + 1}`
        const parent = p.areas.length > 3 && r.chance(0.3) ? this.area()!.id : null
        const area = {id: r.uuid(), slug: slugify(name)}
        p.areas.push(area)
        return [this.draft('knowledge.area.created', u, {area_id: area.id, creator_id: p.userId(u), name, slug: area.slug, parent_area_id: parent})]
      }
      case 'ask': {
        const u = p.pickUser(r)
        const area = this.area()
        if (u === undefined) return null
        if (!area) return this.build('create_area')
        const id = r.uuid()
        p.questions.push({id, author: u, areaId: area.id, answers: [], accepted: false})
        this.addContent({id, type: 'question', author: u, areaId: area.id})
        return [this.draft('knowledge.question.posted', u, {question_id: id, author_id: p.userId(u), area_id: area.id, title: this.title('question'), tags: this.tags()})]
      }
      case 'answer': {
        const q = p.questions.find(r, (item) => !item.accepted && item.answers.length < 5)
        if (!q) return null
        const u = p.pickOther(r, q.author)
        if (u === undefined) return null
        const id = r.uuid()
        q.answers.push({id, author: u})
        this.addContent({id, type: 'answer', author: u, areaId: q.areaId})
        return [
          this.draft('knowledge.answer.submitted', u, {
            answer_id: id,
            question_id: q.id,
            question_author_id: p.userId(q.author),
            author_id: p.userId(u),
            area_id: q.areaId,
          }),
        ]
      }
      case 'accept': {
        const q = p.questions.find(r, (item) => !item.accepted && item.answers.length > 0)
        if (!q) return null
        q.accepted = true
        const answer = q.answers[r.int(q.answers.length)]
        return [
          this.draft('knowledge.answer.accepted', q.author, {
            answer_id: answer.id,
            question_id: q.id,
            question_author_id: p.userId(q.author),
            answer_author_id: p.userId(answer.author),
            area_id: q.areaId,
          }),
        ]
      }
      case 'like':
      case 'upvote': {
        const c = p.content.pick(r)
        if (!c) return null
        const u = p.pickOther(r, c.author)
        if (u === undefined) return null
        return [
          this.draft(step === 'like' ? 'social.content.liked' : 'social.content.upvoted', u, {
            content_id: c.id,
            content_type: c.type,
            content_author_id: p.userId(c.author),
            user_id: p.userId(u),
            area_id: c.areaId,
          }),
        ]
      }
      case 'comment': {
        // A third of comments reply to an earlier comment on the same content.
        const parent = r.chance(0.33) ? p.comments.pick(r) : undefined
        const content = parent ? parent.content : p.content.pick(r)
        if (!content) return null
        const u = p.pickUser(r)
        if (u === undefined) return null
        const id = r.uuid()
        p.comments.push({id, author: u, content})
        // Comments can be liked and upvoted themselves.
        this.addContent({id, type: 'comment', author: u, areaId: content.areaId})
        return [
          this.draft('social.comment.added', u, {
            comment_id: id,
            content_id: content.id,
            content_type: content.type,
            content_author_id: p.userId(content.author),
            author_id: p.userId(u),
            parent_comment_id: parent ? parent.id : null,
            parent_comment_author_id: parent ? p.userId(parent.author) : null,
          }),
        ]
      }
      case 'insight':
      case 'discussion':
      case 'resource': {
        const u = p.pickUser(r)
        const area = this.area()
        if (u === undefined) return null
        if (!area) return this.build('create_area')
        const id = r.uuid()
        const type: ContentType = step
        this.addContent({id, type, author: u, areaId: area.id})
        const common = {author_id: p.userId(u), area_id: area.id, title: this.title('other')}
        if (step === 'insight') return [this.draft('knowledge.insight.published', u, {insight_id: id, ...common, tags: this.tags()})]
        if (step === 'discussion') return [this.draft('knowledge.discussion.started', u, {discussion_id: id, ...common})]
        return [
          this.draft('knowledge.resource.shared', u, {
            resource_id: id,
            ...common,
            resource_type: r.pick(['article', 'video', 'tutorial', 'book', 'tool'] as const),
            url: `https://example.test/r/${id.slice(0, 8)}`,
          }),
        ]
      }
      case 'upgrade': {
        const u = p.pickUser(r)
        if (u === undefined) return null
        const from = p.tier[u]
        if (from >= TIERS.length - 1) return null
        const to = TIERS[from + 1 + r.int(TIERS.length - 1 - from)]
        const previous = p.tierOf(u)
        p.setTier(u, to)
        return [this.draft('payment.subscription.upgraded', u, {subscription_id: p.subscriptionId(u), user_id: p.userId(u), previous_tier: previous, new_tier: to})]
      }
      case 'downgrade': {
        const u = p.pickPaid(r)
        if (u === undefined) return null
        const from = p.tier[u]
        const to: Tier = TIERS[r.int(from)]
        const previous = p.tierOf(u)
        p.setTier(u, to)
        return [this.draft('payment.subscription.downgraded', u, {subscription_id: p.subscriptionId(u), user_id: p.userId(u), previous_tier: previous, new_tier: to})]
      }
      case 'cancel': {
        const u = p.pickPaid(r)
        if (u === undefined) return null
        const previous = p.tierOf(u)
        const draft = this.draft('payment.subscription.cancelled', u, {
          subscription_id: p.subscriptionId(u),
          user_id: p.userId(u),
          previous_tier: previous,
          reason: r.pick(['user_requested', 'user_requested', 'payment_failed'] as const),
        })
        p.setTier(u, 'free')
        p.subscriptionGen[u]++
        return [draft]
      }
      case 'join_realtime': {
        const u = p.pickUser(r)
        if (u === undefined) return null
        return [
          this.draft('realtime.user.joined', u, {
            user_id: p.userId(u),
            channel: r.pick(['/ws/notifications', '/ws/presence', '/ws/leaderboard'] as const),
            connection_id: r.uuid(),
          }),
        ]
      }
    }
  }
}

export function createJourneys(options: JourneyOptions): Journeys {
  return new Journeys(options)
}
