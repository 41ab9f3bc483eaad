/**
 * k6-like thresholds: `metric op value[unit]`, e.g. `delivery_p95<100ms`, `dlq == 0`,
 * `throughput >= 1000`. A threshold that does not parse or names an unknown metric is an error
 * (exit 2), never silently true; any failing threshold gives exit 1.
 */
import {UserError} from '../errors.js'

export const ASSERT_METRICS = {
  throughput: {unit: 'rate', description: 'simulated events/s achieved'},
  throughput_total: {unit: 'rate', description: 'all events/s incl. derived'},
  publish_p50: {unit: 'ms', description: 'publish latency p50'},
  publish_p95: {unit: 'ms', description: 'publish latency p95'},
  publish_p99: {unit: 'ms', description: 'publish latency p99'},
  delivery_p50: {unit: 'ms', description: 'delivery latency p50'},
  delivery_p95: {unit: 'ms', description: 'delivery latency p95'},
  delivery_p99: {unit: 'ms', description: 'delivery latency p99'},
  dlq: {unit: 'count', description: 'dead-lettered deliveries'},
  retries: {unit: 'count', description: 'retried deliveries'},
  max_backlog: {unit: 'count', description: 'largest backlog seen (lag + pending + outbox)'},
  events: {unit: 'count', description: 'simulated events published'},
  derived_events: {unit: 'count', description: 'events the services derived'},
  duplicates: {unit: 'count', description: 'duplicate deliveries injected or refused'},
  verify_differences: {unit: 'count', description: 'projection differences found by --verify'},
  errors: {unit: 'count', description: 'errors (rejected events, failed publishes)'},
  delivery_error_pct: {unit: 'pct', description: 'dead-lettered as % of delivered'},
} as const

export type AssertMetric = keyof typeof ASSERT_METRICS
export type AssertOp = '<' | '<=' | '>' | '>=' | '==' | '!='

export interface Threshold {
  source: string
  metric: AssertMetric
  op: AssertOp
  /** In the metric's base unit (ms for latencies, percent for %). */
  value: number
}

export interface ThresholdResult {
  threshold: string
  metric: AssertMetric
  actual: number | null
  ok: boolean
  /** Why it failed (including "not measured"). */
  reason?: string
}

const GRAMMAR = /^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|%)?\s*$/

function invalid(source: string, why: string): UserError {
  return new UserError(`Invalid assertion "${source}": ${why}`, {
    code: 'ASSERTION_INVALID',
    exitCode: 2,
    hint: `Write "metric op value[unit]", e.g. "delivery_p95<100ms". Metrics: ${Object.keys(ASSERT_METRICS).join(', ')}.`,
  })
}

export function parseThreshold(source: string): Threshold {
  const match = GRAMMAR.exec(source)
  if (!match) throw invalid(source, 'expected metric, operator (< <= > >= = == !=) and a number')
  const [, name, rawOp, rawValue, unit] = match
  if (!(name in ASSERT_METRICS)) throw invalid(source, `unknown metric "${name}"`)
  const metric = name as AssertMetric
  const kind = ASSERT_METRICS[metric].unit
  const op = (rawOp === '=' ? '==' : rawOp) as AssertOp
  let value = Number(rawValue)
  if (unit === 'ms' || unit === 's') {
    if (kind !== 'ms') throw invalid(source, `${metric} is not a duration; drop the "${unit}"`)
    if (unit === 's') value *= 1000
  } else if (unit === '%') {
    if (kind !== 'pct') throw invalid(source, `${metric} is not a percentage; drop the "%"`)
  }
  return {source: source.trim(), metric, op, value}
}

export function parseThresholds(sources: readonly string[]): Threshold[] {
  return sources.map(parseThreshold)
}

function compare(actual: number, op: AssertOp, value: number): boolean {
  switch (op) {
    case '<':
      return actual < value
    case '<=':
      return actual <= value
    case '>':
      return actual > value
    case '>=':
      return actual >= value
    case '==':
      return actual === value
    case '!=':
      return actual !== value
  }
}

/** Evaluates each threshold; a metric that was not measured (null) fails rather than passing. */
export function evaluateThresholds(thresholds: readonly Threshold[], values: Partial<Record<AssertMetric, number | null>>): ThresholdResult[] {
  return thresholds.map((t) => {
    const actual = values[t.metric]
    if (actual === undefined || actual === null || Number.isNaN(actual)) {
      return {threshold: t.source, metric: t.metric, actual: null, ok: false, reason: `${t.metric} was not measured in this run`}
    }
    const ok = compare(actual, t.op, t.value)
    return ok
      ? {threshold: t.source, metric: t.metric, actual, ok}
      : {threshold: t.source, metric: t.metric, actual, ok, reason: `${t.metric} was ${formatValue(t.metric, actual)}`}
  })
}

export function formatValue(metric: AssertMetric, value: number): string {
  const kind = ASSERT_METRICS[metric].unit
  if (kind === 'ms') return `${Math.round(value * 100) / 100}ms`
  if (kind === 'pct') return `${Math.round(value * 100) / 100}%`
  if (kind === 'rate') return `${Math.round(value * 10) / 10}/s`
  return String(value)
}

/** 0 when all hold (or none given), 1 when any fails. */
export function exitCodeFor(results: readonly ThresholdResult[]): 0 | 1 {
  return results.every((r) => r.ok) ? 0 : 1
}

/** Whether any threshold needs the projections verified. */
export function needsVerify(thresholds: readonly Threshold[]): boolean {
  return thresholds.some((t) => t.metric === 'verify_differences')
}
