import {describe, expect, it} from 'vitest'
import {evaluateThresholds, parseThresholds} from '../../src/simulator/assertions.js'
import {formatProgress, createProgressWriter} from '../../src/simulator/progress.js'
import {createStyle, stripAnsi, visibleWidth} from '../../src/cli/style.js'
import {fellShort} from '../../src/simulator/rate.js'
import {assertionValues, emptyLatency, renderSummary, type SimulationReport} from '../../src/simulator/report.js'

function report(overrides: Partial<SimulationReport> = {}): SimulationReport {
  return {
    scenario: {name: 'smoke', description: '', source: 'fixtures/scenarios/smoke.yaml'},
    seed: 42,
    runId: 'run-1',
    runtime: 'in-process',
    services: ['gamification'],
    workers: 0,
    workerRestarts: 0,
    startedAt: new Date(0).toISOString(),
    durationMs: 4000,
    drainMs: 500,
    totalMs: 4600,
    interrupted: false,
    drained: true,
    rate: {target: 500, achieved: 498, achievedTotal: 900, fellBehind: false, tolerance: 0.02, behindAtTimes: false, heldBackMs: 0, notGenerated: 0, maxBacklog: 5000},
    events: {simulated: 2000, derived: 2100, total: 4100, rejected: 0, duplicatesRefused: 0, byType: {'user.registered': 300, 'gamification.xp.earned': 900}, steps: {}},
    faults: {poison: 3, duplicates: 10, reordered: 5, transientFailures: 2, permanentFailures: 1, consumerCrashes: 1},
    latency: {publish: {count: 10, p50: 1, p95: 4, p99: 8, max: 9, mean: 2}, delivery: emptyLatency(), warmupMs: 0},
    deliveries: {delivered: 1000, acked: 990, retried: 4, deadLettered: 5, staleReads: 0},
    dlq: 5,
    retries: 4,
    maxBacklog: 120,
    servicesFellBehind: false,
    errors: [],
    verify: null,
    assertions: [],
    ...overrides,
  }
}

/** The summary with wrapped values joined again (values wrap under their column to fit 80). */
const flat = (text: string) => text.replace(/\n +/g, ' ')

describe('report', () => {
  it('maps the report to assertion values; unmeasured ones are null', () => {
    const values = assertionValues(report())
    expect(values.throughput).toBe(498)
    expect(values.throughput_total).toBe(900)
    expect(values.publish_p95).toBe(4)
    expect(values.delivery_p95).toBeNull()
    expect(values.verify_differences).toBeNull()
    expect(values.derived_events).toBe(2100)
    expect(values.delivery_error_pct).toBeCloseTo(0.5)
    const results = evaluateThresholds(parseThresholds(['delivery_p95<100ms', 'publish_p95<10ms']), values)
    expect(results.map((r) => r.ok)).toEqual([false, true])
  })

  it('renders both throughput figures, latencies, faults and failing assertions', () => {
    const text = flat(renderSummary(
      report({
        verify: {checked: 10, differences: 0, sample: []},
        assertions: [{threshold: 'dlq == 0', metric: 'dlq', actual: 5, ok: false, reason: 'dlq was 5'}],
      }),
    ))
    expect(text).toMatch(/498\/s simulated \(plan 500\/s on average, within 2%\)/)
    expect(text).toMatch(/900\/s incl\. derived/)
    expect(text).toMatch(/p95 4\.00 ms/)
    expect(text).toMatch(/3 poison/)
    expect(text).toMatch(/10 checked, 0 differences/)
    expect(text).toMatch(/FAILED: dlq was 5/)
    expect(text).toMatch(/gamification\.xp\.earned/)
    expect(text).not.toMatch(/SERVICES FELL BEHIND/)
    expect(renderSummary(report({maxBacklog: 90_000, servicesFellBehind: true}))).toMatch(/90,000 +SERVICES FELL BEHIND/)
  })

  it('says what a warm-up left out of the latencies, and when a run ended inside it', () => {
    expect(flat(renderSummary(report()))).not.toMatch(/Warm-up/)
    const warmLatency = {publish: {count: 10, p50: 1, p95: 4, p99: 8, max: 9, mean: 2}, delivery: {count: 10, p50: 2, p95: 30, p99: 40, max: 50, mean: 3}}
    const wholeRun = {publish: {...warmLatency.publish, p95: 39}, delivery: {...warmLatency.delivery, p95: 139}}
    const text = renderSummary(report({latency: {...warmLatency, warmupMs: 10_000, wholeRun}}))
    expect(flat(text)).toMatch(/Warm-up +the first 10 s left out of the latencies above; with it, p95 publish 39\.0 ms, delivery 139\.0 ms/)
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
    const notOver = flat(renderSummary(report({latency: {...warmLatency, warmupMs: 0, warmupNotOver: 10_000}})))
    expect(notOver).toMatch(/Warm-up +not over \(10 s\): the latencies above are the whole run's/)
  })

  it('counts stale reads among the deliveries when there were any (two processes of a group)', () => {
    expect(flat(renderSummary(report()))).not.toMatch(/stale/)
    const text = flat(renderSummary(report({deliveries: {delivered: 1000, acked: 990, retried: 4, deadLettered: 5, staleReads: 12}})))
    expect(text).toMatch(/5 to DLQ, 12 stale reads handled again/)
  })

  it('says how much of the plan was not generated, and whether backpressure or the generator was why', () => {
    expect(renderSummary(report())).not.toMatch(/Not generated/)
    const rate = {target: 100_000, achieved: 1800, achievedTotal: 4000, fellBehind: true, tolerance: 0.02, behindAtTimes: true, maxBacklog: 50_000}
    const held = flat(renderSummary(report({rate: {...rate, heldBackMs: 13_700, notGenerated: 1_961_571}})))
    expect(held).toMatch(/1,961,571 events of the plan \(held back 13\.70 s with the backlog over 50,000\)/)
    const slow = flat(renderSummary(report({rate: {...rate, heldBackMs: 0, notGenerated: 4_000}})))
    expect(slow).toMatch(/4,000 events of the plan \(the generator could not keep up\)/)
  })

  it('names the worker threads the services ran in, and restarts', () => {
    expect(renderSummary(report({workers: 2, workerRestarts: 1}))).toMatch(/gamification +\(2 worker threads, 1 restarted\)/)
    expect(renderSummary(report())).not.toMatch(/worker thread/)
  })
})

describe('progress', () => {
  const p = {elapsedMs: 65_000, sent: 1234, targetRate: 1000, achievedRate: 990, processed: 1200, backlog: 34, deliveryP95: 12.345, dlq: 1, etaMs: 5000, behind: false, lagGrowing: false, heldBack: false, phase: 'generating' as const}

  it('while generating: the rate sent against the plan, events (not deliveries), lag, delivery p95, DLQ, ETA, each labelled', () => {
    const line = formatProgress(p)
    expect(line).toBe('1m05s | 990/s of 1,000/s planned | 1,234 events sent | lag 34 | delivery p95 12.3ms | DLQ 1 | ETA 5s')
    // processed counts deliveries (once per group): it is not what "events" shows
    expect(formatProgress({...p, processed: 53_181})).not.toContain('53,181')
    expect(formatProgress({...p, backlog: 40_000, lagGrowing: true})).toContain('lag 40,000 GROWING')
    expect(formatProgress({...p, behind: true, heldBack: true})).toContain('990/s of 1,000/s planned HELD BACK')
  })

  it('while draining: the phase, lag and how long the drain has left, no rate', () => {
    const line = formatProgress({...p, phase: 'draining', backlog: 1204, etaMs: 4000})
    expect(line).toBe('1m05s draining | lag 1,204 | DLQ 1 | ETA ~4s')
    expect(formatProgress({...p, phase: 'draining', etaMs: null})).toContain('ETA ?')
  })

  it('while verifying: the phase and DLQ, no rate', () => {
    expect(formatProgress({...p, phase: 'verifying', etaMs: null})).toBe('1m05s verifying the projections against the event log | DLQ 1')
  })

  it('fits the width by dropping p95, the event count, then the plan; lag, DLQ and ETA stay (80x24)', () => {
    const busy = {...p, sent: 1_234_567, achievedRate: 1999, targetRate: 2000, backlog: 40_000, lagGrowing: true, heldBack: true, behind: true, dlq: 12_345, etaMs: 3_600_000}
    const full = formatProgress(busy)
    expect(full.length).toBeGreaterThan(79)
    const line = formatProgress(busy, {width: 79})
    expect(line.length).toBeLessThanOrEqual(79)
    expect(line).toContain('DLQ 12,345')
    expect(line).toContain('ETA 60m00s')
    expect(line).toContain('lag 40,000 GROWING')
    expect(line).not.toContain('delivery p95')
    expect(line).toBe('1m05s | 1,999/s HELD BACK | lag 40,000 GROWING | DLQ 12,345 | ETA 60m00s')
    for (const phase of ['generating', 'draining', 'verifying'] as const) expect(formatProgress({...busy, phase}, {width: 40}).length).toBeLessThanOrEqual(40)
  })

  it('rewrites one line on a TTY, prints periodic lines otherwise', () => {
    const tty: string[] = []
    const w = createProgressWriter({isTTY: true, columns: 80, write: (s: string) => tty.push(s)}, {style: createStyle({isTTY: true, columns: 80}, {env: {}})})
    w.update({...p, sent: 1_234_567, backlog: 40_000, lagGrowing: true, dlq: 7})
    w.update(p)
    w.done()
    expect(tty[0].startsWith('\r')).toBe(true)
    expect(visibleWidth(tty[0].replace('\r', ''))).toBeLessThanOrEqual(79)
    expect(stripAnsi(tty[0])).toMatch(/DLQ 7 \| ETA 5s$/)
    expect(tty[0]).toContain('\u001b[31m')
    expect(tty.at(-1)).toBe('\n')

    let now = 0
    const plain: string[] = []
    const w2 = createProgressWriter({isTTY: false, write: (s: string) => plain.push(s)}, {everyMs: 2000, now: () => now})
    for (now = 0; now < 5000; now += 500) w2.update(p)
    expect(plain).toHaveLength(3)
    expect(plain.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true)
  })
})

describe('report colour', () => {
  it('follows the style it is given: colour for a terminal, none for a pipe or with NO_COLOR', async () => {
    const {createStyle} = await import('../../src/cli/style.js')
    const r = report({rate: {target: 500, achieved: 300, achievedTotal: 900, fellBehind: true, tolerance: 0.02, behindAtTimes: true, heldBackMs: 0, notGenerated: 0, maxBacklog: 5000}})
    expect(renderSummary(r, createStyle({isTTY: true, columns: 80}, {env: {}}))).toMatch(/\u001b\[/)
    expect(renderSummary(r, createStyle({isTTY: true, columns: 80}, {env: {NO_COLOR: '1'}}))).not.toMatch(/\u001b/)
    expect(renderSummary(r, createStyle({isTTY: false}, {env: {}}))).not.toMatch(/\u001b/)
  })
})

describe('throughput verdict (issue 12, item 16)', () => {
  const rate = (achieved: number, target: number, extra: Partial<SimulationReport['rate']> = {}) =>
    report({rate: {target, achieved, achievedTotal: 900, fellBehind: fellShort(achieved, target), tolerance: 0.02, behindAtTimes: false, heldBackMs: 0, notGenerated: 0, maxBacklog: 5000, ...extra}})

  it('a run that reached its planned rate is never called behind, even if a window lagged on the way', () => {
    expect(fellShort(285, 285)).toBe(false)
    expect(fellShort(284.6, 285.4)).toBe(false)
    // steady: 3 s ramp to 300, then 27 s at 300 = 285/s on average over the plan
    const text = flat(renderSummary(rate(284.7, 285, {behindAtTimes: true})))
    expect(text).toMatch(/285\/s simulated \(plan 285\/s on average, within 2%; behind at times, caught up\)/)
    expect(text).not.toMatch(/FELL BEHIND/)
  })

  it('one well under it is, with how far and the tolerance', () => {
    expect(fellShort(250, 285)).toBe(true)
    expect(flat(renderSummary(rate(250, 285)))).toMatch(/250\/s simulated \(plan 285\/s on average\): FELL BEHIND by 12% \(more than 2%\)/)
  })
})

describe('fits 80x24 (issue 12, item 14)', () => {
  const catalogTypes = Array.from({length: 31}, (_, i) => [`domain${i % 7}.some.fairly_long_event_type_${i}.happened`, 1000 + i * 37] as const)
  const busy = report({
    services: ['gamification', 'payment', 'notification', 'search', 'cache', 'analytics', 'realtime', 'user', 'email'],
    workers: 2,
    events: {simulated: 8550, derived: 22_394, total: 30_944, rejected: 0, duplicatesRefused: 0, byType: Object.fromEntries(catalogTypes), steps: {}},
    latency: {publish: {count: 10, p50: 1.2, p95: 14, p99: 35, max: 1200, mean: 2}, delivery: {count: 10, p50: 2, p95: 33, p99: 65, max: 1800, mean: 3}, warmupMs: 0},
    verify: {checked: 120_000, differences: 0, sample: []},
    errors: ['bus_error (read): Connection is closed. '.repeat(4)],
    assertions: ['errors == 0', 'dlq == 0', 'max_backlog < 5000', 'verify_differences == 0'].map((threshold) => ({threshold, metric: 'dlq' as const, actual: 0, ok: true})),
  })

  it('every line fits 80 columns, colour or not; the per-type table keeps the busiest and says where the rest are', () => {
    for (const style of [createStyle({isTTY: false}), createStyle({isTTY: true, columns: 80}, {env: {}})]) {
      const text = renderSummary(busy, style, {reportPath: 'steady.json'})
      for (const line of text.split('\n')) expect(visibleWidth(line), stripAnsi(line)).toBeLessThanOrEqual(80)
      expect(stripAnsi(text)).toContain('Busiest event types (6 of 31; all in --json, or steady.json)')
      expect(stripAnsi(text)).toContain(catalogTypes.at(-1)![0])
      expect(stripAnsi(text)).not.toContain(catalogTypes[0][0])
    }
  })

  it('the whole summary fits a 24-line screen', () => {
    // a steady --verify run: no faults, no errors
    const steady = {...busy, faults: {poison: 0, duplicates: 0, reordered: 0, transientFailures: 0, permanentFailures: 0, consumerCrashes: 0}, errors: []}
    const lines = renderSummary(steady, createStyle({isTTY: false})).split('\n')
    // the last line of the command is followed by the prompt
    expect(lines.length).toBeLessThanOrEqual(23)
    expect(lines.join('\n')).toMatch(/Assertions +all 4 hold: errors == 0, dlq == 0, max_backlog < 5000,\n +verify_differences == 0$/)
  })
})
