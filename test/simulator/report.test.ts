import {describe, expect, it} from 'vitest'
import {evaluateThresholds, parseThresholds} from '../../src/simulator/assertions.js'
import {formatProgress, createProgressWriter} from '../../src/simulator/progress.js'
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
    latency: {publish: {count: 10, p50: 1, p95: 4, p99: 8, max: 9, mean: 2}, delivery: emptyLatency()},
    deliveries: {delivered: 1000, acked: 990, retried: 4, deadLettered: 5},
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
    const text = renderSummary(
      report({
        verify: {checked: 10, differences: 0, sample: []},
        assertions: [{threshold: 'dlq == 0', metric: 'dlq', actual: 5, ok: false, reason: 'dlq was 5'}],
      }),
    )
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

  it('says how much of the plan was not generated, and whether backpressure or the generator was why', () => {
    expect(renderSummary(report())).not.toMatch(/Not generated/)
    const rate = {target: 100_000, achieved: 1800, achievedTotal: 4000, fellBehind: true, tolerance: 0.02, behindAtTimes: true, maxBacklog: 50_000}
    const held = renderSummary(report({rate: {...rate, heldBackMs: 13_700, notGenerated: 1_961_571}}))
    expect(held).toMatch(/1,961,571 events of the plan \(held back 13\.70 s with the backlog over 50,000\)/)
    const slow = renderSummary(report({rate: {...rate, heldBackMs: 0, notGenerated: 4_000}}))
    expect(slow).toMatch(/4,000 events of the plan \(the generator could not keep up\)/)
  })

  it('names the worker threads the services ran in, and restarts', () => {
    expect(renderSummary(report({workers: 2, workerRestarts: 1}))).toMatch(/gamification +\(2 worker threads, 1 restarted\)/)
    expect(renderSummary(report())).not.toMatch(/worker thread/)
  })
})

describe('progress', () => {
  const p = {elapsedMs: 65_000, sent: 1234, targetRate: 1000, achievedRate: 990, processed: 1200, backlog: 34, deliveryP95: 12.345, dlq: 1, etaMs: 5000, behind: false, lagGrowing: false, heldBack: false, phase: 'generating' as const}

  it('formats one line', () => {
    expect(formatProgress(p)).toBe('1m05s | rate 990/1,000/s | sent 1,234 | processed 1,200 | lag 34 | p95 12.3ms | DLQ 1 | ETA 5s')
    expect(formatProgress({...p, backlog: 40_000, lagGrowing: true})).toContain('lag 40,000 GROWING')
    expect(formatProgress({...p, behind: true, heldBack: true})).toContain('rate 990/1,000/s HELD BACK')
  })

  it('rewrites one line on a TTY, prints periodic lines otherwise', () => {
    const tty: string[] = []
    const w = createProgressWriter({isTTY: true, columns: 200, write: (s: string) => tty.push(s)})
    w.update(p)
    w.update(p)
    w.done()
    expect(tty[0].startsWith('\r')).toBe(true)
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
    const text = renderSummary(rate(284.7, 285, {behindAtTimes: true}))
    expect(text).toMatch(/285\/s simulated \(plan 285\/s on average, within 2%; behind at times, caught up\)/)
    expect(text).not.toMatch(/FELL BEHIND/)
  })

  it('one well under it is, with how far and the tolerance', () => {
    expect(fellShort(250, 285)).toBe(true)
    expect(renderSummary(rate(250, 285))).toMatch(/250\/s simulated \(plan 285\/s on average\): FELL BEHIND by 12% \(more than 2%\)/)
  })
})
