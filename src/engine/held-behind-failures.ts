/**
 * Keys whose events' commit failed (the store locked or down past its timeout). Those events come
 * back from the bus, and until they are committed a later event of the same key must not be, or it
 * would overtake them and the sequence guard would then take them for stale (their effects lost).
 * The consumer runner leaves the later ones unacked; once every failed event of their key is
 * committed it hands them back to the bus (cleared()), so they come again at once rather than after
 * their visibility timeout. Bounded in time: a key is held for `holdMs` after its last failure
 * here, so an event that never comes back (its partition moved) does not hold it up for ever.
 */
export class HeldBehindFailures<T> {
  /** Per key: the events whose commit failed, and when one last did. */
  private readonly failed = new Map<string, {ids: Set<string>; since: number; behind: T[]}>()
  /** Held behind events that are all committed now: to be handed back to the bus. */
  private released: T[] = []

  constructor(
    private readonly keyOf: (completion: T) => string,
    private readonly holdMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The segments that may be committed now, in order: those of no failed key, a failed event once
   *  every event of its key that failed before it is among those before it, and what follows them
   *  once every failed event of its key is. */
  ready<S extends {eventId: string; completion: T}>(segments: readonly S[]): S[] {
    if (this.failed.size === 0) return [...segments]
    const out: S[] = []
    const redone = new Map<string, Set<string>>()
    for (const segment of segments) {
      const key = this.keyOf(segment.completion)
      const entry = this.live(key)
      if (!entry) {
        out.push(segment)
        continue
      }
      let done = redone.get(key)
      if (!done) redone.set(key, (done = new Set()))
      const ids = [...entry.ids] // in the order they failed, which is the key's order
      const at = ids.indexOf(segment.eventId)
      if (at >= 0) {
        if (ids.slice(0, at).every((id) => done!.has(id))) {
          done.add(segment.eventId)
          out.push(segment)
        }
      } else if (ids.every((id) => done!.has(id))) out.push(segment)
    }
    return out
  }

  /** After a commit of `tried`: what went in clears its key, what did not holds it. */
  settle<S extends {eventId: string; completion: T}>(tried: readonly S[], committed: readonly S[]): void {
    const inStore = new Set(committed)
    for (const segment of tried) {
      const key = this.keyOf(segment.completion)
      if (inStore.has(segment)) this.forget(key, segment.eventId)
      else {
        // Each failure renews the hold: a key stays held while its events keep failing here.
        const entry = this.live(key) ?? {ids: new Set<string>(), since: 0, behind: []}
        entry.ids.add(segment.eventId)
        entry.since = this.now()
        this.failed.set(key, entry)
      }
    }
  }

  /**
   * `completion` was left out by ready(): handed back once its key is clear (cleared()), at once if
   * it is already (what it waited for went in with it, in the same unit, after it).
   */
  heldBack(completion: T): void {
    const entry = this.live(this.keyOf(completion))
    if (entry) entry.behind.push(completion)
    else this.released.push(completion)
  }

  /** The event is done with here (committed, dead-lettered, or found completed). */
  forget(key: string, eventId: string): void {
    const entry = this.failed.get(key)
    if (!entry) return
    entry.ids.delete(eventId)
    if (entry.ids.size > 0) return
    this.failed.delete(key)
    for (const completion of entry.behind) this.released.push(completion)
  }

  /** What was held back behind keys that are clear now (each once). */
  cleared(): T[] {
    const out = this.released
    this.released = []
    return out
  }

  private live(key: string) {
    const entry = this.failed.get(key)
    if (entry && this.now() - entry.since > this.holdMs) {
      this.failed.delete(key)
      return undefined
    }
    return entry
  }
}
