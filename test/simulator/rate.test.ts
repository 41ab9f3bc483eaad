import {describe, expect, it} from 'vitest'
import {createRateProfile, Pacer, plannedAverageRate} from '../../src/simulator/rate.js'
import type {RateProfileSpec} from '../../src/simulator/scenario.js'

/** Drives a pacer with a fake clock: each tick sends what is due (up to maxBatch). */
function drive(spec: RateProfileSpec, untilMs: number, tickMs = 10, opts: {maxBatch?: number; sendLimit?: number} = {}) {
  let now = 1_000_000
  const pacer = new Pacer(createRateProfile(spec), {now: () => now, maxBatch: opts.maxBatch ?? 100_000})
  pacer.start()
  const counts = new Map<number, number>()
  for (let t = 0; t <= untilMs; t += tickMs) {
    now = 1_000_000 + t
    const n = Math.min(pacer.take(), opts.sendLimit ?? Infinity)
    pacer.record(n)
    counts.set(t, pacer.sent)
  }
  return {counts, pacer}
}

const within2pct = (actual: number, expected: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(1, expected * 0.02))

describe('rate profiles', () => {
  it('steady: a constant rate gives a straight line', () => {
    const {counts} = drive({start: 1000, stages: [{durationMs: 10_000, target: 1000, shape: 'step'}]}, 10_000)
    within2pct(counts.get(1000)!, 1000)
    within2pct(counts.get(5000)!, 5000)
    within2pct(counts.get(10_000)!, 10_000)
  })

  it('ramp: linear from the previous target (k6), so the count grows quadratically', () => {
    const {counts} = drive({start: 0, stages: [{durationMs: 10_000, target: 1000, shape: 'ramp'}]}, 10_000)
    // integral of 100 t (t in s) = 50 t^2
    within2pct(counts.get(2000)!, 200)
    within2pct(counts.get(5000)!, 1250)
    within2pct(counts.get(10_000)!, 5000)
  })

  it('burst: steady 1k with a step to 5k for 2 s and back', () => {
    const spec: RateProfileSpec = {
      start: 1000,
      stages: [
        {durationMs: 3000, target: 1000, shape: 'step'},
        {durationMs: 2000, target: 5000, shape: 'step'},
        {durationMs: 3000, target: 1000, shape: 'step'},
      ],
    }
    const {counts} = drive(spec, 8000)
    within2pct(counts.get(3000)!, 3000)
    within2pct(counts.get(4000)!, 8000)
    within2pct(counts.get(5000)!, 13_000)
    within2pct(counts.get(8000)!, 16_000)
  })

  it('spike: fast ramp up then down (a triangle)', () => {
    const spec: RateProfileSpec = {
      start: 0,
      stages: [
        {durationMs: 1000, target: 4000, shape: 'ramp'},
        {durationMs: 1000, target: 0, shape: 'ramp'},
      ],
    }
    const profile = createRateProfile(spec)
    expect(profile.rateAt(1000)).toBe(4000)
    expect(profile.rateAt(500)).toBe(2000)
    const {counts} = drive(spec, 2000)
    within2pct(counts.get(1000)!, 2000)
    within2pct(counts.get(2000)!, 4000)
  })

  it('holds the last target after the stages', () => {
    const profile = createRateProfile({start: 0, stages: [{durationMs: 1000, target: 100, shape: 'step'}]})
    expect(profile.cumulativeAt(3000)).toBeCloseTo(300)
  })
})

describe('Pacer', () => {
  it('catches up lateness without accumulating error (one late tick sends the debt)', () => {
    let now = 0
    const pacer = new Pacer(createRateProfile({start: 500, stages: [{durationMs: 10_000, target: 500, shape: 'step'}]}), {now: () => now})
    pacer.start()
    now = 10
    pacer.record(pacer.take())
    now = 2000 // a 2 s stall
    const n = pacer.take()
    expect(n).toBe(1000 - 5)
    pacer.record(n)
    expect(pacer.sent).toBe(1000)
  })

  it('stops at maxEvents and at the duration', () => {
    let now = 0
    const pacer = new Pacer(createRateProfile({start: 1000, stages: [{durationMs: 10_000, target: 1000, shape: 'step'}]}), {now: () => now, maxEvents: 150})
    pacer.start()
    now = 1000
    pacer.record(pacer.take())
    expect(pacer.sent).toBe(150)
    expect(pacer.done()).toBe(true)

    let now2 = 0
    const p2 = new Pacer(createRateProfile({start: 1000, stages: [{durationMs: 10_000, target: 1000, shape: 'step'}]}), {now: () => now2, durationMs: 500})
    p2.start()
    now2 = 5000
    p2.record(p2.take())
    expect(p2.sent).toBe(500)
    expect(p2.done()).toBe(true)
  })

  it('reports when the sender cannot keep up instead of slowing quietly', () => {
    const spec: RateProfileSpec = {start: 1000, stages: [{durationMs: 10_000, target: 1000, shape: 'step'}]}
    // The sender manages 5 per 10 ms tick = 500/s, half the target.
    const {pacer} = drive(spec, 4000, 10, {sendLimit: 5})
    const status = pacer.status()
    expect(status.behind).toBe(true)
    expect(status.backlog).toBeGreaterThan(1500)
    expect(status.achievedRate).toBeLessThan(600)
    expect(status.maxBacklog).toBeGreaterThanOrEqual(status.backlog)

    const ok = drive(spec, 4000, 10).pacer.status()
    expect(ok.behind).toBe(false)
    expect(ok.backlog).toBeLessThanOrEqual(10)
  })

  it('maxBatch caps one tick; the rest is backlog', () => {
    let now = 0
    const pacer = new Pacer(createRateProfile({start: 1000, stages: [{durationMs: 10_000, target: 1000, shape: 'step'}]}), {now: () => now, maxBatch: 100})
    pacer.start()
    now = 1000
    expect(pacer.take()).toBe(100)
  })

  it('msUntilNext waits for the next due event', () => {
    let now = 0
    const pacer = new Pacer(createRateProfile({start: 10, stages: [{durationMs: 10_000, target: 10, shape: 'step'}]}), {now: () => now})
    pacer.start()
    now = 100
    pacer.record(pacer.take())
    expect(pacer.sent).toBe(1)
    const wait = pacer.msUntilNext(1000)
    expect(wait).toBeGreaterThan(0)
    expect(wait).toBeLessThanOrEqual(128)
  })
})

describe('plannedAverageRate: what the achieved rate of a run is held against', () => {
  const steady = createRateProfile({start: 5000, stages: [{durationMs: 10_000, target: 5000, shape: 'step'}]})
  const ramp = createRateProfile({start: 0, stages: [{durationMs: 3000, target: 300, shape: 'ramp'}, {durationMs: 27_000, target: 300, shape: 'step'}]})

  it('is the plan over its duration, not what was due by the time generation ended', () => {
    // Generation overran to 10.4 s: the run is held against 5,000/s, so 50,000 in 10.4 s (4,808/s) is short.
    expect(plannedAverageRate(steady, {plannedMs: 10_000, maxEvents: null, generationMs: 10_400, interrupted: false})).toBeCloseTo(5000)
    // A ramp lowers the plan's own average: (450 + 8,100) / 30 s.
    expect(plannedAverageRate(ramp, {plannedMs: 30_000, maxEvents: null, generationMs: 30_200, interrupted: false})).toBeCloseTo(285, 0)
  })

  it('an event cap ends the plan when the cap is due', () => {
    expect(plannedAverageRate(steady, {plannedMs: null, maxEvents: 25_000, generationMs: 6000, interrupted: false})).toBeCloseTo(5000, 0)
    // Cap due at 4 s of a 10 s plan: the average up to the cap.
    expect(plannedAverageRate(steady, {plannedMs: 10_000, maxEvents: 20_000, generationMs: 4100, interrupted: false})).toBeCloseTo(5000, 0)
    // The ramp's first stage has 50 t^2 events due at t s: a cap of 150 is due at sqrt(3) s.
    const t = Math.sqrt(150 / 50)
    expect(plannedAverageRate(ramp, {plannedMs: null, maxEvents: 150, generationMs: 5000, interrupted: false})).toBeCloseTo(150 / t, 0)
  })

  it('an interrupted run is held against what was due when it stopped', () => {
    expect(plannedAverageRate(ramp, {plannedMs: 30_000, maxEvents: null, generationMs: 2000, interrupted: true})).toBeCloseTo(ramp.cumulativeAt(2000) / 2, 0)
  })
})
