import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../cli/base.js'
import {confirm} from '../cli/confirm.js'
import {parseWhen} from '../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import type {EventEnvelope} from '../core/envelope.js'
import type {ReplayResult} from '../ops/replay.js'
import type {ShadowResult} from '../ops/shadow.js'

export default class Replay extends BaseCommand<typeof Replay> {
  static override summary = 'Sends events from the store again to one consumer group or several, and to no other.'
  static override description = `Chooses events by type (globs), time, aggregate id or correlation id, in the order they were appended, and puts them on each named group's own topic, where the group's running services (\`tektree services\`) handle them again even though they were handled before. What the group completed is not done twice: an event its ledger holds applies none of its guarded writes and emits none of its derived events again (they committed with that record), however long ago; an event it never completed is handled as new. To run the handlers over the log again (new rules, a fixed bug), use --from-scratch.

--shadow runs one group's handlers over the whole log into a scratch copy of its projections (in this process) and prints where the result differs from the live state, field by field, committing nothing; with --rules DIR it answers "what would these rules change?".

--from-scratch rebuilds a group: it drops the group's projections (and, for gamification, the leaderboards), then replays every event the group consumes, from the store and from the archive (events \`tektree archive run\` moved out of the store took effect too; the data dir's archive, or --archive DIR); \`tektree verify\` then checks the result. Live events and replayed ones would not be ordered against each other, so it first waits up to 30 s for the groups to go quiet (no backlog, nothing arriving, an empty outbox) and, while a load goes on, refuses and drops nothing.

Exit codes: 0 sent (or, with --shadow, no difference), 1 not confirmed or differences found, 2 bad usage or the groups not quiet, 130 interrupted.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --group search --type "knowledge.*" --dry-run',
    '<%= config.bin %> <%= command.id %> --group notification --from 1h --rate 200',
    '<%= config.bin %> <%= command.id %> --group payment --from-scratch --yes',
    '<%= config.bin %> <%= command.id %> --group gamification --shadow --rules ./my-rules',
  ]
  static override flags = {
    group: Flags.string({summary: 'The consumer group(s) to replay into (service names), or all.', multiple: true, required: true}),
    type: Flags.string({summary: 'Only these event types (globs); repeatable.', multiple: true}),
    from: Flags.string({summary: 'Events at or after: an ISO time or a duration ago (1h).'}),
    to: Flags.string({summary: 'Events before: an ISO time or a duration ago.'}),
    aggregate: Flags.string({summary: 'Only events of this aggregate id.'}),
    correlation: Flags.string({summary: 'Only events with this correlation id.'}),
    'from-scratch': Flags.boolean({summary: "Drop the groups' projections first and replay everything they consume.", default: false}),
    rate: Flags.integer({summary: 'Events read a second (default: as fast as the bus takes them).', min: 1}),
    'dry-run': Flags.boolean({summary: 'Count what would be sent, per group; send and drop nothing.', default: false}),
    shadow: Flags.boolean({summary: 'Run the group over the log into a scratch copy and show the differences from the live state; commit nothing.', default: false}),
    rules: Flags.string({summary: 'The rules folder the services run with (default: the shipped fixtures/catalog/rules); for --shadow.'}),
    show: Flags.integer({summary: 'Most differences to list with --shadow (all are counted).', default: 20, min: 0}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask before --from-scratch drops projections.', default: false}),
    archive: Flags.string({summary: "With --from-scratch or --shadow, replay the events archived in this folder too. Default: the data dir's archive, when there is one.", env: 'TEKTREE_ARCHIVE_DIR', exclusive: ['ignore-archive']}),
    'ignore-archive': Flags.boolean({summary: "With --from-scratch or --shadow, read the store alone (the archived events' effects are then lost, or shown as differences).", default: false}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<ReplayResult | ShadowResult[]> {
    if (this.flags.shadow) return this.shadow()
    const fromScratch = this.flags['from-scratch']
    if (fromScratch && (this.flags.type || this.flags.from || this.flags.to || this.flags.aggregate || this.flags.correlation)) {
      throw new UserError('--from-scratch replays everything the group consumes: it takes no --type, --from, --to, --aggregate or --correlation', {code: 'INVALID_FLAGS', exitCode: 2})
    }
    const query = {
      ...(this.flags.type ? {types: this.flags.type} : {}),
      ...(this.flags.from ? {from: parseWhen(this.flags.from, 'from')} : {}),
      ...(this.flags.to ? {to: parseWhen(this.flags.to, 'to')} : {}),
      ...(this.flags.aggregate ? {aggregateId: this.flags.aggregate} : {}),
      ...(this.flags.correlation ? {correlationId: this.flags.correlation} : {}),
    }
    const [{loadCatalog}, {replayGroups}, {replay, describeBusy}] = await Promise.all([import('../catalog/load.js'), import('../services/replay-groups.js'), import('../ops/replay.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const groups = replayGroups(catalog, this.flags.group)
    const dryRun = this.flags['dry-run']
    if (fromScratch && !dryRun && !this.flags.yes) {
      const names = groups.map((g) => g.name).join(', ')
      await confirm(`Drop the projections of ${names} and rebuild them from the store?`, {message: `Refusing to drop the projections of ${names} without confirmation`, hint: 'There is no terminal to ask on: add --yes (or --dry-run to count).'})
    }
    const runtime = await openRuntimeFromFlags(this.flags)
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    const progress = process.stderr.isTTY && !this.jsonEnabled()
    let waiting = false
    try {
      if (runtime.describe().bus.origin === 'in-process') process.stderr.write('The bus is in this process only: no service elsewhere will receive the replay (start `tektree up`, or give --bus-url).\n')
      const result = await replay({
        runtime,
        catalog,
        groups,
        query,
        fromScratch,
        dryRun,
        ratePerSec: this.flags.rate,
        archived: fromScratch ? await this.archived() : undefined,
        signal: stop.signal,
        onProgress: progress ? ({read, sent}) => process.stderr.write(`\rread ${read}, ${dryRun ? 'would send' : 'sent'} ${sent}\u001B[K`) : undefined,
        quiet: {
          onWait: progress
            ? (state) => {
                waiting = true
                process.stderr.write(`\r${cutLine(`waiting for quiet: ${describeBusy(state)}`)}\u001B[K`)
              }
            : undefined,
        },
      }).catch((error: unknown) => {
        // The refusal's message starts a line of its own, not after the waiting line.
        if (waiting) process.stderr.write('\n')
        throw error
      })
      if (progress) process.stderr.write('\n')
      if (!this.jsonEnabled()) this.render(result, dryRun)
      if (result.interrupted) process.exitCode = 130
      return result
    } finally {
      process.off('SIGINT', onSigint)
      await runtime.close()
    }
  }

  private async shadow(): Promise<ShadowResult[]> {
    if (this.flags['from-scratch'] || this.flags.type || this.flags.from || this.flags.to || this.flags.aggregate || this.flags.correlation || this.flags['dry-run']) {
      throw new UserError('--shadow runs the group over the whole log into a scratch copy: it takes no --from-scratch, --dry-run or event filters', {code: 'INVALID_FLAGS', exitCode: 2})
    }
    const [{loadCatalog}, {createValidator}, {replayGroups}, {createServices}, {SystemClock}, {shadowReplay}] = await Promise.all([
      import('../catalog/load.js'),
      import('../catalog/validate.js'),
      import('../services/replay-groups.js'),
      import('../services/index.js'),
      import('../core/clock.js'),
      import('../ops/shadow.js'),
    ])
    const catalog = await loadCatalog(this.flags.catalog)
    const validator = createValidator(catalog)
    const groups = replayGroups(catalog, this.flags.group, this.flags.rules)
    const services = createServices({catalog, clock: new SystemClock(), rulesDir: this.flags.rules, emailDir: null, only: groups.map((g) => g.name)})
    const runtime = await openRuntimeFromFlags(this.flags)
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    try {
      const results: ShadowResult[] = []
      for (const group of groups) {
        const service = services.find((s) => s.name === group.name)!
        const archived = await this.archived()
        const result = await shadowReplay({live: runtime, catalog, validator, service, collections: group.collections, leaderboards: group.leaderboards, archived, signal: stop.signal})
        results.push(result)
        if (!this.jsonEnabled()) this.renderShadow(result)
        if (result.interrupted) {
          process.exitCode = 130
          break
        }
      }
      if (results.some((r) => r.differences.length > 0) && process.exitCode === undefined) process.exitCode = 1
      return results
    } finally {
      process.off('SIGINT', onSigint)
      await runtime.close()
    }
  }

  /** The archive's events, when there is an archive to read (read again for each pass over it). */
  private async archived(): Promise<AsyncIterable<EventEnvelope> | undefined> {
    if (this.flags['ignore-archive']) return undefined
    const {archivedEvents} = await import('../cli/archive-flags.js')
    return archivedEvents(this.flags.archive)
  }

  private renderShadow(result: ShadowResult): void {
    const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)
    const show = (value: unknown) => (value === undefined ? '(none)' : JSON.stringify(value))
    this.log(`${result.group}: ${result.events} event(s) run in the shadow; ${result.documents.shadow} document(s) there, ${result.documents.live} live; ${result.differences.length} difference(s)`)
    for (const d of result.differences.slice(0, this.flags.show)) {
      this.log(cut(`  ${d.collection} ${d.id} ${d.field}`, 80))
      this.log(cut(`    live ${show(d.live)}  shadow ${show(d.shadow)}`, 80))
    }
    if (result.differences.length > this.flags.show) this.log(`  ... and ${result.differences.length - this.flags.show} more (--show N, or --json)`)
  }

  private render(result: ReplayResult, dryRun: boolean): void {
    const n = (value: number) => value.toLocaleString('en-US')
    if (result.dropped.collections.length > 0) this.log(`dropped ${result.dropped.collections.length} collection(s)${result.dropped.boards > 0 ? ` and ${result.dropped.boards} leaderboard(s)` : ''}`)
    const archived = result.archived > 0 ? ` (${n(result.archived)} from the archive)` : ''
    this.log(`${n(result.read)} event(s) read${archived}, ${n(result.sent)} ${dryRun ? 'would be sent (dry run)' : 'sent'}${result.interrupted ? ' before the interruption: run it again to go on' : ''}`)
    for (const [group, count] of Object.entries(result.byGroup)) this.log(`  ${n(count).padStart(8)}  ${group}`)
    if (!dryRun && result.sent > 0) this.log('The groups handle them as their services run; `tektree lag` shows the progress.')
  }

}

const cutLine = (text: string) => (text.length <= 79 ? text : `${text.slice(0, 78)}…`)
