import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags} from '../cli/base.js'
import {createStyle, wrap} from '../cli/style.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {Runtime} from '../core/runtime.js'
import type {VerifyResult} from '../services/verify.js'

export default class Verify extends BaseCommand<typeof Verify> {
  static override summary = 'Recompute every projection from the event log and report each difference from the live state.'
  static override description = `The oracle: reads the event log (the store), recomputes what the services' projections should hold - XP, levels, achievements, quests, streaks, leaderboards, subscription tiers, quota use, notification feeds, search index, cache invalidations, daily active users, badges, mails - and compares them with the live projections and leaderboards. It also checks that each threshold event (level.up, achievement.unlocked, quest.completed, subscription.created) is in the log exactly once.

It shares no code with the handlers, only their rules. Events archived out of the store (\`tektree archive run\`) left their effects in the projections: the oracle reads them from the archive folder too (the data dir's, when it holds one; --archive DIR for another, --ignore-archive for the store alone). Events a service dead-lettered count for no projection of that service: they took no effect there and stay in the dead-letter queue. Run it after the services have drained.

Exit codes: 0 no difference, 1 differences found.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --bus-url redis://127.0.0.1:6379 --store-url mongodb://127.0.0.1:27017/tektree',
  ]
  static override flags = {
    show: Flags.integer({summary: 'Most differences to list (all are counted).', default: 20, min: 0}),
    archive: Flags.string({summary: 'Count the events archived in this folder too. Default: the data dir\'s archive, when there is one.', env: 'TEKTREE_ARCHIVE_DIR', exclusive: ['ignore-archive']}),
    'ignore-archive': Flags.boolean({summary: 'Read the store alone (archived events\' effects then show as differences).', default: false}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<VerifyResult> {
    const [{loadCatalog}, {verifyProjections}] = await Promise.all([import('../catalog/load.js'), import('../services/verify.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntimeFromFlags(this.flags)
    let result: VerifyResult & {in_flight?: number | null}
    try {
      result = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog, archived: await this.archived()})
      // Differences while the services still have events to handle are mostly those events.
      if (result.differences.length > 0) result = {...result, in_flight: await inFlight(runtime)}
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) this.render(result)
    if (result.in_flight) {
      process.stderr.write(`${result.in_flight.toLocaleString('en-US')} event(s) are still in flight (not yet handled, or not yet on the bus): the services have not caught up, and the differences may be theirs. Run verify again once \`tektree lag\` shows 0.\n`)
    }
    if (result.differences.length > 0) process.exitCode = 1
    return result
  }

  /** The archive's events, when there is an archive to read. */
  private async archived(): Promise<AsyncIterable<EventEnvelope> | undefined> {
    if (this.flags['ignore-archive']) return undefined
    const {archivedEvents} = await import('../cli/archive-flags.js')
    return archivedEvents(this.flags.archive)
  }

  private render(result: VerifyResult): void {
    const style = createStyle()
    const rows = Object.entries(result.projections ?? {})
      .sort()
      .map(([name, p]) => [name, String(p.checked), p.differences > 0 ? style.bad(String(p.differences)) : String(p.differences)])
    this.log(style.fitTable(['projection', 'values checked', 'differences'], rows, {compact: true}))
    const count = result.differences.length
    const n = (value: number) => value.toLocaleString('en-US')
    const archived = result.archived ? ` (${n(result.archived)} from the archive)` : ''
    this.log(`${n(result.events ?? 0)} events read${archived}, ${n(result.checked)} values checked, ${count > 0 ? style.bad(`${count} difference(s)`) : style.ok('0 differences')}`)
    const shown = result.differences.slice(0, this.flags.show)
    if (shown.length > 0) {
      const diff = shown.map((d) => [d.projection, d.id, d.field, JSON.stringify(d.expected), JSON.stringify(d.actual)])
      this.log(style.fitTable(['projection', 'id', 'field', 'expected', 'actual'], diff))
      if (count > shown.length) for (const line of wrap(`... and ${count - shown.length} more (--show N, or --json for all)`, style.width)) this.log(line)
    }
  }
}

/** Events the groups have yet to handle, and events not yet on the bus; null when the bus does not answer. */
async function inFlight(runtime: Pick<Runtime, 'bus' | 'store'>): Promise<number | null> {
  try {
    const groups = await runtime.bus.stats()
    return groups.reduce((sum, g) => sum + g.lag + g.pending, 0) + (await runtime.store.outbox.pending())
  } catch {
    return null
  }
}
