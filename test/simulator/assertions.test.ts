import {describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {evaluateThresholds, exitCodeFor, needsVerify, parseThreshold, parseThresholds} from '../../src/simulator/assertions.js'

describe('threshold grammar', () => {
  it.each([
    ['delivery_p95<100ms', 'delivery_p95', '<', 100],
    ['delivery_p95 < 0.1s', 'delivery_p95', '<', 100],
    ['publish_p99<=10ms', 'publish_p99', '<=', 10],
    ['  dlq == 0 ', 'dlq', '==', 0],
    ['dlq=0', 'dlq', '==', 0],
    ['retries != 3', 'retries', '!=', 3],
    ['throughput >= 1000', 'throughput', '>=', 1000],
    ['throughput_total>1500.5', 'throughput_total', '>', 1500.5],
    ['max_backlog < 10000', 'max_backlog', '<', 10000],
    ['delivery_error_pct < 1%', 'delivery_error_pct', '<', 1],
    ['verify_differences == 0', 'verify_differences', '==', 0],
    ['publish_p50 < 5', 'publish_p50', '<', 5],
    ['errors > -1', 'errors', '>', -1],
  ])('parses %s', (source, metric, op, value) => {
    expect(parseThreshold(source)).toMatchObject({metric, op, value})
  })

  it.each([
    ['latency_p95 < 100ms', /unknown metric "latency_p95"/],
    ['delivery_p95 100ms', /expected metric, operator/],
    ['delivery_p95 << 100', /expected metric, operator/],
    ['delivery_p95 < fast', /expected metric, operator/],
    ['dlq < 5ms', /dlq is not a duration/],
    ['throughput > 5%', /throughput is not a percentage/],
    ['delivery_p95 < 100 ms extra', /expected metric, operator/],
    ['', /expected metric, operator/],
    ['DLQ == 0', /expected metric/],
  ])('rejects %j with exit code 2', (source, message) => {
    let error: unknown
    try {
      parseThreshold(source)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(UserError)
    expect((error as UserError).exitCode).toBe(2)
    expect((error as UserError).message).toMatch(message)
  })
})

describe('evaluation', () => {
  const thresholds = parseThresholds(['delivery_p95<100ms', 'dlq == 0', 'throughput >= 1000', 'retries > 0', 'max_backlog <= 10', 'events != 5'])

  it('all hold -> exit 0', () => {
    const results = evaluateThresholds(thresholds, {delivery_p95: 99.9, dlq: 0, throughput: 1000, retries: 1, max_backlog: 10, events: 6})
    expect(results.every((r) => r.ok)).toBe(true)
    expect(exitCodeFor(results)).toBe(0)
    expect(exitCodeFor([])).toBe(0)
  })

  it('any failing -> exit 1, listing which', () => {
    const results = evaluateThresholds(thresholds, {delivery_p95: 100, dlq: 2, throughput: 999, retries: 0, max_backlog: 11, events: 5})
    expect(results.filter((r) => !r.ok).map((r) => r.threshold)).toEqual(thresholds.map((t) => t.source))
    expect(results[0].reason).toBe('delivery_p95 was 100ms')
    expect(exitCodeFor(results)).toBe(1)
  })

  it('an unmeasured metric fails, never passes silently', () => {
    const [result] = evaluateThresholds(parseThresholds(['verify_differences == 0']), {verify_differences: null})
    expect(result.ok).toBe(false)
    expect(result.reason).toMatch(/not measured/)
    expect(evaluateThresholds(parseThresholds(['dlq < 1']), {})[0].ok).toBe(false)
  })

  it('knows when verify is needed', () => {
    expect(needsVerify(parseThresholds(['verify_differences == 0']))).toBe(true)
    expect(needsVerify(parseThresholds(['dlq == 0']))).toBe(false)
  })
})
