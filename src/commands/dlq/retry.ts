import {Args} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../../cli/base.js'
import {redriveFlags, runRedrive, type RedriveReport} from '../../cli/redrive.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {DlqRecord} from '../../core/ports.js'

export default class DlqRetry extends BaseCommand<typeof DlqRetry> {
  static override summary = 'Sends DLQ entries, by id, back to the group that dead-lettered each, and to no other.'
  static override description = 'As `tektree dlq redrive`, for the entries named (ids as `tektree dlq list --flat` prints them).'
  static override enableJsonFlag = true
  static override strict = false
  static override examples = ['<%= config.bin %> <%= command.id %> payment:0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90', '<%= config.bin %> <%= command.id %> ID1 ID2 --dry-run']
  static override args = {id: Args.string({description: 'Entry ids (GROUP:EVENT_ID), one or more.', required: true, ignoreStdin: true})}
  static override flags = {...redriveFlags, catalog: catalogFlag, ...runtimeFlags}

  public async run(): Promise<RedriveReport> {
    const {argv} = await this.parse(DlqRetry)
    const ids = [...new Set(argv.map(String))]
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      const found = await Promise.all(ids.map((id) => runtime.store.dlq.get(id)))
      const missing = ids.filter((_, i) => found[i] === null)
      if (missing.length > 0) {
        throw new UserError(`The DLQ holds no entr${missing.length === 1 ? 'y' : 'ies'} ${missing.join(', ')}`, {code: 'UNKNOWN_DLQ_ENTRY', hint: 'Entry ids are GROUP:EVENT_ID; `tektree dlq list --flat` lists them. Nothing was sent.', exitCode: 2})
      }
      return await runRedrive(runtime, found as DlqRecord[], this.flags, {log: (line) => this.log(line), json: this.jsonEnabled()})
    } finally {
      await runtime.close()
    }
  }
}
