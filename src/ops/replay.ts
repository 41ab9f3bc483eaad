/**
 * Replay: events from the store, chosen by type, time, aggregate or correlation id, sent again to
 * one consumer group or several, onto each group's own topic (engine/direct.ts) so that no other
 * group sees them. Replayed events are handled whatever the group's records say it has handled,
 * but an event the group completed applies none of its guarded writes and emits none of its
 * derived events again: they committed with its ledger record (a document's own guard remembers
 * its last 256 events only). `fromScratch` drops the
 * group's projections (and, for gamification, the leaderboards) first and replays every event it
 * consumes, in store order, with the archived events merged in by time: the group's state is
 * rebuilt from the log. It does so only once the
 * groups are quiet (untilQuiet), as Kafka's reset tools wait for an inactive group.
 */
import type {Catalog} from '../catalog/types.js'
import {pause, pauseUntil} from '../core/pause.js'
import type {EventEnvelope} from '../core/envelope.js'
import {withArchived} from '../core/merged-log.js'
import type {EventQuery} from '../core/ports.js'
import type {Runtime} from '../core/runtime.js'
import {directMessage, directTopicSpec, REPLAY_AGAIN, REPLAY_HEADER, REPLAY_REBUILD} from '../engine/direct.js'
import {UserError} from '../errors.js'

export interface ReplayGroup {
  name: string
  /** Whether the group consumes events of this type (its subscription). */
  accepts(type: string): boolean
  /** Its projection collections, and whether it owns the leaderboards (dropped by fromScratch). */
  collections: readonly string[]
  leaderboards?: boolean
}

export interface ReplayOptions {
  runtime: Pick<Runtime, 'bus' | 'store' | 'leaderboards'>
  catalog: Catalog
  groups: readonly ReplayGroup[]
  query: EventQuery
  fromScratch?: boolean
  dryRun?: boolean
  /** Events read from the store a second (none = as fast as the bus takes them). */
  ratePerSec?: number
  signal?: AbortSignal
  onProgress?: (progress: {read: number; sent: number}) => void
  /**
   * fromScratch: the events archived out of the store (`tektree archive run`). The state being
   * rebuilt held their effects, so they are replayed too, merged in by time as verify reads them;
   * a replay of chosen events reads the store alone (an archived event's ledger record went with it).
   */
  archived?: AsyncIterable<EventEnvelope>
  /** fromScratch: how long to wait for the groups to go quiet, and how far apart to look. */
  quiet?: {timeoutMs?: number; intervalMs?: number; onWait?: (state: Quiet) => void}
}

export interface ReplayResult {
  /** Events read from the store (and the archive) that matched. */
  read: number
  /** Of those, read from the archive (fromScratch). */
  archived: number
  /** Messages sent, and per group. */
  sent: number
  byGroup: Record<string, number>
  dropped: {collections: string[]; boards: number}
  interrupted: boolean
}

const BATCH = 500

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const {runtime, catalog, groups, signal} = options
  const byGroup: Record<string, number> = Object.fromEntries(groups.map((g) => [g.name, 0]))
  const dropped = {collections: [] as string[], boards: 0}
  if (options.fromScratch && !options.dryRun) {
    const state = await untilQuiet(runtime, groups.map((g) => g.name), {...options.quiet, signal})
    if (signal?.aborted) return {read: 0, archived: 0, sent: 0, byGroup, dropped, interrupted: true}
    if (!state.quiet) throw busyError(state)
    await dropState(runtime, groups, dropped)
  }
  if (!options.dryRun) await runtime.bus.ensureTopics(groups.map((g) => directTopicSpec(g.name)))
  const rate = options.ratePerSec && options.ratePerSec > 0 ? options.ratePerSec : null
  const started = Date.now()
  let read = 0
  let fromArchive = 0
  let sent = 0
  let batch: ReturnType<typeof directMessage>[] = []
  const flush = async () => {
    if (batch.length === 0) return
    if (!options.dryRun) await runtime.bus.publish(batch)
    sent += batch.length
    batch = []
    options.onProgress?.({read, sent})
  }
  const query: EventQuery = options.fromScratch ? {order: 'asc'} : {...options.query, order: 'asc'}
  const done = (interrupted: boolean): ReplayResult => ({read, archived: fromArchive, sent, byGroup, dropped, interrupted})
  for await (const {event, archived} of withArchived(runtime.store.events.query(query), options.fromScratch ? options.archived : undefined)) {
    if (signal?.aborted) return done(true)
    read++
    if (archived) fromArchive++
    for (const group of targets(groups, event)) {
      byGroup[group.name]++
      batch.push(directMessage(catalog, group.name, event, {[REPLAY_HEADER]: options.fromScratch ? REPLAY_REBUILD : REPLAY_AGAIN}))
    }
    if (batch.length >= BATCH || (rate !== null && read % Math.max(1, Math.floor(rate / 10)) === 0)) {
      await flush()
      if (rate !== null && !(await pauseUntil(started + (read / rate) * 1000, signal))) return done(true)
    }
  }
  await flush()
  return done(false)
}

function targets(groups: readonly ReplayGroup[], event: EventEnvelope): ReplayGroup[] {
  return groups.filter((g) => g.accepts(event.event_type))
}

/** The groups' projections, their sequence guards and (gamification) the leaderboards. */
async function dropState(runtime: ReplayOptions['runtime'], groups: readonly ReplayGroup[], dropped: ReplayResult['dropped']): Promise<void> {
  for (const group of groups) {
    for (const collection of [...group.collections, `seq_${group.name}`]) {
      await runtime.store.projections.drop(collection)
      dropped.collections.push(collection)
    }
    if (group.leaderboards) {
      for (const board of await runtime.leaderboards.boards()) {
        await runtime.leaderboards.drop(board)
        dropped.boards++
      }
    }
  }
}

/** A group still taking events: its backlog now, and what reached it between the last two looks. */
export interface BusyGroup {
  group: string
  backlog: number
  /** null where the bus cannot tell (no acked count). */
  arrived: number | null
}

export interface Quiet {
  quiet: boolean
  busy: BusyGroup[]
  /** Events appended and not yet on the bus: any group may be about to get them. */
  outbox: number
  intervalMs: number
}

interface Reading {
  groups: Map<string, {backlog: number; seen: number | null}>
  outbox: number
}

async function readGroups(runtime: Pick<Runtime, 'bus' | 'store'>, names: ReadonlySet<string>): Promise<Reading> {
  const groups = new Map<string, {backlog: number; seen: number | null}>()
  for (const stats of await runtime.bus.stats()) {
    if (!names.has(stats.group)) continue
    const known = groups.get(stats.group) ?? {backlog: 0, seen: 0}
    known.backlog += stats.lag + stats.pending
    // Everything the group has seen or will see: its growth between looks is what arrived.
    known.seen = known.seen === null || stats.acked === null ? null : known.seen + stats.acked + stats.lag + stats.pending
    groups.set(stats.group, known)
  }
  return {groups, outbox: await runtime.store.outbox.pending()}
}

/**
 * Waits, up to `timeoutMs`, until the groups take nothing: no backlog on any of their topics,
 * nothing new over one interval, an empty outbox. A rebuild drops their state and hands them the
 * log again; events handled live meanwhile are not ordered against the replayed ones (a streak
 * counted on the wrong day), and a replayed copy that comes more than 256 writes after its live
 * copy passes the documents' guards and counts twice. A backlog that drains (reconcile's
 * republished events) is waited for; a load that keeps arriving is what the answer names.
 */
export async function untilQuiet(
  runtime: Pick<Runtime, 'bus' | 'store'>,
  groups: readonly string[],
  options: {timeoutMs?: number; intervalMs?: number; signal?: AbortSignal; onWait?: (state: Quiet) => void} = {},
): Promise<Quiet> {
  const intervalMs = options.intervalMs ?? 1_000
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  const names = new Set(groups)
  let before = await readGroups(runtime, names)
  for (;;) {
    const slept = await pause(intervalMs, options.signal)
    const now = await readGroups(runtime, names)
    const busy: BusyGroup[] = []
    for (const [group, {backlog, seen}] of now.groups) {
      // A group first seen in this look has no count to compare: its backlog speaks for it.
      const earlier = before.groups.get(group)?.seen ?? null
      const arrived = seen === null || earlier === null ? null : Math.max(0, seen - earlier)
      if (backlog > 0 || (arrived ?? 0) > 0) busy.push({group, backlog, arrived})
    }
    const state = {quiet: busy.length === 0 && now.outbox === 0, busy, outbox: now.outbox, intervalMs}
    if (state.quiet || !slept || Date.now() >= deadline) return state
    options.onWait?.(state)
    before = now
  }
}

/** What is busy, in words: "gamification (backlog 224, 130 arrived in the last 1 s)". */
export function describeBusy(state: Quiet): string {
  const seconds = `${state.intervalMs / 1000} s`
  const parts = state.busy.map((b) => `${b.group} (backlog ${b.backlog}${b.arrived ? `, ${b.arrived} arrived in the last ${seconds}` : ''})`)
  if (state.outbox > 0) parts.push(`${state.outbox} event(s) in the outbox, not yet on the bus`)
  return parts.join('; ')
}

function busyError(state: Quiet): UserError {
  return new UserError(`Not rebuilt, events still coming: ${describeBusy(state)}`, {
    code: 'GROUP_BUSY',
    hint: 'A rebuild beside live events would apply them out of order, and some twice. Stop the load (simulate, publish, demo), let the backlog drain (tektree lag), then run this again. Nothing was dropped.',
    details: {busy: state.busy, outbox: state.outbox},
  })
}
