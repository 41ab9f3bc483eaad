/**
 * Leaderboards kept in the store's projections, for a bus without sorted sets (Kafka): one
 * collection per board (`tektree.leaderboard:<board>`), one document per member ({member, score}),
 * and the board's name in `tektree.leaderboards` so that boards() can list them. Every process that
 * opens the store sees the same boards, as every process on one redis-server sees its sorted sets.
 *
 * incrementOnce is the store's applyOnce: the guard and the change are one atomic document write,
 * so a redelivered event never scores twice. The guard remembers a member's last 256 events on a
 * board (the store's window), where Redis keeps its guard keys for their TTL. A consumer scores
 * through within(): its unit of work's view, so its increments commit with the unit and the
 * group's ledger, exactly once (RELIABILITY.md finding 22: outside the unit, a refused unit's
 * increment stayed, and a busy member's guard had forgotten it when the event came again).
 * top() and rank() sort the board in this process (score descending, then member): fine for
 * tektree's boards (thousands of members), not for millions.
 */
import type {LeaderboardEntry, Leaderboards, ProjectionDoc, ProjectionStore} from '../../core/ports.js'

const BOARD_PREFIX = 'tektree.leaderboard:'
const INDEX = 'tektree.leaderboards'

interface MemberDoc {
  member: string
  score: number
}

function ordered(docs: readonly ProjectionDoc[]): MemberDoc[] {
  return docs
    .map((doc) => ({member: typeof doc.member === 'string' ? doc.member : doc._id, score: Number(doc.score ?? 0)}))
    .sort((a, b) => (a.score !== b.score ? b.score - a.score : a.member < b.member ? -1 : a.member > b.member ? 1 : 0))
}

export class StoreLeaderboards implements Leaderboards {
  readonly kind = 'store'
  private closed = false

  constructor(private readonly projections: ProjectionStore) {}

  private collection(board: string): string {
    return `${BOARD_PREFIX}${board}`
  }

  within(projections: ProjectionStore): StoreLeaderboards {
    return new StoreLeaderboards(projections)
  }

  async incrementOnce(board: string, member: string, delta: number, eventId: string): Promise<number | null> {
    this.check()
    const applied = await this.projections.applyOnce(this.collection(board), member, eventId, {$inc: {score: delta}, $set: {member}})
    if (!applied) return null
    await this.projections.update(INDEX, board, {$set: {board}})
    const doc = await this.projections.get(this.collection(board), member)
    return Number(doc?.score ?? delta)
  }

  async top(board: string, n: number): Promise<LeaderboardEntry[]> {
    this.check()
    if (n <= 0) return []
    return ordered(await this.projections.find(this.collection(board)))
      .slice(0, n)
      .map((e, i) => ({member: e.member, score: e.score, rank: i + 1}))
  }

  async score(board: string, member: string): Promise<number | null> {
    this.check()
    const doc = await this.projections.get(this.collection(board), member)
    return doc ? Number(doc.score ?? 0) : null
  }

  async rank(board: string, member: string): Promise<number | null> {
    this.check()
    const index = ordered(await this.projections.find(this.collection(board))).findIndex((e) => e.member === member)
    return index === -1 ? null : index + 1
  }

  async boards(): Promise<string[]> {
    this.check()
    const out: string[] = []
    for (const doc of await this.projections.find(INDEX)) {
      if ((await this.projections.count(this.collection(doc._id))) > 0) out.push(doc._id)
    }
    return out
  }

  async drop(board: string): Promise<void> {
    this.check()
    // The documents carry their applyOnce guards: dropping them forgets the guards too.
    await this.projections.drop(this.collection(board))
  }

  /** The store is the runtime's: closing the leaderboards leaves it open. */
  async close(): Promise<void> {
    this.closed = true
  }

  private check(): void {
    if (this.closed) throw new Error('The leaderboards are closed')
  }
}

export function createStoreLeaderboards(projections: ProjectionStore): StoreLeaderboards {
  return new StoreLeaderboards(projections)
}
