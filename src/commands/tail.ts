import {Args, Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../cli/base.js'
import {parseWhen} from '../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {printable} from '../core/redact.js'
import type {TailedEvent, TailFrom} from '../ops/tail.js'
import {shortEventId} from '../core/event-id.js'

export default class Tail extends BaseCommand<typeof Tail> {
  static override summary = 'Events as they reach the bus, like `kcat -C`: from the start, the end or a time, filtered.'
  static override description = `Reads the topics outside any consumer group (the services miss nothing), every partition, in the order the events reached the bus. On a terminal: one line per event, following new ones until Ctrl+C. Piped: the events as NDJSON (the bytes on the bus), ending once caught up unless --follow; \`| head\` ends it quietly.

TYPE_GLOB... picks event types ("social.*", "user.registered"); the topics read are theirs. --from takes beginning, latest, an ISO time or a duration ago (10m).`
  static override strict = false
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> "social.*" --from 10m',
    '<%= config.bin %> <%= command.id %> --from beginning --limit 20 | jq .event_type',
    '<%= config.bin %> <%= command.id %> --where payload.author_id=0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90',
  ]
  static override args = {types: Args.string({description: 'Event type globs (all types when none).', ignoreStdin: true})}
  static override flags = {
    from: Flags.string({summary: 'beginning, latest, an ISO time, or a duration ago (10m). Default: latest when following, else beginning.'}),
    follow: Flags.boolean({summary: 'Wait for new events once caught up (default on a terminal).', allowNo: true}),
    limit: Flags.integer({summary: 'Stop after N events.', min: 1}),
    aggregate: Flags.string({summary: 'Only events of this aggregate id (the partition key).'}),
    correlation: Flags.string({summary: 'Only events with this correlation id.'}),
    where: Flags.string({summary: 'Only events whose field at a dotted path has this value: payload.author_id=ID (repeatable).', multiple: true}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<void> {
    const {argv} = await this.parse(Tail)
    const types = argv.map(String)
    const tty = Boolean(process.stdout.isTTY)
    const follow = this.flags.follow ?? tty
    const from = this.from(follow)
    const where = (this.flags.where ?? []).map((w) => {
      const eq = w.indexOf('=')
      if (eq <= 0) throw new UserError(`--where ${w} is not PATH=VALUE`, {code: 'INVALID_FLAGS', hint: 'e.g. --where payload.author_id=0b9f3c1e-...', exitCode: 2})
      return {path: w.slice(0, eq), value: w.slice(eq + 1)}
    })
    const [{tail}, {loadCatalog}, {compileTypeGlobs}] = await Promise.all([import('../ops/tail.js'), import('../catalog/load.js'), import('../core/glob.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const wanted = types.length > 0 ? compileTypeGlobs(types) : () => true
    const topics = [...new Set(catalog.events.filter((e) => wanted(e.type) || e.aliases.some(wanted)).map((e) => e.topic))].sort()
    if (topics.length === 0) {
      const {closest} = await import('../core/suggest.js')
      const near = types.flatMap((t) => closest(t, catalog.events.map((e) => e.type)))
      throw new UserError(`No event type matches ${types.join(', ')}`, {code: 'UNKNOWN_EVENT_TYPE', hint: near.length > 0 ? `Did you mean ${[...new Set(near)].slice(0, 3).join(', ')}?` : '`tektree catalog list` lists the types.', exitCode: 2})
    }
    const runtime = await openRuntimeFromFlags(this.flags)
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    try {
      if (runtime.describe().bus.origin === 'in-process') process.stderr.write('The bus is in this process only: nothing another process published is here (start `tektree up`, or give --bus-url).\n')
      const events = tail({
        bus: runtime.bus,
        topics,
        from,
        follow,
        limit: this.flags.limit,
        signal: stop.signal,
        filter: {types: types.length > 0 ? types : undefined, aggregateId: this.flags.aggregate, correlationId: this.flags.correlation, where},
      })
      for await (const event of events) process.stdout.write(tty ? `${line(event)}\n` : `${event.delivery.value}\n`)
    } finally {
      process.off('SIGINT', onSigint)
      await runtime.close()
    }
  }

  private from(follow: boolean): TailFrom {
    const text = this.flags.from ?? (follow ? 'latest' : 'beginning')
    if (text === 'beginning' || text === 'earliest') return 'beginning'
    if (text === 'latest' || text === 'end') return 'end'
    return parseWhen(text, 'from')
  }
}

/**
 * One readable line within 80 columns: time, type, aggregate, event id (both shortened). Type, key
 * and id are whatever a producer wrote: their control characters are shown escaped.
 */
export function line({delivery, envelope}: TailedEvent): string {
  const time = new Date(delivery.enqueuedAt).toISOString().slice(11, 23)
  const type = printable(String(envelope?.event_type ?? delivery.headers.event_type ?? '(not an event)'))
  const id = printable(String(envelope?.event_id ?? delivery.headers.event_id ?? delivery.id))
  const short = (text: string) => (text.length > 8 ? text.slice(0, 8) : text)
  const cut = (text: string, width: number) => (text.length <= width ? text.padEnd(width) : `${text.slice(0, width - 1)}…`)
  return `${time}  ${cut(type, 36)}  ${short(printable(delivery.key)).padEnd(8)}  ${shortEventId(id).padEnd(8)}  p${delivery.partition}`
}
