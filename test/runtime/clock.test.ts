import {describe, it, expect} from 'vitest'
import {SystemClock, VirtualClock} from '../../src/core/clock.js'

/** A hand-moved real clock, so speed maths can be checked without waiting. */
function fakeReal(start = 1_000) {
  let t = start
  return {now: () => t, move: (ms: number) => void (t += ms)}
}

describe('SystemClock', () => {
  it('tells real time and sleeps', async () => {
    const clock = new SystemClock()
    const before = Date.now()
    expect(clock.now()).toBeGreaterThanOrEqual(before)
    await clock.sleep(20)
    // Timers keep their own (monotonic) time: by Date.now() one may fire up to a millisecond early.
    expect(clock.now()).toBeGreaterThanOrEqual(before + 19)
  })

  it('sleep rejects with an AbortError when the signal aborts (or is already aborted)', async () => {
    const clock = new SystemClock()
    const controller = new AbortController()
    const sleeping = clock.sleep(60_000, controller.signal)
    controller.abort()
    await expect(sleeping).rejects.toMatchObject({name: 'AbortError'})
    await expect(clock.sleep(10, controller.signal)).rejects.toMatchObject({name: 'AbortError'})
  })
})

describe('VirtualClock', () => {
  it('starts at the given time and runs at `speed` times real time', () => {
    const real = fakeReal()
    const start = Date.parse('2025-06-01T00:00:00.000Z')
    const clock = new VirtualClock({start: new Date(start), speed: 3600, realNow: real.now})
    expect(clock.now()).toBe(start)
    real.move(1_000)
    expect(clock.now()).toBe(start + 3_600_000)
    clock.setSpeed(0)
    real.move(5_000)
    expect(clock.now()).toBe(start + 3_600_000)
  })

  it('advance() wakes due sleepers in time order, at their due time, and no others', async () => {
    const clock = new VirtualClock({start: 0, speed: 0})
    const woke: Array<[string, number]> = []
    const sleep = (name: string, ms: number) => clock.sleep(ms).then(() => void woke.push([name, clock.now()]))
    void sleep('c', 300)
    void sleep('a', 100)
    void sleep('b', 200)
    void sleep('b2', 200)
    void sleep('late', 10_000)
    await clock.advance(250)
    expect(woke).toEqual([
      ['a', 100],
      ['b', 200],
      ['b2', 200],
    ])
    expect(clock.now()).toBe(250)
    expect(clock.pendingSleepers).toBe(2)
    await clock.advance(50)
    expect(woke.map(([name]) => name)).toEqual(['a', 'b', 'b2', 'c'])
  })

  it('advance() lets a woken task sleep again inside the same window (a retry loop with backoff)', async () => {
    const clock = new VirtualClock({start: 0, speed: 0})
    const attempts: number[] = []
    const retry = (async () => {
      for (const backoff of [100, 200, 400, 800]) {
        attempts.push(clock.now())
        await clock.sleep(backoff)
      }
      attempts.push(clock.now())
    })()
    await clock.advance(10_000)
    await retry
    expect(attempts).toEqual([0, 100, 300, 700, 1500])
    expect(clock.now()).toBe(10_000)
  })

  it('sleepers wake on their own when time runs (speed > 0)', async () => {
    const clock = new VirtualClock({start: 0, speed: 1000})
    const before = clock.now()
    await clock.sleep(2_000) // two virtual seconds: about 2 real ms
    expect(clock.now()).toBeGreaterThanOrEqual(before + 2_000)
  })

  it('a sleep of 0 resolves without advancing', async () => {
    const clock = new VirtualClock({start: 0, speed: 0})
    await clock.sleep(0)
    expect(clock.now()).toBe(0)
  })

  it('sleep honours AbortSignal and the aborted sleeper is forgotten', async () => {
    const clock = new VirtualClock({start: 0, speed: 0})
    const controller = new AbortController()
    const sleeping = clock.sleep(1_000, controller.signal)
    expect(clock.pendingSleepers).toBe(1)
    controller.abort()
    await expect(sleeping).rejects.toMatchObject({name: 'AbortError'})
    expect(clock.pendingSleepers).toBe(0)
    await expect(clock.sleep(5, controller.signal)).rejects.toMatchObject({name: 'AbortError'})
  })

  it('rejects nonsense', async () => {
    expect(() => new VirtualClock({speed: -1})).toThrow(RangeError)
    await expect(new VirtualClock({speed: 0}).advance(-5)).rejects.toThrow(RangeError)
  })
})
