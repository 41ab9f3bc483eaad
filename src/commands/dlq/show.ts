import {Args} from '@oclif/core'
import {BaseCommand, runtimeFlags, UserError} from '../../cli/base.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {DlqRecord} from '../../core/ports.js'

export default class DlqShow extends BaseCommand<typeof DlqShow> {
  static override summary = 'One dead-lettered event: its error contract, attempts, group, original bytes and parsed envelope.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %> payment:0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90', '<%= config.bin %> <%= command.id %> ID --json']
  static override args = {
    id: Args.string({description: 'The entry id, GROUP:EVENT_ID, as `tektree dlq list` prints it.', required: true}),
  }
  static override flags = {...runtimeFlags}

  public async run(): Promise<DlqRecord> {
    const runtime = await openRuntimeFromFlags(this.flags)
    let record: DlqRecord | null
    let near: string[] = []
    try {
      record = await runtime.store.dlq.get(this.args.id)
      if (!record) {
        const [, eventId] = this.args.id.split(/:(.*)/)
        near = (await runtime.store.dlq.list({limit: 10_000}))
          .filter((r) => r.event_id === this.args.id || r.event_id === eventId || r.id.startsWith(this.args.id))
          .map((r) => r.id)
      }
    } finally {
      await runtime.close()
    }
    if (!record) {
      throw new UserError(`The DLQ holds no entry ${this.args.id}`, {
        code: 'UNKNOWN_DLQ_ENTRY',
        hint: near.length > 0 ? `Did you mean: ${near.slice(0, 5).join(', ')}?` : 'Entry ids are GROUP:EVENT_ID; `tektree dlq list --flat` lists them.',
        exitCode: 2,
      })
    }
    if (!this.jsonEnabled()) this.render(record)
    return record
  }

  private render(r: DlqRecord): void {
    const e = r.error.error
    this.log(`${r.id}`)
    this.log(`  group        ${r.group}`)
    this.log(`  event        ${r.event_type ?? '(unparsed)'} ${r.event_id ?? ''}`.trimEnd())
    this.log(`  on the bus   ${r.topic} partition ${r.partition}, delivery ${r.delivery_id}`)
    this.log(`  attempts     ${r.attempts}`)
    this.log(`  failures     first ${r.first_failure_at}, last ${r.last_failure_at}`)
    this.log(`  dead-letter  ${r.dead_lettered_at}`)
    this.log('')
    this.log(`error ${e.code}: ${e.message}`)
    if (Object.keys(e.details ?? {}).length > 0) this.log(JSON.stringify(e.details, null, 2))
    this.log('')
    this.log('original bytes:')
    this.log(r.raw)
    if (r.envelope) {
      this.log('')
      this.log('parsed envelope:')
      this.log(JSON.stringify(r.envelope, null, 2))
    }
  }
}
