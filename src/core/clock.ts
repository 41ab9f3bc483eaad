/**
 * Clocks. SystemClock is real time. VirtualClock runs from a chosen start at `speed` times real time
 * (3600 = one hour per second; 0 = frozen) and can be moved by hand with advance(), which wakes due
 * sleepers one by one in time order, letting each one's continuation run (and schedule new sleeps)
 * before time moves on: retries, streak windows and retention can be simulated without waiting.
 */
import type {Clock} from './ports.js'

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason
  if (reason instanceof Error && reason.name === 'AbortError') return reason
  const error = new Error('The operation was aborted', {cause: reason})
  error.name = 'AbortError'
  return error
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now()
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer)
        reject(abortError(signal!))
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, Math.max(0, ms))
      signal?.addEventListener('abort', onAbort, {once: true})
    })
  }
}

export interface VirtualClockOptions {
  /** Virtual start time (ms since epoch or a Date); default: now. */
  start?: number | Date
  /** Virtual ms per real ms; 0 freezes time except advance(). Default 1. */
  speed?: number
  /** The real clock underneath (tests may inject one). */
  realNow?: () => number
}

interface Sleeper {
  at: number
  seq: number
  resolve: () => void
}

const flushContinuations = () => new Promise<void>((resolve) => setImmediate(resolve))

export class VirtualClock implements Clock {
  private readonly realNow: () => number
  private speedFactor: number
  /** now() = anchorVirtual + (realNow() - anchorReal) * speed */
  private anchorVirtual: number
  private anchorReal: number
  /** Kept sorted by (at, seq). */
  private sleepers: Sleeper[] = []
  private seq = 0
  private timer: NodeJS.Timeout | undefined
  private advancing = false

  constructor(options: VirtualClockOptions = {}) {
    this.realNow = options.realNow ?? Date.now
    const speed = options.speed ?? 1
    if (!(speed >= 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a finite number >= 0, got ${speed}`)
    this.speedFactor = speed
    const start = options.start instanceof Date ? options.start.getTime() : options.start
    this.anchorReal = this.realNow()
    this.anchorVirtual = start ?? this.anchorReal
  }

  get speed(): number {
    return this.speedFactor
  }

  /** Changes the speed from now on (time so far is kept). */
  setSpeed(speed: number): void {
    if (!(speed >= 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a finite number >= 0, got ${speed}`)
    this.rebase(this.now())
    this.speedFactor = speed
    this.schedule()
  }

  now(): number {
    return this.anchorVirtual + (this.realNow() - this.anchorReal) * this.speedFactor
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.now() + Math.max(0, ms),
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      const onAbort = () => {
        this.remove(sleeper)
        reject(abortError(signal!))
      }
      signal?.addEventListener('abort', onAbort, {once: true})
      this.insert(sleeper)
      if (ms <= 0) this.fireDue()
      else this.schedule()
    })
  }

  /**
   * Moves time forward by `ms`, waking each sleeper due on the way in time order; time stands at a
   * sleeper's due time while its continuation runs (it may sleep again within the window).
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance() needs ms >= 0, got ${ms}`)
    if (this.advancing) throw new Error('advance() is already running')
    this.advancing = true
    try {
      const target = this.now() + ms
      for (let guard = 0; guard < 1_000_000; guard++) {
        const first = this.sleepers[0]
        if (!first || first.at > target) break
        if (first.at > this.now()) this.rebase(first.at)
        this.sleepers.shift()
        first.resolve()
        await flushContinuations()
      }
      if (target > this.now()) this.rebase(target)
      await flushContinuations()
    } finally {
      this.advancing = false
      this.schedule()
    }
  }

  /** Sleepers not yet woken (for tests and the dashboard). */
  get pendingSleepers(): number {
    return this.sleepers.length
  }

  private rebase(virtualNow: number): void {
    this.anchorReal = this.realNow()
    this.anchorVirtual = virtualNow
  }

  private insert(sleeper: Sleeper): void {
    let lo = 0
    let hi = this.sleepers.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const s = this.sleepers[mid]
      if (s.at < sleeper.at || (s.at === sleeper.at && s.seq < sleeper.seq)) lo = mid + 1
      else hi = mid
    }
    this.sleepers.splice(lo, 0, sleeper)
  }

  private remove(sleeper: Sleeper): void {
    const index = this.sleepers.indexOf(sleeper)
    if (index >= 0) this.sleepers.splice(index, 1)
    this.schedule()
  }

  private fireDue(): void {
    const now = this.now()
    while (this.sleepers.length > 0 && this.sleepers[0].at <= now) this.sleepers.shift()!.resolve()
  }

  /** One real timer, for the earliest sleeper, when time runs on its own. */
  private schedule(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.advancing || this.speedFactor === 0 || this.sleepers.length === 0) return
    const realMs = Math.max(0, (this.sleepers[0].at - this.now()) / this.speedFactor)
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.fireDue()
      this.schedule()
    }, Math.min(Math.ceil(realMs), 2_147_483_647))
  }
}
