import {Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../../cli/base.js'
import {dlqFilterFlags, dlqFilterFrom, explainNoMatch} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {DlqRecord} from '../../core/ports.js'
import {printable} from '../../core/redact.js'
import type {DlqCause} from '../../ops/dlq.js'

export default class DlqList extends BaseCommand<typeof DlqList> {
  static override summary = 'Dead-lettered events grouped by cause, the most frequent first.'
  static override description = `A cause is a group, an event type, an error code and the error message with its ids, times and numbers masked: a thousand entries that failed the same way are one row, with their count and when the first and last arrived. --flat lists the entries themselves, newest last.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --group payment --since 24h',
    '<%= config.bin %> <%= command.id %> --flat --code VALIDATION_FAILED --json',
  ]
  static override flags = {
    ...dlqFilterFlags,
    flat: Flags.boolean({summary: 'One row per entry instead of one per cause.', default: false}),
    limit: Flags.integer({summary: 'Most rows to print (all are counted).', default: 50, min: 1}),
    ...runtimeFlags,
  }

  public async run(): Promise<{total: number; causes?: DlqCause[]; entries?: DlqRecord[]}> {
    const filter = dlqFilterFrom(this.flags)
    const {listDlq, groupByCause} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    let records: DlqRecord[]
    try {
      records = await listDlq(runtime.store.dlq, filter)
      await explainNoMatch(runtime.store.dlq, filter, records)
    } finally {
      await runtime.close()
    }
    if (this.flags.flat) {
      if (!this.jsonEnabled()) this.renderFlat(records)
      return {total: records.length, entries: records}
    }
    const causes = groupByCause(records)
    if (!this.jsonEnabled()) this.renderCauses(causes, records.length)
    return {total: records.length, causes}
  }

  private renderCauses(causes: DlqCause[], total: number): void {
    if (total === 0) return this.log('The DLQ holds no entry that matches.')
    this.log(`${total} entr${total === 1 ? 'y' : 'ies'}, ${causes.length} cause${causes.length === 1 ? '' : 's'}`)
    for (const c of causes.slice(0, this.flags.limit)) {
      this.log('')
      this.log(cut(`${String(c.count).padStart(6)}  ${c.group}  ${c.event_type ?? '(unparsed)'}  ${c.code}`))
      this.log(cut(`        ${c.message}`))
      this.log(cut(`        first ${c.first_seen}  last ${c.last_seen}`))
      this.log(cut(`        e.g. tektree dlq show ${c.ids[c.ids.length - 1]}`))
    }
    if (causes.length > this.flags.limit) this.log(`\n... and ${causes.length - this.flags.limit} more causes (--limit N, or --json)`)
  }

  private renderFlat(records: DlqRecord[]): void {
    if (records.length === 0) return this.log('The DLQ holds no entry that matches.')
    for (const r of records.slice(-this.flags.limit)) {
      this.log(cut(`${r.dead_lettered_at}  ${r.id}`))
      this.log(cut(`    ${r.event_type ?? '(unparsed)'}  ${r.error.error.code}  attempts ${r.attempts}: ${r.error.error.message}`))
    }
    if (records.length > this.flags.limit) this.log(`... ${records.length - this.flags.limit} older entries not shown (--limit N, or --json)`)
  }
}

/** Lines fit 80 columns; what they quote from the bus (types, ids, messages) shows its control characters escaped. */
const cut = (line: string, width = 80) => {
  const text = printable(line)
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`
}
