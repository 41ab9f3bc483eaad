import {Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../../cli/base.js'
import {confirm} from '../../cli/confirm.js'
import {dlqFilterFlags, dlqFilterFrom, explainNoMatch} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import {printable} from '../../core/redact.js'
import type {DlqCause} from '../../ops/dlq.js'

export interface PurgeResult {
  dry_run: boolean
  matched: number
  removed: number
  causes: Array<Omit<DlqCause, 'ids'>>
}

export default class DlqPurge extends BaseCommand<typeof DlqPurge> {
  static override summary = 'Removes matching entries from the DLQ for good (after a confirmation).'
  static override description = `The events stay in the event store; only their DLQ entries go (export them first to keep a copy). Asks before removing anything; --yes skips the question (scripts), --dry-run shows what would go, by cause. Without a terminal to ask on, --yes is required.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --code VALIDATION_FAILED --dry-run',
    '<%= config.bin %> <%= command.id %> --group email --until 7d --yes',
  ]
  static override flags = {
    ...dlqFilterFlags,
    'dry-run': Flags.boolean({summary: 'Show what would be removed, by cause; remove nothing.', default: false}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.', default: false}),
    ...runtimeFlags,
  }

  public async run(): Promise<PurgeResult> {
    const filter = dlqFilterFrom(this.flags)
    const {listDlq, groupByCause} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      const records = await listDlq(runtime.store.dlq, filter)
      await explainNoMatch(runtime.store.dlq, filter, records)
      const causes = groupByCause(records)
      const summary = causes.map(({ids: _ids, ...cause}) => cause)
      const dryRun = this.flags['dry-run']
      if (!this.jsonEnabled()) {
        this.log(`${records.length} entr${records.length === 1 ? 'y' : 'ies'} match${records.length === 1 ? 'es' : ''}${dryRun ? ' (dry run: nothing removed)' : ''}`)
        for (const c of summary.slice(0, 20)) this.log(printable(`  ${String(c.count).padStart(6)}  ${c.group}  ${c.event_type ?? '(unparsed)'}  ${c.code}`).slice(0, 80))
      }
      if (dryRun || records.length === 0) return {dry_run: dryRun, matched: records.length, removed: 0, causes: summary}
      if (!this.flags.yes) {
        const n = `${records.length} entr${records.length === 1 ? 'y' : 'ies'}`
        await confirm(`Remove ${n} from the DLQ for good?`, {message: `Refusing to purge ${n} without confirmation`, hint: 'There is no terminal to ask on: add --yes (or --dry-run to see what would go).'})
      }
      const removed = await runtime.store.dlq.remove(records.map((r) => r.id))
      if (!this.jsonEnabled()) this.log(`${removed} removed`)
      return {dry_run: false, matched: records.length, removed, causes: summary}
    } finally {
      await runtime.close()
    }
  }

}
