import {BaseCommand, catalogFlag, runtimeFlags} from '../../cli/base.js'
import {dlqFilterFlags, dlqFilterFrom, explainNoMatch} from '../../cli/dlq-flags.js'
import {redriveFlags, runRedrive, type RedriveReport} from '../../cli/redrive.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'

export default class DlqRedrive extends BaseCommand<typeof DlqRedrive> {
  static override summary = 'Sends the matching DLQ entries back to the group that dead-lettered each, and to no other.'
  static override description = `Each entry goes onto its group's own topic, so the other groups do not see the event again. It leaves the DLQ once its group has handled and acked it; if it fails again it returns, its attempts counted. Interrupted, run it again: what is still in the DLQ is sent again, and nothing is applied twice.

--dry-run shows what would go, by cause. More than 50 entries need a yes (or --yes). --rate N sends N a second.

Exit codes: 0 sent, 1 not confirmed, 2 bad usage, 130 interrupted.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --group payment --dry-run',
    '<%= config.bin %> <%= command.id %> --code HANDLER_FAILED --since 1h --rate 50 --yes',
  ]
  static override flags = {...dlqFilterFlags, ...redriveFlags, catalog: catalogFlag, ...runtimeFlags}

  public async run(): Promise<RedriveReport> {
    const filter = dlqFilterFrom(this.flags)
    const {listDlq} = await import('../../ops/dlq.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      const records = await listDlq(runtime.store.dlq, filter)
      await explainNoMatch(runtime.store.dlq, filter, records)
      return await runRedrive(runtime, records, this.flags, {log: (line) => this.log(line), json: this.jsonEnabled()})
    } finally {
      await runtime.close()
    }
  }
}
