import {Args} from '@oclif/core'
import {BaseCommand, runtimeFlags, UserError} from '../../cli/base.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {DlqRecord} from '../../core/ports.js'
import {printable} from '../../core/redact.js'

export default class DlqShow extends BaseCommand<typeof DlqShow> {
  static override summary = 'One dead-lettered event: its error contract, attempts, group, original bytes and parsed envelope.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %> payment:0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90', '<%= config.bin %> <%= command.id %> ID --json']
  static override args = {
    id: Args.string({description: 'The entry id, GROUP:EVENT_ID, as `tektree dlq list` prints it.', required: true, ignoreStdin: true}),
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

  /** Everything in an entry came off the bus: its control characters are shown escaped (--json has it exact). */
  private render(r: DlqRecord): void {
    const e = r.error.error
    const line = (text: string) => this.log(printable(text))
    const block = (text: string) => this.log(printable(text, {layout: true}))
    line(`${r.id}`)
    line(`  group        ${r.group}`)
    line(`  event        ${r.event_type ?? '(unparsed)'} ${r.event_id ?? ''}`.trimEnd())
    line(`  on the bus   ${r.topic} partition ${r.partition}, delivery ${r.delivery_id}`)
    line(`  attempts     ${r.attempts}`)
    line(`  failures     first ${r.first_failure_at}, last ${r.last_failure_at}`)
    line(`  dead-letter  ${r.dead_lettered_at}`)
    this.log('')
    line(`error ${e.code}: ${e.message}`)
    // JSON.stringify escapes C0 but leaves DEL and C1 raw.
    if (Object.keys(e.details ?? {}).length > 0) block(JSON.stringify(e.details, null, 2))
    this.log('')
    this.log('original bytes:')
    block(r.raw)
    if (r.envelope) {
      this.log('')
      this.log('parsed envelope:')
      block(JSON.stringify(r.envelope, null, 2))
    }
  }
}
