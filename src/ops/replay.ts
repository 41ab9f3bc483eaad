/**
 * Replay: events from the store, chosen by type, time, aggregate or correlation id, sent again to
 * one consumer group or several, onto each group's own topic (engine/direct.ts) so that no other
 * group sees them. Replayed events are handled whatever the group's records say it has handled;
 * the handlers' own guards still apply each event to a document once. `fromScratch` drops the
 * group's projections (and, for gamification, the leaderboards) first and replays every event it
 * consumes, in store order: the group's state is rebuilt from the log.
 */
import type {Catalog} from '../catalog/types.js'
import {pauseUntil} from '../core/pause.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {EventQuery} from '../core/ports.js'
import type {Runtime} from '../core/runtime.js'
import {directMessage, directTopicSpec, REPLAY_HEADER} from '../engine/direct.js'

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
}

export interface ReplayResult {
  /** Events read from the store that matched. */
  read: number
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
  if (options.fromScratch && !options.dryRun) await dropState(runtime, groups, dropped)
  if (!options.dryRun) await runtime.bus.ensureTopics(groups.map((g) => directTopicSpec(g.name)))
  const rate = options.ratePerSec && options.ratePerSec > 0 ? options.ratePerSec : null
  const started = Date.now()
  let read = 0
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
  for await (const event of runtime.store.events.query(query)) {
    if (signal?.aborted) return {read, sent, byGroup, dropped, interrupted: true}
    read++
    for (const group of targets(groups, event)) {
      byGroup[group.name]++
      batch.push(directMessage(catalog, group.name, event, {[REPLAY_HEADER]: '1'}))
    }
    if (batch.length >= BATCH || (rate !== null && read % Math.max(1, Math.floor(rate / 10)) === 0)) {
      await flush()
      if (rate !== null && !(await pauseUntil(started + (read / rate) * 1000, signal))) return {read, sent, byGroup, dropped, interrupted: true}
    }
  }
  await flush()
  return {read, sent, byGroup, dropped, interrupted: false}
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
