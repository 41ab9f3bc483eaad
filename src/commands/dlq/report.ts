import {Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../../cli/base.js'
import {parseWhen} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {DlqReport} from '../../ops/dlq.js'

export default class DlqReportCommand extends BaseCommand<typeof DlqReportCommand> {
  static override summary = 'The daily DLQ report: the DLQ now, and what was dead-lettered since, by cause (markdown).'
  static override description = `TekTree's event catalog asks for a daily DLQ report to the operations team. Markdown by default (paste it, mail it); --json for the same as data.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --since 7d > dlq-week.md', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {
    since: Flags.string({summary: 'The period: a duration ago ("24h") or an ISO time.', default: '24h'}),
    ...runtimeFlags,
  }

  public async run(): Promise<DlqReport> {
    const now = Date.now()
    const since = parseWhen(this.flags.since, 'since', now)
    const {dlqReport, reportMarkdown} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    let report: DlqReport
    try {
      report = dlqReport(await runtime.store.dlq.list(), since, now)
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) this.log(reportMarkdown(report))
    return report
  }
}
