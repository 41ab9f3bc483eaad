/**
 * The simulation report: one object (written with --report FILE.json and returned by --json) and a
 * summary table for people.
 */
import {accessSync, constants, existsSync, statSync, writeFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {columns, createStyle, stripAnsi, truncate, visibleWidth, type Style} from '../cli/style.js'
import type {LatencySummary} from '../core/metrics.js'
import type {AssertMetric, ThresholdResult} from './assertions.js'
import {fellShort, RATE_TOLERANCE} from './rate.js'

export interface VerifySummary {
  checked: number
  differences: number
  /** The first few differences, as found. */
  sample: Array<{projection: string; id: string; field: string; expected: unknown; actual: unknown}>
  /** Events the oracle read from the archive (archived out of the store), when there was one. */
  archived?: number
}

export interface SimulationReport {
  scenario: {name: string; description: string; source: string}
  seed: number | null
  /** Mixed into a seeded run's event ids: the same seed and run id give the same events. */
  runId: string
  runtime: string
  services: string[]
  /** Worker threads the services ran in (0: on the simulator's own thread). */
  workers: number
  /** Workers started again after one died. */
  workerRestarts: number
  startedAt: string
  /** Generation time (ms), drain time and the whole run. */
  durationMs: number
  drainMs: number
  totalMs: number
  interrupted: boolean
  drained: boolean
  /** Why the drain did not finish (absent when it did). */
  notDrained?: string
  /** Why verify, asked for, did not run ("not drained", "failed: ..."); absent when it ran or was not asked for. */
  verifySkipped?: string
  rate: {
    /** What the profile asked for over the generation time (events/s). */
    target: number
    /** Simulated events/s achieved. */
    achieved: number
    /** All events (simulated + derived) per second over the whole run incl. drain. */
    achievedTotal: number
    /** The run as a whole came in more than `tolerance` under the plan (on the rounded rates). */
    fellBehind: boolean
    /** Fraction under the planned rate that still counts as holding it. */
    tolerance: number
    /** Some 2 s window fell short of the plan by more than the tolerance, whether or not the run caught up. */
    behindAtTimes: boolean
    /** Time the generator was paused because the backlog was over its bound (backpressure). */
    heldBackMs: number
    /** Events that fell due but were not generated: while held back, or still owed at the planned end. */
    notGenerated: number
    /** The backlog bound the generator was held to (0 = none). */
    maxBacklog: number
  }
  events: {
    simulated: number
    derived: number
    total: number
    rejected: number
    duplicatesRefused: number
    byType: Record<string, number>
    steps: Record<string, number>
  }
  faults: {
    poison: number
    duplicates: number
    reordered: number
    transientFailures: number
    permanentFailures: number
    consumerCrashes: number
  }
  /**
   * publish and delivery: what the assertions judge. With a warm-up the run got past, those after
   * it (warmupMs), and the whole run's in wholeRun; a run that ended inside its warm-up gives the
   * whole run's and warmupNotOver.
   */
  latency: {
    publish: LatencySummary
    delivery: LatencySummary
    warmupMs: number
    wholeRun?: {publish: LatencySummary; delivery: LatencySummary}
    warmupNotOver?: number
  }
  /**
   * staleReads: handled deliveries left out of their commit because a document they read had been
   * written by another process since (STALE_READ); the bus brought them again. Only ever with two
   * or more processes of one group on one store.
   */
  deliveries: {delivered: number; acked: number; retried: number; deadLettered: number; staleReads: number}
  dlq: number
  retries: number
  maxBacklog: number
  /** The services' backlog kept growing while load was generated: they could not keep up. */
  servicesFellBehind: boolean
  errors: string[]
  verify: VerifySummary | null
  assertions: ThresholdResult[]
}

/** The values thresholds are checked against. null = not measured (fails any threshold on it). */
export function assertionValues(report: SimulationReport): Record<AssertMetric, number | null> {
  const delivered = report.deliveries.delivered
  return {
    throughput: report.rate.achieved,
    throughput_total: report.rate.achievedTotal,
    publish_p50: report.latency.publish.count > 0 ? report.latency.publish.p50 : null,
    publish_p95: report.latency.publish.count > 0 ? report.latency.publish.p95 : null,
    publish_p99: report.latency.publish.count > 0 ? report.latency.publish.p99 : null,
    delivery_p50: report.latency.delivery.count > 0 ? report.latency.delivery.p50 : null,
    delivery_p95: report.latency.delivery.count > 0 ? report.latency.delivery.p95 : null,
    delivery_p99: report.latency.delivery.count > 0 ? report.latency.delivery.p99 : null,
    dlq: report.dlq,
    retries: report.retries,
    max_backlog: report.maxBacklog,
    events: report.events.simulated,
    derived_events: report.events.derived,
    duplicates: report.faults.duplicates + report.events.duplicatesRefused,
    verify_differences: report.verify ? report.verify.differences : null,
    errors: report.errors.length + report.events.rejected,
    delivery_error_pct: delivered > 0 ? (report.deliveries.deadLettered / delivered) * 100 : null,
  }
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 2 : 1)} ms`)
const n = (v: number) => Math.round(v).toLocaleString('en-US')
/** A span set in whole seconds reads as such: "10 s", not "10.00 s". */
const seconds = (v: number) => (v % 1000 === 0 ? `${n(v / 1000)} s` : ms(v))

export function emptyLatency(): LatencySummary {
  return {count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0}
}

/** The throughput line: the verdict is taken from the figures printed beside it, with the tolerance. */
function throughput(rate: SimulationReport['rate'], style: Style): string {
  const tolerance = rate.tolerance ?? RATE_TOLERANCE
  const pct = `${Math.round(tolerance * 100)}%`
  const figures = `${n(rate.achieved)}/s simulated (plan ${n(rate.target)}/s on average`
  if (fellShort(rate.achieved, rate.target, tolerance)) {
    const short = Math.round((1 - Math.round(rate.achieved) / Math.round(rate.target)) * 100)
    return `${figures}): ${style.bad('FELL BEHIND')} by ${short}% (more than ${pct})`
  }
  return `${figures}, within ${pct}${rate.behindAtTimes ? '; behind at times, caught up' : ''})`
}

/** Event types listed by volume in the summary; the rest are in --json and --report FILE. */
export const TOP_TYPES = 6

/**
 * The summary for people, fitted to `style.width` (80 columns off a terminal) and ordered so what
 * matters is on screen at the end: the busiest event types first, then the figures, then the
 * assertions. Long values wrap under their column; the per-type table keeps its top TOP_TYPES.
 */
export function renderSummary(report: SimulationReport, style: Style = createStyle({isTTY: false}, {color: false}), options: {reportPath?: string} = {}): string {
  const lat = (l: LatencySummary) => (l.count === 0 ? 'n/a' : `p50 ${ms(l.p50)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  max ${ms(l.max)}`)
  const rows: Array<[string, string]> = [
    ['Scenario', `${report.scenario.name}${report.seed !== null ? `  (seed ${report.seed})` : ''}`],
    ['Runtime', report.runtime],
    ['Services', report.services.length > 0 ? `${report.services.join(', ')}${report.workers > 0 ? `  (${report.workers} worker thread${report.workers > 1 ? 's' : ''}${report.workerRestarts > 0 ? `, ${report.workerRestarts} restarted` : ''})` : ''}` : 'none'],
    ['Duration', `${ms(report.durationMs)} generating + ${ms(report.drainMs)} draining${report.interrupted ? '  (interrupted)' : ''}`],
    ['Throughput', throughput(report.rate, style)],
  ]
  if (report.rate.notGenerated > 0 || report.rate.heldBackMs > 0) {
    const why = report.rate.heldBackMs > 0 ? `held back ${ms(report.rate.heldBackMs)} with the backlog over ${n(report.rate.maxBacklog)}` : 'the generator could not keep up'
    rows.push(['Not generated', `${n(report.rate.notGenerated)} events of the plan (${why}); the rate above is what was sustained`])
  }
  rows.push(
    ['Throughput (all)', `${n(report.rate.achievedTotal)}/s incl. derived`],
    ['Events', `${n(report.events.simulated)} simulated + ${n(report.events.derived)} derived = ${n(report.events.total)}${report.events.rejected ? `, ${n(report.events.rejected)} rejected` : ''}`],
    ['Publish latency', lat(report.latency.publish)],
    ['Delivery latency', lat(report.latency.delivery)],
  )
  const {wholeRun, warmupMs, warmupNotOver} = report.latency
  if (wholeRun) {
    rows.push([
      'Warm-up',
      `the first ${seconds(warmupMs)} left out of the latencies above; with it, p95 publish ${ms(wholeRun.publish.p95)}, delivery ${ms(wholeRun.delivery.p95)}`,
    ])
  } else if (warmupNotOver) rows.push(['Warm-up', style.warn(`not over (${seconds(warmupNotOver)}): the latencies above are the whole run's`)])
  rows.push(
    ['Deliveries', `${n(report.deliveries.delivered)} delivered, ${n(report.deliveries.acked)} acked, ${n(report.retries)} retries, ${report.dlq > 0 ? style.bad(`${n(report.dlq)} to DLQ`) : `${n(report.dlq)} to DLQ`}${report.deliveries.staleReads > 0 ? `, ${n(report.deliveries.staleReads)} stale reads handled again` : ''}`],
    ['Max backlog', `${n(report.maxBacklog)}${report.servicesFellBehind ? `  ${style.bad('SERVICES FELL BEHIND')} (the backlog kept growing during generation)` : ''}`],
  )
  const f = report.faults
  if (f.poison + f.duplicates + f.reordered + f.transientFailures + f.permanentFailures + f.consumerCrashes > 0) {
    rows.push([
      'Faults',
      `${n(f.poison)} poison, ${n(f.duplicates)} duplicates, ${n(f.reordered)} reordered, ${n(f.transientFailures)} transient + ${n(f.permanentFailures)} permanent handler failures, ${n(f.consumerCrashes)} consumer crashes`,
    ])
  }
  if (report.verify) {
    const found = `${n(report.verify.differences)} differences`
    const archived = report.verify.archived ? ` (events from the archive too: ${n(report.verify.archived)})` : ''
    rows.push(['Verify', `${n(report.verify.checked)} checked, ${report.verify.differences > 0 ? style.bad(found) : found}${archived}`])
  }
  if (!report.drained) rows.push(['Drain', style.warn('did not finish: some events were still in flight when the wait ended')])
  for (const error of report.errors.slice(0, 5)) rows.push(['Error', style.bad(error)])
  // Those that hold share one row; each failure gets its own, with the value measured.
  const held = report.assertions.filter((a) => a.ok)
  if (held.length > 0) rows.push(['Assertions', `${style.ok(`${held.length === report.assertions.length ? 'all ' : ''}${held.length} hold`)}: ${held.map((a) => a.threshold).join(', ')}`])
  for (const a of report.assertions.filter((x) => !x.ok)) {
    const actual = a.actual === null ? 'not measured' : `actual ${Math.round(a.actual * 100) / 100}`
    rows.push(['Assertion', `${a.threshold}: ${style.bad(`FAILED${a.reason ? `: ${a.reason}` : ''}`)} (${actual})`])
  }

  const lines: string[] = []
  const types = Object.entries(report.events.byType).sort((a, b) => b[1] - a[1])
  if (types.length > 0) {
    const rest = types.length - TOP_TYPES
    const where = options.reportPath ? `--json, or ${options.reportPath}` : '--json or --report FILE'
    lines.push(style.bold(rest > 0 ? `Busiest event types (${TOP_TYPES} of ${types.length}; all in ${where})` : 'Event types'))
    const top = types.slice(0, TOP_TYPES).map(([type, count]) => [`  ${truncate(type, style.width - 14)}`, n(count)])
    lines.push(...columns(top))
  }
  const keyWidth = Math.max(...rows.map(([key]) => key.length)) + 2
  const valueWidth = Math.max(20, style.width - keyWidth)
  for (const [key, value] of rows) {
    const wrapped = wrapStyled(value, valueWidth)
    wrapped.forEach((line, i) => lines.push(`${i === 0 ? key.padEnd(keyWidth) : ' '.repeat(keyWidth)}${line}`))
  }
  return lines.join('\n')
}

/** Wraps a value that may carry colour: words are measured by their visible width. */
function wrapStyled(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    const candidate = line === '' ? word : `${line} ${word}`
    if (line !== '' && visibleWidth(candidate) > width) {
      out.push(line)
      line = word
    } else line = candidate
  }
  out.push(line)
  return out.map((l) => (visibleWidth(l) > width ? truncate(stripAnsi(l), width) : l))
}

export function writeReport(path: string, report: SimulationReport): void {
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n')
}

/**
 * Why the report cannot be written to `path` (its folder missing or not writable, a folder in its
 * place), or null: asked before the run, so a long run is not thrown away at its end.
 */
export function reportPathProblem(path: string): string | null {
  const folder = dirname(resolve(path))
  if (!existsSync(folder)) return `the folder ${folder} does not exist`
  if (existsSync(path) && statSync(path).isDirectory()) return `${path} is a folder`
  try {
    accessSync(existsSync(path) ? path : folder, constants.W_OK)
  } catch {
    return `${existsSync(path) ? path : `the folder ${folder}`} is not writable`
  }
  return null
}
