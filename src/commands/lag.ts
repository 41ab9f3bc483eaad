import {Args, Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags, UserError} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {formatAge, parseDuration} from '../core/duration.js'
import {pause} from '../core/pause.js'
import {closest, didYouMean} from '../core/suggest.js'
import {createStyle, type Style} from '../cli/style.js'
import type {LagRow, LagSample} from '../ops/lag.js'

export interface LagResult {
  at: string
  interval_ms: number
  rows: LagRow[]
  /** Groups over --max-lag (empty without it). */
  over: Array<{group: string; topic: string; backlog: number}>
}

export default class Lag extends BaseCommand<typeof Lag> {
  static override summary = "Each consumer group's lag, pending, oldest pending age, rates, trend and time to drain."
  static override description = `Reads the bus twice, --interval apart, and shows per group and topic (and per partition with --partitions): lag (messages not yet delivered to the group), pending (delivered, not acked), how long the oldest pending message has waited, the rates in and out, whether the backlog grows, shrinks or holds, and an ETA to drain it. On Redis the figures are those of XINFO GROUPS and XPENDING. On Kafka they come from the group's committed offsets and the log end: lag + pending is the LAG of kafka-consumer-groups --describe (what was delivered but not acked is recorded in the commit metadata).

With --watch it redraws every --interval until Ctrl+C. With --max-lag N it is a CI gate: exit 1 when any group's backlog (lag + pending) is over N, e.g. after a load test, to tell that the services kept up.

Exit codes: 0 done, 1 a group over --max-lag, 2 bad usage or an unknown group.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> gamification --partitions',
    '<%= config.bin %> <%= command.id %> --watch --interval 2s',
    '<%= config.bin %> <%= command.id %> --max-lag 0 --json',
  ]
  static override args = {
    group: Args.string({description: 'Only this consumer group (a service name, e.g. gamification).', ignoreStdin: true}),
  }
  static override flags = {
    partitions: Flags.boolean({summary: 'A row per partition too, with its owner.', default: false}),
    interval: Flags.string({summary: 'Time between the two readings (and between redraws with --watch).', default: '1s'}),
    watch: Flags.boolean({summary: 'Redraw every --interval until Ctrl+C.', default: false}),
    'max-lag': Flags.integer({summary: "Exit 1 when any group's backlog (lag + pending) is over N.", min: 0}),
    ...runtimeFlags,
  }

  public async run(): Promise<LagResult> {
    const intervalMs = this.intervalMs()
    const {sampleLag, lagRows, overLimit} = await import('../ops/lag.js')
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      if (runtime.describe().bus.origin === 'in-process') {
        process.stderr.write('The bus is in this process only: no other process can have used it (start `tektree up`, or give --bus-url).\n')
      }
      const filter = this.args.group ? {group: this.args.group} : {}
      let before: LagSample = await sampleLag(runtime.bus, filter)
      if (this.args.group && before.groups.length === 0) await this.unknownGroup(runtime.bus, this.args.group)
      const stop = new AbortController()
      const onSigint = () => stop.abort()
      process.once('SIGINT', onSigint)
      try {
        for (;;) {
          // Ctrl+C is how a watch ends: quietly, exit 0.
          if (!(await pause(intervalMs, stop.signal))) return this.result(before, [], intervalMs, [])
          const now = await sampleLag(runtime.bus, filter)
          const rows = lagRows(before, now, {partitions: this.flags.partitions})
          const over = this.flags['max-lag'] === undefined ? [] : overLimit(rows, this.flags['max-lag'])
          if (!this.jsonEnabled()) this.render(rows, over, this.flags.watch, runtime.describe().bus.kind)
          if (!this.flags.watch) {
            if (over.length > 0) process.exitCode = 1
            return this.result(now, rows, intervalMs, over)
          }
          before = now
        }
      } finally {
        process.off('SIGINT', onSigint)
      }
    } finally {
      await runtime.close()
    }
  }

  private intervalMs(): number {
    try {
      const ms = parseDuration(this.flags.interval)
      if (ms >= 100) return ms
    } catch {
      // reported below
    }
    throw new UserError(`--interval ${this.flags.interval} is not a duration of at least 100ms`, {code: 'INVALID_FLAGS', hint: 'Give e.g. 500ms, 2s or 1m.', exitCode: 2})
  }

  private async unknownGroup(bus: {stats(): Promise<Array<{group: string}>>}, group: string): Promise<never> {
    const known = [...new Set((await bus.stats()).map((s) => s.group))].sort()
    throw new UserError(`No consumer group "${group}" on this bus.${didYouMean(closest(group, known, {substrings: true}))}`, {
      code: 'UNKNOWN_GROUP',
      hint: known.length === 0 ? 'No group has consumed from this bus yet: start `tektree services` or `tektree simulate`.' : `Groups: ${known.join(', ')}.`,
      exitCode: 2,
    })
  }

  private result(sample: LagSample, rows: LagRow[], intervalMs: number, over: LagRow[]): LagResult {
    return {
      at: new Date(sample.at).toISOString(),
      interval_ms: intervalMs,
      rows,
      over: over.map((r) => ({group: r.group, topic: r.topic, backlog: r.lag + r.pending})),
    }
  }

  private render(rows: LagRow[], over: LagRow[], watch: boolean, busKind: string): void {
    const style = createStyle(process.stdout)
    const lines = renderLag(rows, style)
    // The concept differs: Kafka knows only committed offsets, and its tools show one LAG.
    if (busKind === 'kafka' && rows.length > 0) lines.push('Kafka: LAG + PENDING = kafka-consumer-groups LAG (committed offset to log end).')
    if (over.length > 0) lines.push(style.bad(`${over.length} group/topic backlog(s) over --max-lag ${this.flags['max-lag']}`))
    // In place on a terminal (like watch(1)); a pipe gets one block per reading.
    if (watch && process.stdout.isTTY) process.stdout.write('\u001B[H\u001B[2J')
    this.log(lines.join('\n'))
    if (watch && !process.stdout.isTTY) this.log('')
  }
}

const COLUMNS: Array<[string, number]> = [
  ['GROUP / TOPIC', 22],
  ['LAG', 7],
  ['PENDING', 7],
  ['OLDEST', 6],
  ['IN/s', 6],
  ['OUT/s', 6],
  ['TREND', 9],
  ['ETA', 6],
]

const same = (s: string) => s
const PLAIN = {ok: same, warn: same, bold: same}
const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)
/** Counts fit their column: 123456, then 1.2M, 3.4G. */
const count = (n: number) => (n < 1e6 ? String(n) : n < 1e9 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e9).toFixed(1)}G`)
const rate = (n: number | null) => (n === null ? '-' : n >= 100 ? String(Math.round(n)) : n.toFixed(1))

/**
 * Each group's line: its consumers over all its topics. One topic's row can name none while the
 * group runs (redis-server lists a consumer on a stream only once a read there returned entries).
 */
function groupHeaders(rows: readonly LagRow[]): Map<string, string> {
  const seen = new Map<string, {names: Set<string>; idleMs: number | null}>()
  for (const row of rows) {
    if (row.partition !== null) continue
    let group = seen.get(row.group)
    if (!group) seen.set(row.group, (group = {names: new Set(), idleMs: null}))
    for (const name of row.consumers) group.names.add(name)
    if (row.idleMs !== null) group.idleMs = Math.min(group.idleMs ?? row.idleMs, row.idleMs)
  }
  const headers = new Map<string, string>()
  for (const [name, {names, idleMs}] of seen) {
    const idle = idleMs === null ? '' : `, least idle ${formatAge(idleMs)}`
    headers.set(name, `${name} (${names.size} consumer${names.size === 1 ? '' : 's'}${idle})`)
  }
  return headers
}

/** 80 columns: a line per group (its consumers), then a row per topic (and partition). */
export function renderLag(rows: readonly LagRow[], style: Pick<Style, 'ok' | 'warn' | 'bold'> = PLAIN): string[] {
  if (rows.length === 0) return ['No consumer group has read from this bus yet.']
  // Coloured after padding: escape codes take no column.
  const paint = (i: number, cell: string, padded: string) => (i !== 6 ? padded : cell === 'growing' ? style.warn(padded) : cell === 'shrinking' ? style.ok(padded) : padded)
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => paint(i, cell, i === 0 ? cut(cell, COLUMNS[i][1]).padEnd(COLUMNS[i][1]) : cut(cell, COLUMNS[i][1]).padStart(COLUMNS[i][1])))
      .join(' ')
      .trimEnd()
  const out = [line(COLUMNS.map(([name]) => name))]
  const headers = groupHeaders(rows)
  let group: string | null = null
  for (const row of rows) {
    if (row.group !== group) {
      group = row.group
      out.push(style.bold(cut(headers.get(row.group)!, 79)))
    }
    const name = row.partition === null ? `  ${row.topic}` : `    p${row.partition} ${row.consumers[0] ?? '(no owner)'}`
    out.push(
      line([
        name,
        count(row.lag),
        count(row.pending),
        row.oldestPendingAgeMs === null ? '-' : formatAge(row.oldestPendingAgeMs),
        rate(row.inPerSec),
        rate(row.outPerSec),
        row.trend ?? '-',
        row.etaMs === null ? '-' : formatAge(row.etaMs),
      ]),
    )
  }
  return out
}
