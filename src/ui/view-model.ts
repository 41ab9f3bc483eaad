/**
 * What the dashboard shows, as plain data: computed from what the feed read (metric snapshots, lag,
 * the DLQ, the tail) and the UI state, for a terminal of `columns` x `rows`. Every line is fitted
 * here (cut with an ellipsis, never wrapped), and panels are dropped here when the height runs out,
 * so the components only paint lines, and tests can check a frame without a terminal.
 *
 * When the overview is taller than the terminal, panels give way in this order (LAYOUT_STEPS): the
 * events by type shrink to the two busiest, the DLQ's causes go (its count line stays), the events
 * by type go, the groups shrink to the selected one's page (one row at least), then the latency,
 * the throughput, the DLQ and the groups panels go whole. The header and the help line always stay.
 */
import {formatAge} from '../core/duration.js'
import type {LatencySummary} from '../core/metrics.js'
import type {ConsumerInfo, DlqRecord} from '../core/ports.js'
import {maskUrl, printable} from '../core/redact.js'
import type {DlqCause} from '../ops/dlq.js'
import type {LagRow} from '../ops/lag.js'
import type {ProcessInfo, TypeRate} from './metrics-window.js'
import {shortEventId} from '../core/event-id.js'

/** Seed 000, "Event Bus Performance Targets": p95 of publishing and of delivery. */
export const PUBLISH_P95_TARGET_MS = 10
export const DELIVERY_P95_TARGET_MS = 100

export type Tone = 'ok' | 'warn' | 'bad' | 'dim' | 'bold' | 'selected'
export interface Segment {
  text: string
  tone?: Tone
}
export type Line = Segment[]

export type View = 'overview' | 'group' | 'dlq' | 'entry' | 'tail'
/** Tab goes round these; group and entry are reached with Enter. */
export const TAB_VIEWS: readonly View[] = ['overview', 'dlq', 'tail']

export type PanelId = 'header' | 'throughput' | 'latency' | 'groups' | 'dlq' | 'types' | 'group' | 'causes' | 'entry' | 'tail' | 'help'

/** How the overview gives way when it is taller than the terminal, step by step (see the top of this file). */
const LAYOUT_STEPS: ReadonlyArray<[PanelId, 'shrink' | 'drop']> = [
  ['types', 'shrink'],
  ['dlq', 'shrink'],
  ['types', 'drop'],
  ['groups', 'shrink'],
  ['latency', 'drop'],
  ['throughput', 'drop'],
  ['dlq', 'drop'],
  ['groups', 'drop'],
]
/** The order in which the overview's panels go whole. */
export const DROP_ORDER: readonly PanelId[] = LAYOUT_STEPS.filter(([, how]) => how === 'drop').map(([id]) => id)

export interface TailLine {
  at: number
  type: string
  key: string
  id: string
  partition: number
}

export interface DashboardData {
  now: number
  runtime: {bus: {kind: string; location: string}; store: {kind: string; location: string}}
  /** Since when the runtime runs (`tektree up`), when known; else the oldest process's start. */
  runtimeStartedAt: number | null
  processes: ProcessInfo[]
  /** Null until a process shared metrics. */
  rates: {inPerSec: number; outPerSec: number} | null
  /** In and out a second, oldest first, one value per `seriesBucketSeconds`. */
  series: {in: number[]; out: number[]}
  seriesBucketSeconds: number
  latency: {publish: LatencySummary; delivery: LatencySummary}
  /** One row per group (ops/lag.ts byGroup + lagRows). */
  groups: LagRow[]
  /** Per topic and partition rows of every group (lagRows with partitions). */
  groupRows: LagRow[]
  consumers: Record<string, ConsumerInfo[]>
  /** Why lag could not be read, when it could not. */
  lagError: string | null
  dlq: {total: number; threshold: number; causes: DlqCause[]} | null
  /** The entry shown in the entry view. */
  entry: DlqRecord | null
  types: TypeRate[]
  tail: {lines: TailLine[]; error: string | null}
  /** One line of news (a retry sent, a failure), shown above the help line. */
  notice: string | null
}

export interface UiState {
  view: View
  help: boolean
  paused: boolean
  /** Selected row in the (filtered) groups list and causes list. */
  groupIndex: number
  causeIndex: number
  /** The group open in the group view, the cause open in the entry view. */
  openGroup: string | null
  openCause: string | null
  filters: {overview: string; dlq: string; tail: string}
  /** Typing a filter (for the current view). */
  editing: boolean
  /** Asking whether to retry the entry shown. */
  confirm: boolean
}

export const initialUiState = (): UiState => ({
  view: 'overview',
  help: false,
  paused: false,
  groupIndex: 0,
  causeIndex: 0,
  openGroup: null,
  openCause: null,
  filters: {overview: '', dlq: '', tail: ''},
  editing: false,
  confirm: false,
})

export interface Section {
  id: PanelId
  lines: Line[]
}

export interface ViewModel {
  width: number
  height: number
  color: boolean
  view: View
  /** Top to bottom; their lines plus the help line fit `height`, every line fits `width`. */
  sections: Section[]
  /** One line of news (a retry sent, a read that failed), just above the help line; null when none. */
  notice: Line | null
  /** The keys of the current view (always the last line). */
  help: Line
  /** Overview panels left out for lack of height, in DROP_ORDER. */
  dropped: PanelId[]
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

const chars = (s: string) => [...s]
export const lineWidth = (line: Line): number => line.reduce((n, s) => n + chars(s.text).length, 0)
export const lineText = (line: Line): string => line.map((s) => s.text).join('')

/** Cuts a line to `width` columns, the last one an ellipsis when something was cut. */
export function fit(line: Line, width: number): Line {
  if (lineWidth(line) <= width) return line
  const out: Line = []
  let room = Math.max(0, width - 1)
  for (const seg of line) {
    if (room <= 0) break
    const c = chars(seg.text)
    out.push({...seg, text: c.slice(0, room).join('')})
    room -= Math.min(room, c.length)
  }
  if (width > 0) out.push({text: '…', tone: line[line.length - 1]?.tone === 'selected' ? 'selected' : undefined})
  return out
}

const cut = (text: string, width: number) => {
  const c = chars(text)
  return c.length <= width ? text : width <= 1 ? c.slice(0, width).join('') : `${c.slice(0, width - 1).join('')}…`
}
const left = (text: string, width: number) => cut(text, width).padEnd(width)
const right = (text: string, width: number) => cut(text, width).padStart(width)

/** 1,234 / 12.3k / 4.5M: counts in a few columns. */
export function count(n: number): string {
  if (n < 10_000) return Math.round(n).toLocaleString('en-US')
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)}k`
  return `${(n / 1e6).toFixed(1)}M`
}

export function perSec(n: number | null): string {
  if (n === null) return '-'
  if (n === 0) return '0'
  if (n < 10) return n.toFixed(1)
  return count(n)
}

export function ms(value: number): string {
  if (value < 10) return `${value.toFixed(1)}ms`
  if (value < 1000) return `${Math.round(value)}ms`
  return `${(value / 1000).toFixed(value < 10_000 ? 1 : 0)}s`
}

const BARS = '▁▂▃▄▅▆▇█'

/** One bar per value, scaled to the largest (all zero: the lowest bar). */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values)
  return values.map((v) => (max <= 0 ? BARS[0] : BARS[Math.min(7, Math.max(0, Math.round((v / max) * 7)))])).join('')
}

const age = (v: number | null) => (v === null ? '-' : formatAge(v))

// ---------------------------------------------------------------------------------------------
// Filters shared with the key handling (controller.ts)
// ---------------------------------------------------------------------------------------------

const contains = (text: string, filter: string) => filter === '' || text.toLowerCase().includes(filter.toLowerCase())

export function visibleGroups(data: DashboardData, ui: UiState): LagRow[] {
  return data.groups.filter((row) => contains(row.group, ui.filters.overview))
}

export function visibleCauses(data: DashboardData, ui: UiState): DlqCause[] {
  return (data.dlq?.causes ?? []).filter((c) => contains(`${c.group} ${c.event_type ?? ''} ${c.code} ${c.message}`, ui.filters.dlq))
}

/**
 * The tail's type filter: words with `*` are event type globs (social.*, as `tektree tail` takes
 * them), other words match types containing them (liked). Empty: every type.
 */
export function tailFilter(filter: string): {globs: string[]; words: string[]} {
  const all = filter.split(/[\s,]+/).filter(Boolean)
  return {globs: all.filter((w) => w.includes('*')), words: all.filter((w) => !w.includes('*')).map((w) => w.toLowerCase())}
}

// ---------------------------------------------------------------------------------------------
// Panels
// ---------------------------------------------------------------------------------------------

function header(data: DashboardData, ui: UiState): Line[] {
  const {bus, store} = data.runtime
  const first: Line = [
    {text: 'tektree dashboard', tone: 'bold'},
    {text: `  bus ${bus.kind} ${maskUrl(bus.location)}  store ${store.kind} ${maskUrl(store.location)}`},
  ]
  const since = data.runtimeStartedAt ?? (data.processes.length > 0 ? Math.min(...data.processes.map((p) => p.startedAt)) : null)
  const workers = data.processes.reduce((n, p) => n + p.workers, 0)
  const roles = new Map<string, number>()
  for (const p of data.processes) roles.set(p.role, (roles.get(p.role) ?? 0) + 1)
  const who = [...roles].map(([role, n]) => (n > 1 ? `${role} x${n}` : role)).join(', ')
  const second: Line = [{text: `up ${since === null ? '-' : formatAge(Math.max(0, data.now - since))}`}]
  if (data.processes.length === 0) second.push({text: '  no process shares metrics yet: start tektree simulate or tektree services', tone: 'dim'})
  else second.push({text: `  ${data.processes.length} process${data.processes.length === 1 ? '' : 'es'} (${who})  ${workers} worker${workers === 1 ? '' : 's'}`})
  if (ui.paused) second.push({text: '  PAUSED', tone: 'warn'})
  return [first, second]
}

function throughput(data: DashboardData, width: number): Line[] {
  const lines: Line[] = []
  for (const [label, now, values] of [
    ['in ', data.rates?.inPerSec ?? null, data.series.in],
    ['out', data.rates?.outPerSec ?? null, data.series.out],
  ] as const) {
    const head = `${label} ${right(perSec(now), 7)}/s  `
    const room = Math.max(0, width - head.length - 8)
    const shown = values.slice(-room)
    const span = formatAge(shown.length * data.seriesBucketSeconds * 1000)
    lines.push([{text: label === 'in ' ? 'IN ' : 'OUT', tone: 'bold'}, {text: head.slice(3)}, {text: sparkline(shown)}, {text: ` ${span}`, tone: 'dim'}])
  }
  return lines
}

function latencyLine(label: string, summary: LatencySummary, target: number): Line {
  const head: Line = [{text: left(label, 9), tone: 'bold'}]
  if (summary.count === 0) return [...head, {text: `p50 -  p95 -  p99 -  target p95 < ${target}ms  (no events in 10s)`, tone: 'dim'}]
  const over = summary.p95 >= target
  return [
    ...head,
    {text: `p50 ${left(ms(summary.p50), 7)} p95 `},
    {text: left(ms(summary.p95), 7), tone: over ? 'bad' : 'ok'},
    {text: ` p99 ${left(ms(summary.p99), 7)} target p95 < ${target}ms `},
    {text: over ? 'OVER' : 'ok', tone: over ? 'bad' : 'ok'},
  ]
}

function latency(data: DashboardData): Line[] {
  return [latencyLine('publish', data.latency.publish, PUBLISH_P95_TARGET_MS), latencyLine('delivery', data.latency.delivery, DELIVERY_P95_TARGET_MS)]
}

const trendTone = (trend: LagRow['trend']): Tone | undefined => (trend === 'growing' ? 'warn' : trend === 'shrinking' ? 'ok' : undefined)

/** Group rows of `width`: name, lag, pending, oldest, in/s, out/s, trend, ETA. */
function groupColumns(width: number) {
  const fixed = 8 + 8 + 7 + 7 + 7 + 11 + 7
  return {name: Math.max(8, width - fixed - 2)}
}

function groupHead(width: number, title = 'GROUP'): Line {
  const {name} = groupColumns(width)
  return [{text: `  ${left(title, name)}${right('LAG', 8)}${right('PENDING', 8)}${right('OLDEST', 7)}${right('IN/s', 7)}${right('OUT/s', 7)}  ${left('TREND', 9)}${right('ETA', 7)}`, tone: 'bold'}]
}

function groupRow(row: LagRow, name: string, width: number, selected: boolean): Line {
  const cols = groupColumns(width)
  const cells: Line = [
    {text: `${selected ? '>' : ' '} ${left(name, cols.name)}${right(count(row.lag), 8)}${right(count(row.pending), 8)}${right(age(row.oldestPendingAgeMs), 7)}${right(perSec(row.inPerSec), 7)}${right(perSec(row.outPerSec), 7)}  `},
    {text: left(row.trend ?? '-', 9), tone: trendTone(row.trend)},
    {text: right(row.etaMs === null ? '-' : formatAge(row.etaMs), 7)},
  ]
  return selected ? cells.map((s) => ({...s, tone: 'selected' as const})) : cells
}

interface Panel {
  id: PanelId
  /** Lines always shown with the panel (its title). */
  head: Line[]
  rows: Line[]
  /** Rows kept when shrinking (the panel stays, smaller). */
  minRows: number
  /** The row to keep in sight when rows are cut. */
  selected?: number
  /** The title once it is known how many rows are shown. */
  title?: (shown: number, total: number) => Line[]
}

function groupsPanel(data: DashboardData, ui: UiState, width: number): Panel {
  const rows = visibleGroups(data, ui)
  const filter = ui.filters.overview ? `  filter "${ui.filters.overview}"${ui.editing ? '_' : ''}` : ui.editing ? '  filter _' : ''
  const body: Line[] = rows.map((row, i) => groupRow(row, row.group, width, i === ui.groupIndex))
  if (data.lagError) body.unshift([{text: `  lag unknown: ${data.lagError}`, tone: 'bad'}])
  else if (rows.length === 0) body.push([{text: data.groups.length === 0 ? '  no consumer group has read from this bus yet' : '  no group matches the filter', tone: 'dim'}])
  return {
    id: 'groups',
    head: [],
    rows: body,
    minRows: 1,
    selected: data.lagError ? ui.groupIndex + 1 : ui.groupIndex,
    title: (shown, total) => {
      const head = groupHead(width, `GROUPS${total > shown ? ` (${shown} of ${total})` : ''}`)
      return filter ? [[...head, {text: filter, tone: 'warn'}]] : [head]
    },
  }
}

function dlqTitle(data: DashboardData): Line {
  if (!data.dlq) return [{text: 'DLQ', tone: 'bold'}, {text: ' reading...', tone: 'dim'}]
  const over = data.dlq.total > data.dlq.threshold
  return [
    {text: 'DLQ ', tone: 'bold'},
    {text: count(data.dlq.total), tone: over ? 'bad' : data.dlq.total > 0 ? 'warn' : 'ok'},
    {text: ` entries, alert above ${data.dlq.threshold}${over ? ': OVER' : ''}`, tone: over ? 'bad' : undefined},
  ]
}

function causeRow(c: DlqCause, width: number, selected: boolean): Line {
  const line: Line = [{text: `${selected ? '>' : ' '} ${right(count(c.count), 6)}  ${c.group}  ${c.event_type ?? '(unparsed)'}  ${c.code}  ${c.message}`}]
  return selected ? fit(line, width).map((seg) => ({...seg, tone: 'selected' as const})) : line
}

function dlqPanel(data: DashboardData, width: number): Panel {
  const causes = data.dlq?.causes ?? []
  return {id: 'dlq', head: [dlqTitle(data)], rows: causes.slice(0, 5).map((c) => causeRow(c, width, false)), minRows: 0}
}

function typesPanel(data: DashboardData, width: number): Panel {
  const name = Math.max(10, Math.min(44, width - 22))
  return {
    id: 'types',
    head: [[{text: `${left('EVENTS BY TYPE', name)}${right('/s', 9)}${right('TOTAL', 10)}`, tone: 'bold'}]],
    rows:
      data.types.length === 0
        ? [[{text: 'no events published by a process sharing metrics', tone: 'dim'}]]
        : data.types.map((t) => [{text: `${left(t.type, name)}${right(perSec(t.perSec), 9)}${right(count(t.total), 10)}`}]),
    // The two busiest stay while there is room for them; then the panel goes whole.
    minRows: 2,
  }
}

/** Rows `start..start+n` of a list, `n` rows around `selected`. */
function window(rows: Line[], n: number, selected: number | undefined): Line[] {
  if (rows.length <= n) return rows
  const sel = Math.max(0, Math.min(rows.length - 1, selected ?? 0))
  const start = Math.max(0, Math.min(rows.length - n, sel - Math.floor(n / 2)))
  return rows.slice(start, start + n)
}

function layout(fixed: Section[], panels: Panel[], avail: number): {sections: Section[]; dropped: PanelId[]} {
  const fixedLines = fixed.reduce((n, s) => n + s.lines.length, 0)
  const headOf = (p: Panel) => (p.title ? 1 : p.head.length)
  const shown = new Map(panels.map((p) => [p.id, p.rows.length]))
  const kept = new Set(panels.map((p) => p.id))
  const total = () => fixedLines + panels.filter((p) => kept.has(p.id)).reduce((n, p) => n + headOf(p) + shown.get(p.id)!, 0)
  const dropped: PanelId[] = []
  for (const [id, how] of LAYOUT_STEPS) {
    const excess = total() - avail
    if (excess <= 0) break
    const p = panels.find((x) => x.id === id)
    if (!p || !kept.has(id)) continue
    if (how === 'shrink') shown.set(id, Math.max(Math.min(p.minRows, p.rows.length), shown.get(id)! - excess))
    else {
      kept.delete(id)
      dropped.push(id)
    }
  }
  const sections = [...fixed]
  for (const p of panels) {
    if (!kept.has(p.id)) continue
    const n = shown.get(p.id)!
    const head = p.title ? p.title(n, p.rows.length) : p.head
    sections.push({id: p.id, lines: [...head, ...window(p.rows, n, p.selected)]})
  }
  return {sections, dropped}
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

function groupView(data: DashboardData, ui: UiState, width: number, avail: number): Section[] {
  const name = ui.openGroup ?? ''
  const summary = data.groups.find((g) => g.group === name)
  const consumers = data.consumers[name] ?? []
  const title: Line = [{text: name, tone: 'bold'}]
  if (summary) {
    title.push({text: `  lag ${count(summary.lag)}  pending ${count(summary.pending)}  oldest ${age(summary.oldestPendingAgeMs)}  `})
    title.push({text: summary.trend ?? '-', tone: trendTone(summary.trend)})
    title.push({text: `  ETA ${summary.etaMs === null ? '-' : formatAge(summary.etaMs)}`})
  } else title.push({text: '  (not on the bus now)', tone: 'dim'})
  const rows: Line[] = []
  for (const row of data.groupRows.filter((r) => r.group === name)) {
    // A partition with nothing waiting and nothing moving says nothing: its topic row stands for it.
    if (row.partition !== null && row.lag === 0 && row.pending === 0 && !row.inPerSec && !row.outPerSec) continue
    const label = row.partition === null ? row.topic : `  p${row.partition} ${row.consumers[0] ?? '(no owner)'}`
    rows.push(groupRow(row, label, width, false))
  }
  const consumerLines: Line[] = [[{text: `CONSUMERS (${consumers.length})`, tone: 'bold'}, {text: `${' '.repeat(4)}pending, idle`, tone: 'dim'}]]
  // One gone (crashed) is listed while it holds pending entries, as gone.
  for (const c of consumers) consumerLines.push(c.live ? [{text: `  ${c.name}  ${count(c.pending)}  ${formatAge(c.idleMs)}`}] : [{text: `  ${c.name}  ${count(c.pending)}  gone`, tone: 'dim'}])
  if (consumers.length === 0) consumerLines.push([{text: '  none', tone: 'dim'}])
  // The consumers keep up to a third of the room; the topic and partition rows get the rest.
  const consumerRoom = Math.min(consumerLines.length, Math.max(2, Math.floor((avail - 2) / 3)))
  const rowRoom = Math.max(0, avail - 2 - consumerRoom)
  const shownRows = rows.slice(0, rowRoom)
  const more = rows.length - shownRows.length
  if (more > 0) title.push({text: `  (+${more} rows)`, tone: 'dim'})
  const head = groupHead(width, 'TOPIC / PARTITION')
  return [
    {id: 'group', lines: [title, head, ...shownRows]},
    {id: 'group', lines: consumerLines.slice(0, consumerRoom)},
  ]
}

function causesView(data: DashboardData, ui: UiState, width: number, avail: number): Section[] {
  const causes = visibleCauses(data, ui)
  const filter: Line = ui.filters.dlq || ui.editing ? [{text: `  filter "${ui.filters.dlq}${ui.editing ? '_' : ''}"`, tone: 'warn'}] : []
  const head: Line[] = [[...dlqTitle(data), ...filter], [{text: `  ${right('COUNT', 6)}  GROUP  TYPE  CODE  MESSAGE (ids and numbers masked)`, tone: 'bold'}]]
  const rows = causes.map((c, i) => causeRow(c, width, i === ui.causeIndex))
  if (rows.length === 0) rows.push([{text: data.dlq && data.dlq.total > 0 ? '  no cause matches the filter' : '  the DLQ is empty', tone: 'dim'}])
  return [{id: 'causes', lines: [...head, ...window(rows, Math.max(1, avail - head.length), ui.causeIndex)]}]
}

function entryView(data: DashboardData, ui: UiState, avail: number): Section[] {
  const e = data.entry
  if (!e) return [{id: 'entry', lines: [[{text: 'DLQ entry', tone: 'bold'}], [{text: ui.openCause ? 'reading...' : 'no entry', tone: 'dim'}]]}]
  const field = (name: string, value: string, tone?: Tone): Line => [{text: left(name, 14), tone: 'dim'}, {text: value, tone}]
  const lines: Line[] = [
    [{text: 'DLQ entry ', tone: 'bold'}, {text: e.id}],
    field('group', e.group),
    field('event type', e.event_type ?? '(unparsed)'),
    field('error', `${e.error.error.code}: ${e.error.error.message}`, 'bad'),
    field('attempts', String(e.attempts)),
    field('failed', `${e.first_failure_at} .. ${e.last_failure_at}`),
    field('topic', `${e.topic} p${e.partition} ${e.delivery_id}`),
  ]
  if (ui.confirm) lines.push([{text: `Retry ${e.id}? It goes back to ${e.group} only, as \`tektree dlq retry\` sends it. y / n`, tone: 'warn'}])
  const body = e.envelope ? JSON.stringify(e.envelope.payload ?? e.envelope, null, 1) : e.raw
  const room = Math.max(0, avail - lines.length - 1)
  const bodyLines = body.split('\n')
  lines.push([{text: e.envelope ? 'payload' : 'raw bytes', tone: 'bold'}])
  for (const text of bodyLines.slice(0, room)) lines.push([{text: text.replace(/\t/g, ' ')}])
  return [{id: 'entry', lines}]
}

function tailView(data: DashboardData, ui: UiState, avail: number): Section[] {
  const filter = ui.filters.tail
  const title: Line = [{text: 'TAIL ', tone: 'bold'}, {text: filter || ui.editing ? `type filter "${filter}${ui.editing ? '_' : ''}"` : 'every type (/ to filter)', tone: filter ? 'warn' : 'dim'}, {text: '  newest last', tone: 'dim'}]
  const lines: Line[] = [title]
  if (data.tail.error) lines.push([{text: data.tail.error, tone: 'bad'}])
  const shown = data.tail.lines.slice(-Math.max(0, avail - lines.length))
  if (shown.length === 0) lines.push([{text: 'waiting for events...', tone: 'dim'}])
  for (const t of shown) {
    const time = new Date(t.at).toISOString().slice(11, 23)
    lines.push([{text: `${time}  `, tone: 'dim'}, {text: left(t.type, 36)}, {text: `  ${t.key.slice(0, 8).padEnd(8)}  ${shortEventId(t.id).padEnd(8)}  p${t.partition}`}])
  }
  return [{id: 'tail', lines}]
}

const HELP_KEYS: Array<[string, string]> = [
  ['j / k, arrows', 'move the selection'],
  ['Enter', 'open: a group (its partitions and consumers), a DLQ cause (an entry)'],
  ['Esc', 'back; while typing a filter: clear it'],
  ['Tab / Shift+Tab', 'next / previous view: overview, DLQ, tail'],
  ['/', 'filter: groups (overview), causes (DLQ), event types (tail: social.*)'],
  ['r', 'on a DLQ entry: retry it (asks first; as tektree dlq retry)'],
  ['space', 'pause / resume updates'],
  ['?', 'this help'],
  ['q, Ctrl+C', 'quit'],
]

function helpView(): Section[] {
  const lines: Line[] = [[{text: 'KEYS', tone: 'bold'}]]
  for (const [keys, what] of HELP_KEYS) lines.push([{text: `  ${left(keys, 17)}`, tone: 'bold'}, {text: what}])
  lines.push([{text: ''}])
  lines.push([{text: 'Figures: every process that shares metrics on this runtime (simulate, services, demo),', tone: 'dim'}])
  lines.push([{text: 'read from the bus topic tektree.metrics; lag and the DLQ are read from the bus and store.', tone: 'dim'}])
  return [{id: 'help', lines}]
}

export function helpLine(ui: UiState): Line {
  const keys = (text: string): Line => [{text, tone: 'dim'}]
  if (ui.help) return keys('? or Esc close help  q quit')
  if (ui.editing) return keys('type a filter  Enter keep it  Esc clear it')
  if (ui.confirm) return keys('y retry this entry  n / Esc cancel')
  switch (ui.view) {
    case 'overview':
      return keys('j/k move  Enter open  Tab view  / filter  space pause  ? help  q quit')
    case 'group':
      return keys('Esc back  Tab view  space pause  ? help  q quit')
    case 'dlq':
      return keys('j/k move  Enter entry  / filter  Tab view  Esc back  ? help  q quit')
    case 'entry':
      return keys('r retry  Esc back  space pause  ? help  q quit')
    case 'tail':
      return keys('/ type filter  space pause  Tab view  Esc back  ? help  q quit')
  }
}

/**
 * A line as it may reach the terminal: types, ids, messages and bytes from the bus (the tail, the
 * DLQ) show their control characters escaped, so none of them drives the terminal (Ink prints them).
 */
const shown = (line: Line): Line => line.map((seg) => ({...seg, text: printable(seg.text)}))

/** The screen for `data` and `ui` on a terminal of `columns` x `rows`. */
export function buildViewModel(data: DashboardData, ui: UiState, size: {columns: number; rows: number}, options: {color?: boolean} = {}): ViewModel {
  const width = Math.max(20, size.columns)
  const height = Math.max(5, size.rows)
  const head: Section = {id: 'header', lines: header(data, ui)}
  const notice: Line | null = data.notice ? fit(shown([{text: data.notice, tone: 'warn'}]), width) : null
  const avail = height - 1 - (notice ? 1 : 0)
  let sections: Section[]
  let dropped: PanelId[] = []
  if (ui.help) sections = [head, ...helpView()]
  else if (ui.view === 'overview') {
    const fixed = [head]
    const panels = [
      {id: 'throughput' as const, head: throughput(data, width), rows: [], minRows: 0},
      {id: 'latency' as const, head: latency(data), rows: [], minRows: 0},
      groupsPanel(data, ui, width),
      dlqPanel(data, width),
      typesPanel(data, width),
    ]
    ;({sections, dropped} = layout(fixed, panels, avail))
  } else if (ui.view === 'group') sections = [head, ...groupView(data, ui, width, avail - head.lines.length)]
  else if (ui.view === 'dlq') sections = [head, ...causesView(data, ui, width, avail - head.lines.length)]
  else if (ui.view === 'entry') sections = [head, ...entryView(data, ui, avail - head.lines.length)]
  else sections = [head, ...tailView(data, ui, avail - head.lines.length)]

  // Whatever a view produced: control characters shown, no line wider than the terminal, no more lines than it has.
  let room = avail
  const fitted: Section[] = []
  for (const s of sections) {
    if (room <= 0) break
    const lines = s.lines.slice(0, room).map((l) => fit(shown(l), width))
    room -= lines.length
    fitted.push({id: s.id, lines})
  }
  return {width, height, color: Boolean(options.color), view: ui.view, sections: fitted, notice, help: fit(helpLine(ui), width), dropped}
}
