/**
 * The synthetic population: users, knowledge areas and recent content, with just enough state that
 * every generated event references real ids (answers name the real question author, follows carry
 * the real follower count, upgrades start from the user's current tier).
 *
 * Memory stays bounded however large the population: per user only fixed-size numbers live in typed
 * arrays, user ids are derived from the index (a keyed bijective mix, so they are unique and need no
 * storage), and content is kept in fixed-capacity rings of recent items.
 */
import {createHash} from 'node:crypto'
import {mix32, type Random, uuidFromWords} from './random.js'

export const TIERS = ['free', 'pro', 'team', 'enterprise'] as const
export type Tier = (typeof TIERS)[number]

export type ContentType = 'question' | 'answer' | 'insight' | 'discussion' | 'resource' | 'comment'

export interface ContentRef {
  id: string
  type: ContentType
  author: number
  areaId: string
}

export interface CommentRef {
  id: string
  author: number
  content: ContentRef
}

export interface QuestionRef {
  id: string
  author: number
  areaId: string
  answers: Array<{id: string; author: number}>
  accepted: boolean
}

export interface AreaRef {
  id: string
  slug: string
}

/** A fixed-capacity ring: the newest `capacity` items, random access for picking. */
export class Ring<T> {
  private readonly items: T[] = []
  private next = 0
  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item)
    else this.items[this.next] = item
    this.next = (this.next + 1) % this.capacity
  }

  get size(): number {
    return this.items.length
  }

  pick(random: Random): T | undefined {
    return this.items.length === 0 ? undefined : this.items[random.int(this.items.length)]
  }

  /** Tries a few random items for one matching `test`. */
  find(random: Random, test: (item: T) => boolean, tries = 12): T | undefined {
    for (let i = 0; i < tries && this.items.length > 0; i++) {
      const item = this.items[random.int(this.items.length)]
      if (test(item)) return item
    }
    return undefined
  }
}

export interface PopulationOptions {
  users: number
  areas: number
  /** Key for derived ids (from the seeded PRNG, or crypto when unseeded). */
  random: Random
  /** Capacity of each recent-content ring. */
  recent?: number
}

export class Population {
  readonly maxUsers: number
  readonly maxAreas: number
  registered = 0
  readonly tier: Uint8Array
  readonly verified: Uint8Array
  readonly followers: Uint32Array
  readonly following: Uint32Array
  /** Bumped when a subscription ends, so the next one gets a new id. */
  readonly subscriptionGen: Uint16Array
  /** Users on a paid tier (swap-remove list + index), for downgrade/cancel. */
  private readonly paid: Int32Array
  private readonly paidIndex: Int32Array
  private paidCount = 0
  /** Next user to consider for email verification (users verify roughly in signup order). */
  verifyCursor = 0
  readonly areas: AreaRef[] = []
  readonly content: Ring<ContentRef>
  readonly questions: Ring<QuestionRef>
  readonly comments: Ring<CommentRef>
  private readonly key: [number, number, number, number]

  constructor(options: PopulationOptions) {
    this.maxUsers = options.users
    this.maxAreas = options.areas
    const n = options.users
    this.tier = new Uint8Array(n)
    this.verified = new Uint8Array(n)
    this.followers = new Uint32Array(n)
    this.following = new Uint32Array(n)
    this.subscriptionGen = new Uint16Array(n)
    this.paid = new Int32Array(n)
    this.paidIndex = new Int32Array(n).fill(-1)
    const recent = options.recent ?? 5000
    this.content = new Ring(recent)
    this.questions = new Ring(recent)
    this.comments = new Ring(recent)
    const r = options.random
    this.key = [r.int(0x1_0000_0000), r.int(0x1_0000_0000), r.int(0x1_0000_0000), r.int(0x1_0000_0000)]
  }

  /**
   * A UUID v4 derived from (kind, index, generation). The first word is a bijection of the index, so
   * two users never share an id.
   */
  derivedId(kind: number, index: number, generation = 0): string {
    const [k0, k1, k2, k3] = this.key
    return uuidFromWords(
      mix32((index ^ k0) >>> 0) ^ mix32(kind * 0x9e3779b1 + generation),
      mix32(index + k1 + kind * 0x85ebca6b),
      mix32((index * 0x27d4eb2d) ^ k2 ^ generation),
      mix32(index ^ k3 ^ (kind << 16)),
    )
  }

  userId(index: number): string {
    return this.derivedId(1, index)
  }

  /** The correlation id of a user's journey. */
  journeyId(index: number): string {
    return this.derivedId(2, index)
  }

  subscriptionId(index: number): string {
    return this.derivedId(3, index, this.subscriptionGen[index])
  }

  email(index: number): string {
    return `user${index}.${this.key[0].toString(36)}@example.test`
  }

  emailHash(index: number): string {
    return 'sha256:' + createHash('sha256').update(this.email(index)).digest('hex')
  }

  tierOf(index: number): Tier {
    return TIERS[this.tier[index]]
  }

  setTier(index: number, tier: Tier): void {
    const value = TIERS.indexOf(tier)
    this.tier[index] = value
    const listed = this.paidIndex[index] >= 0
    if (value > 0 && !listed) {
      this.paid[this.paidCount] = index
      this.paidIndex[index] = this.paidCount++
    } else if (value === 0 && listed) {
      const at = this.paidIndex[index]
      const last = this.paid[--this.paidCount]
      this.paid[at] = last
      this.paidIndex[last] = at
      this.paidIndex[index] = -1
    }
  }

  pickPaid(random: Random): number | undefined {
    return this.paidCount === 0 ? undefined : this.paid[random.int(this.paidCount)]
  }

  get paidUsers(): number {
    return this.paidCount
  }

  /** A registered user; earlier users are more active (a skew like real communities). */
  pickUser(random: Random): number | undefined {
    if (this.registered === 0) return undefined
    const r = random.next()
    return Math.min(this.registered - 1, Math.floor(this.registered * r * r))
  }

  /** A registered user other than `not`, uniformly. */
  pickOther(random: Random, not: number): number | undefined {
    if (this.registered < 2) return undefined
    const i = random.int(this.registered - 1)
    return i >= not ? i + 1 : i
  }

  /**
   * The user `follower` follows next: the k-th element of a per-user permutation of the users who
   * registered before it, so a follow is never repeated and never targets oneself.
   */
  nextFollowee(follower: number): number | undefined {
    const k = this.following[follower]
    const n = follower // candidates: users 0 .. follower-1
    if (k >= n) return undefined
    let step = 1_000_003 % n
    if (step === 0 || gcd(step, n) !== 1) step = 1
    const offset = mix32(follower ^ this.key[1]) % n
    return (offset + ((k * step) % n)) % n
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}
