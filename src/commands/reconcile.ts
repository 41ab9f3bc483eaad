import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import type {ReconcileResult} from '../engine/reconcile.js'
import type {RuntimeDescription} from '../core/runtime.js'
import {parseDuration} from '../core/duration.js'

export default class Reconcile extends BaseCommand<typeof Reconcile> {
  static override summary = 'Republish the events the store marked published that the bus no longer holds.'
  static override description = `Compares every event the store marked published with the event ids the bus holds on the event's topic partition, and publishes the missing ones again (in append order, to the same partition; consumers dedupe by event_id, so nothing is applied twice). A bus that loses acknowledged writes (redis-server with AOF everysec loses up to its last second in a crash) leaves such events behind, and no consumer would ever see them.

Events published before the oldest entry their partition still retains were trimmed by retention, not lost, and are left alone. \`tektree up\` runs this whenever it (re)starts redis-server.

Exit codes: 0 nothing missing, or everything missing republished; 1 --dry-run found missing events; 2 a usage error.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --since 10m --json',
  ]
  static override flags = {
    'dry-run': Flags.boolean({summary: 'List what is missing; republish nothing.', default: false}),
    since: Flags.string({summary: 'Only events published within this long (e.g. 10m, 2h); default: all.'}),
    show: Flags.integer({summary: 'Most missing events to list (all are counted).', default: 20, min: 0}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<ReconcileResult> {
    let sinceMs: number | undefined
    if (this.flags.since !== undefined) {
      try {
        sinceMs = Date.now() - parseDuration(this.flags.since)
      } catch (error) {
        throw new UserError(`--since ${(error as Error).message}`, {code: 'INVALID_FLAG'})
      }
    }
    const [{loadCatalog}, {reconcile}] = await Promise.all([import('../catalog/load.js'), import('../engine/reconcile.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntimeFromFlags(this.flags)
    let result: ReconcileResult
    let boardsWithBus = false
    try {
      result = await reconcile({store: runtime.store, bus: runtime.bus, catalog, sinceMs, dryRun: this.flags['dry-run'], listLimit: Math.max(this.flags.show, 100)})
      boardsWithBus = leaderboardsOnBus(runtime.describe())
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) {
      for (const m of result.sample.slice(0, this.flags.show)) this.log(`missing ${m.event_type} ${m.event_id} (${m.topic}:p${m.partition}, published ${m.published_at})`)
      if (result.missing > this.flags.show && this.flags.show > 0) this.log(`... and ${result.missing - this.flags.show} more (--show N, or --json)`)
      this.log(summaryLine(result))
      if (result.missing > 0 && boardsWithBus) this.log(LEADERBOARDS_HINT)
    }
    if (result.missing > result.republished) process.exitCode = 1
    return result
  }
}

/**
 * The leaderboards live on the bus's server: what it lost, they lost too, and their events are
 * handled as far as the store's ledger knows, so republishing does not bring them back.
 */
export const LEADERBOARDS_HINT =
  'The leaderboards are on the same server and lost what it lost; rebuild them from the log: tektree replay --group gamification --from-scratch'

/** Whether LEADERBOARDS_HINT applies: the leaderboards are on the bus's server (Redis), not in the store (Kafka). */
export function leaderboardsOnBus(parts: RuntimeDescription): boolean {
  return parts.leaderboards.kind === parts.bus.kind && parts.leaderboards.location === parts.bus.location
}

export function summaryLine(r: ReconcileResult): string {
  const tail = [r.trimmed > 0 ? `${r.trimmed} older than what the bus retains` : '', r.skipped > 0 ? `${r.skipped} published meanwhile, left for next time` : '']
    .filter(Boolean)
    .join('; ')
  const verdict = r.missing === 0 ? 'none missing' : r.dryRun ? `${r.missing} MISSING (dry run: not republished)` : `${r.missing} missing, ${r.republished} republished`
  return `Reconciled ${r.checked} published event(s) with the bus: ${verdict}${tail ? ` (${tail})` : ''}.`
}
