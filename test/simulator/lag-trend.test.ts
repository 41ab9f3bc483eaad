import {describe, expect, it} from 'vitest'
import {createLagTrend} from '../../src/simulator/lag-trend.js'

/** Feeds (t, backlog) samples every 500 ms up to 10 s; whether any record found the backlog growing. */
function everGrowing(backlogAt: (t: number) => number): boolean {
  const trend = createLagTrend({windowMs: 5000, floor: 1000})
  let grew = false
  for (let t = 0; t <= 10_000; t += 500) {
    trend.record(t, backlogAt(t))
    grew ||= trend.growing
  }
  return grew
}

describe('lag trend', () => {
  it('a backlog that keeps growing past the floor is falling behind', () => {
    const trend = createLagTrend({windowMs: 5000, floor: 1000})
    for (let t = 0; t <= 10_000; t += 500) trend.record(t, t) // +1,000 a second
    expect(trend.growing).toBe(true)
  })

  it('a steady backlog is latency, not falling behind; small ones never count', () => {
    expect(everGrowing((t) => 5000 + (t % 1000 === 0 ? 100 : -100))).toBe(false)
    expect(everGrowing((t) => t / 20)).toBe(false) // grows, but stays under 1,000
    expect(everGrowing((t) => t)).toBe(true) // the same shape past the floor
  })

  it('needs most of a window of history, and recovers once the backlog drains', () => {
    const trend = createLagTrend({windowMs: 5000, floor: 1000})
    trend.record(0, 0)
    trend.record(1000, 50_000) // a jump, but one second of history is no trend
    expect(trend.growing).toBe(false)
    for (let t = 1500; t <= 8000; t += 500) trend.record(t, 50_000 + t * 10)
    expect(trend.growing).toBe(true)
    for (let t = 8500; t <= 16_000; t += 500) trend.record(t, Math.max(0, 130_000 - (t - 8000) * 20))
    expect(trend.growing).toBe(false)
  })
})
