import {Args, Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {createStyle, type Style} from '../cli/style.js'
import {formatAge} from '../core/duration.js'
import type {Trace, TraceHop, TraceNode} from '../ops/trace.js'
import {shortEventId} from '../core/event-id.js'

export default class TraceCommand extends BaseCommand<typeof TraceCommand> {
  static override summary = 'One event end to end: its journey as a causal tree, and each group that handled each event, when, how.'
  static override description = `Finds the event's journey (every event with its correlation id, each under the event that caused it) and, for every event in it, when it was appended and, per consumer group, whether it was handled (when, after how many attempts, how long after the event), dead-lettered (with the error) or not yet. A tree on a terminal, JSON otherwise (or with --json).`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %> 0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90', '<%= config.bin %> <%= command.id %> --correlation 5d1e7a20-3c4b-4f1e-8a2d-6b9c0e1f2a34 --json']
  static override args = {eventId: Args.string({description: 'An event id (from `tektree tail --json`, a log line), or a DLQ entry id (GROUP:EVENT_ID).', ignoreStdin: true})}
  static override flags = {
    correlation: Flags.string({summary: 'Trace a correlation id instead of an event id.'}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<Trace> {
    // A DLQ entry's id (GROUP:EVENT_ID, as `dlq list --flat` prints it) names its event.
    const eventId = this.args.eventId?.replace(/^[^:]+:(?=[0-9a-f]{8}-[0-9a-f]{4}-)/i, '')
    const correlationId = this.flags.correlation
    if ((eventId === undefined) === (correlationId === undefined)) {
      throw new UserError('Give an event id or --correlation ID (one of them)', {code: 'INVALID_ARGS', hint: 'e.g. tektree trace 0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90', exitCode: 2})
    }
    const [{loadCatalog}, {replayGroups}, {traceJourney}] = await Promise.all([import('../catalog/load.js'), import('../services/replay-groups.js'), import('../ops/trace.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const groups = catalog.tektree ? replayGroups(catalog, ['all']) : []
    const consumersOf = (type: string) => groups.filter((g) => g.accepts(type)).map((g) => g.name)
    const runtime = await openRuntimeFromFlags(this.flags)
    let trace: Trace | null
    try {
      trace = await traceJourney({store: runtime.store, consumersOf, eventId, correlationId})
    } finally {
      await runtime.close()
    }
    if (!trace) {
      throw new UserError(eventId ? `The store holds no event ${eventId}` : `The store holds no event with correlation id ${correlationId}`, {
        code: 'UNKNOWN_EVENT',
        hint: 'Event ids are in `tektree tail --json` and `tektree dlq list --flat` (GROUP:EVENT_ID); archived ones in `tektree archive query`.',
        exitCode: 2,
      })
    }
    if (!this.jsonEnabled()) {
      if (process.stdout.isTTY) for (const line of renderTrace(trace, createStyle(process.stdout))) this.log(line)
      else this.log(JSON.stringify(trace, null, 2))
    }
    return trace
  }
}

const PLAIN: Pick<Style, 'ok' | 'warn' | 'bad' | 'dim' | 'bold'> = {ok: (s) => s, warn: (s) => s, bad: (s) => s, dim: (s) => s, bold: (s) => s}

/** The tree, one line per event and per group, within 80 columns. */
export function renderTrace(trace: Trace, style: Pick<Style, 'ok' | 'warn' | 'bad' | 'dim' | 'bold'> = PLAIN): string[] {
  const out = [`journey ${trace.correlation_id}: ${trace.events} event(s)`]
  const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, Math.max(1, width - 1))}…`)
  const hopText = (h: TraceHop) => {
    if (h.outcome === 'pending') return 'not handled yet'
    const when = `+${formatAge(h.latency_ms ?? 0)}${h.attempts && h.attempts > 1 ? `, ${h.attempts} attempts` : ''}`
    return h.outcome === 'handled' ? `handled ${when}` : `dead-lettered ${when}: ${h.error?.code ?? ''}`
  }
  // Cut as plain text, coloured after: escape codes take no column.
  const paint = (line: string, h: TraceHop) => {
    const [word, colour] = h.outcome === 'handled' ? ['handled', style.ok] : h.outcome === 'pending' ? ['not handled yet', style.warn] : ['dead-lettered', style.bad]
    const at = line.lastIndexOf(word)
    return at < 0 ? line : `${line.slice(0, at)}${colour(word)}${line.slice(at + word.length)}`
  }
  const walk = (node: TraceNode, prefix: string, last: boolean, depth: number) => {
    const branch = depth === 0 ? '' : last ? '└─ ' : '├─ '
    const time = node.timestamp.slice(11, 23)
    const head = `${prefix}${branch}${node.event_type} ${shortEventId(node.event_id)} ${time}`
    out.push(node.asked ? style.bold(`${cut(head, 77)} <-`) : cut(head, 80))
    const inner = depth === 0 ? '' : `${prefix}${last ? '   ' : '│  '}`
    const items: Array<{kind: 'hop'; hop: TraceHop} | {kind: 'child'; node: TraceNode}> = [...node.hops.map((hop) => ({kind: 'hop' as const, hop})), ...node.children.map((child) => ({kind: 'child' as const, node: child}))]
    items.forEach((item, i) => {
      const isLast = i === items.length - 1
      if (item.kind === 'child') return walk(item.node, inner, isLast, depth + 1)
      const label = `${inner}${isLast ? '└─ ' : '├─ '}${item.hop.group.padEnd(13)} `
      out.push(paint(cut(`${cut(label, 60)}${hopText(item.hop)}`, 80), item.hop))
    })
  }
  trace.roots.forEach((root, i) => walk(root, '', i === trace.roots.length - 1, 0))
  return out
}
