import {BaseCommand, runtimeFlags} from '../../cli/base.js'
import {dlqFilterFlags, dlqFilterFrom, explainNoMatch} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import {createStyle} from '../../cli/style.js'
import type {DlqStats} from '../../ops/dlq.js'

export default class DlqStatsCommand extends BaseCommand<typeof DlqStatsCommand> {
  static override summary = 'How many entries the DLQ holds, by group and error code, against the alert threshold (100).'
  static override description = `The DLQ policy of TekTree's event catalog alerts when the DLQ holds more than 100 entries; an entry count over it is flagged.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {...dlqFilterFlags, ...runtimeFlags}

  public async run(): Promise<DlqStats> {
    const filter = dlqFilterFrom(this.flags)
    const {listDlq, dlqStats} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    let stats: DlqStats
    try {
      const records = await listDlq(runtime.store.dlq, filter)
      await explainNoMatch(runtime.store.dlq, filter, records)
      stats = dlqStats(records)
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) {
      const style = createStyle(process.stdout)
      this.log(`${stats.total} entr${stats.total === 1 ? 'y' : 'ies'} (alert threshold ${stats.threshold}: ${stats.over_threshold ? style.bad('OVER') : style.ok('under')})`)
      if (stats.total > 0) this.log(`oldest ${stats.oldest}, newest ${stats.newest}`)
      for (const [title, counts] of [['by group', stats.by_group], ['by error code', stats.by_code]] as const) {
        if (Object.keys(counts).length === 0) continue
        this.log('')
        this.log(title)
        for (const [name, n] of Object.entries(counts)) this.log(`  ${String(n).padStart(7)}  ${name}`)
      }
    }
    return stats
  }
}
