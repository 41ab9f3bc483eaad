import {BaseCommand, runtimeFlags} from '../../cli/base.js'
import {dlqFilterFlags, dlqFilterFrom, explainNoMatch} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'

export default class DlqExport extends BaseCommand<typeof DlqExport> {
  static override summary = 'The matching DLQ entries as NDJSON on stdout, one record per line, oldest first.'
  static override description = 'Each line is the whole record: the error contract, attempts, failure times, the group, the original bytes and the parsed envelope. Nothing is removed (see `tektree dlq purge`).'
  static override examples = ['<%= config.bin %> <%= command.id %> > dlq.ndjson', '<%= config.bin %> <%= command.id %> --group payment --since 24h | jq .error']
  static override flags = {...dlqFilterFlags, ...runtimeFlags}

  public async run(): Promise<void> {
    const filter = dlqFilterFrom(this.flags)
    const {listDlq} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      const records = await listDlq(runtime.store.dlq, filter)
      await explainNoMatch(runtime.store.dlq, filter, records)
      for (const record of records) process.stdout.write(`${JSON.stringify(record)}\n`)
      process.stderr.write(`${records.length} entr${records.length === 1 ? 'y' : 'ies'} exported\n`)
    } finally {
      await runtime.close()
    }
  }
}
