/**
 * In-process leaderboards: per board, a map of scores plus an array kept sorted by
 * (score desc, member asc), so top(n) is a slice and rank() a binary search. An increment moves one
 * entry (binary search + splice, a memmove): fine for 100k members.
 */
import type {LeaderboardEntry, Leaderboards} from '../../core/ports.js'

interface Entry {
  member: string
  score: number
}

interface Board {
  scores: Map<string, Entry>
  sorted: Entry[]
  /** `${member}\0${eventId}` already applied (the guard is per board and member). */
  applied: Set<string>
}

/** Negative when a ranks before b. */
function order(a: Entry, b: Entry): number {
  if (a.score !== b.score) return b.score - a.score
  return a.member < b.member ? -1 : a.member > b.member ? 1 : 0
}

/** Index of the first entry that does not rank before `probe`. */
function lowerBound(sorted: Entry[], probe: Entry): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (order(sorted[mid], probe) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class MemoryLeaderboards implements Leaderboards {
  readonly kind = 'memory'
  private readonly boardsByName = new Map<string, Board>()
  private closed = false

  async incrementOnce(board: string, member: string, delta: number, eventId: string): Promise<number | null> {
    this.check()
    let b = this.boardsByName.get(board)
    if (!b) {
      b = {scores: new Map(), sorted: [], applied: new Set()}
      this.boardsByName.set(board, b)
    }
    const guard = `${member}\u0000${eventId}`
    if (b.applied.has(guard)) return null
    b.applied.add(guard)
    let entry = b.scores.get(member)
    if (entry) {
      b.sorted.splice(lowerBound(b.sorted, entry), 1)
      entry.score += delta
    } else {
      entry = {member, score: delta}
      b.scores.set(member, entry)
    }
    b.sorted.splice(lowerBound(b.sorted, entry), 0, entry)
    return entry.score
  }

  async top(board: string, n: number): Promise<LeaderboardEntry[]> {
    this.check()
    const b = this.boardsByName.get(board)
    if (!b || n <= 0) return []
    return b.sorted.slice(0, n).map((e, i) => ({member: e.member, score: e.score, rank: i + 1}))
  }

  async score(board: string, member: string): Promise<number | null> {
    this.check()
    return this.boardsByName.get(board)?.scores.get(member)?.score ?? null
  }

  async rank(board: string, member: string): Promise<number | null> {
    this.check()
    const b = this.boardsByName.get(board)
    const entry = b?.scores.get(member)
    return b && entry ? lowerBound(b.sorted, entry) + 1 : null
  }

  async boards(): Promise<string[]> {
    this.check()
    return [...this.boardsByName].filter(([, b]) => b.sorted.length > 0).map(([name]) => name)
  }

  async drop(board: string): Promise<void> {
    this.check()
    this.boardsByName.delete(board)
  }

  async close(): Promise<void> {
    this.closed = true
  }

  private check(): void {
    if (this.closed) throw new Error('The in-process leaderboards are closed')
  }
}
