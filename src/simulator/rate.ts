/**
 * Rate control. A profile is piecewise: each stage ramps linearly from the previous target (k6's
 * ramping-arrival-rate) or holds its target (step); steady, ramp, burst and spike are just stage
 * shapes. The pacer schedules by elapsed time: at each tick the due count is the integral of the rate
 * so far, and it sends due - sent, so lateness is caught up and rounding never accumulates. When the
 * sender cannot keep up (the achieved count falls behind by more than the tolerance over a window,
 * or the backlog keeps growing) it says so instead of slowing quietly.
 */
import type {RateProfileSpec, Stage} from './scenario.js'

/** How far under the planned rate still counts as holding it (issue 5: within 2%). */
export const RATE_TOLERANCE = 0.02

/**
 * The report's verdict on a run's rate, judged on the whole numbers it prints: behind only when the
 * achieved rate is more than the tolerance under the planned one, so "285/s (plan 285/s)" can never
 * be called behind.
 */
export function fellShort(achieved: number, target: number, tolerance = RATE_TOLERANCE): boolean {
  return Math.round(achieved) < Math.round(target) * (1 - tolerance)
}

export interface RateProfile {
  /** Events/s at `ms` after the start. After the last stage the last target holds. */
  rateAt(ms: number): number
  /** Events due by `ms` after the start (the integral of the rate, not rounded). */
  cumulativeAt(ms: number): number
  /** Total length of the stages (ms). */
  readonly stagesMs: number
}

interface Segment {
  from: number
  to: number
  r0: number
  r1: number
  /** Events due before this segment. */
  before: number
}

export function createRateProfile(spec: RateProfileSpec): RateProfile {
  const segments: Segment[] = []
  let t = 0
  let rate = spec.start
  let before = 0
  for (const stage of spec.stages as Stage[]) {
    const r0 = stage.shape === 'step' ? stage.target : rate
    const segment = {from: t, to: t + stage.durationMs, r0, r1: stage.target, before}
    segments.push(segment)
    before += ((r0 + stage.target) / 2) * (stage.durationMs / 1000)
    t += stage.durationMs
    rate = stage.target
  }
  const stagesMs = t
  const lastRate = rate
  const totalBefore = before

  function find(ms: number): Segment | undefined {
    // Few stages: a linear scan is fine.
    for (const s of segments) if (ms < s.to) return s
    return undefined
  }

  return {
    stagesMs,
    rateAt(ms) {
      if (ms < 0) return spec.start
      const s = find(ms)
      if (!s) return lastRate
      return s.r0 + ((s.r1 - s.r0) * (ms - s.from)) / (s.to - s.from)
    },
    cumulativeAt(ms) {
      if (ms <= 0) return 0
      const s = find(ms)
      if (!s) return totalBefore + lastRate * ((ms - stagesMs) / 1000)
      const dt = (ms - s.from) / 1000
      const span = (s.to - s.from) / 1000
      return s.before + s.r0 * dt + ((s.r1 - s.r0) * dt * dt) / (2 * span)
    },
  }
}

export interface PacerOptions {
  /** Real (or fake) milliseconds. */
  now: () => number
  /** Stop once this many have been sent; null = no cap. */
  maxEvents?: number | null
  /** Stop due-counting after this long; null = no end. */
  durationMs?: number | null
  /** Largest batch one tick may emit (the rest waits for the next tick: that is backlog). */
  maxBatch?: number
  /** Window over which "behind" is judged (ms). */
  windowMs?: number
  /** Allowed shortfall (fraction of due in the window). */
  tolerance?: number
}

export interface PacerStatus {
  elapsedMs: number
  due: number
  sent: number
  backlog: number
  /** Events/s sent over the last window. */
  achievedRate: number
  /** Events/s the profile asked for over the last window. */
  targetRate: number
  behind: boolean
  /** Largest backlog seen. */
  maxBacklog: number
  done: boolean
}

export class Pacer {
  private readonly now: () => number
  private readonly maxEvents: number | null
  private readonly durationMs: number | null
  private readonly maxBatch: number
  private readonly windowMs: number
  private readonly tolerance: number
  private startedAt: number | null = null
  private sentCount = 0
  /** Events that fell due but were given up (shed()): never sent, no longer owed. */
  private shedCount = 0
  private maxBacklogSeen = 0
  /** (t, due, sent) samples within the last window, oldest first. */
  private samples: Array<{t: number; due: number; sent: number}> = []
  private behindSince: number | null = null

  constructor(
    private readonly profile: RateProfile,
    options: PacerOptions,
  ) {
    this.now = options.now
    this.maxEvents = options.maxEvents ?? null
    this.durationMs = options.durationMs ?? null
    this.maxBatch = options.maxBatch ?? 1000
    this.windowMs = options.windowMs ?? 2000
    this.tolerance = options.tolerance ?? RATE_TOLERANCE
  }

  start(): void {
    this.startedAt = this.now()
    this.samples = [{t: 0, due: 0, sent: 0}]
  }

  get sent(): number {
    return this.sentCount
  }

  /** Events given up so far (shed()). */
  get shed(): number {
    return this.shedCount
  }

  /**
   * Gives up what is due and unsent (the generator was held back): it is not sent later in a burst.
   * Returns how many were given up. They still count against the rate achieved.
   */
  shedDue(): number {
    const owed = Math.max(0, this.dueNow() - this.sentCount - this.shedCount)
    this.shedCount += owed
    return owed
  }

  private elapsed(): number {
    if (this.startedAt === null) this.start()
    return this.now() - this.startedAt!
  }

  /** Events due by now (whole events, capped by duration and maxEvents). */
  dueNow(elapsed = this.elapsed()): number {
    const t = this.durationMs === null ? elapsed : Math.min(elapsed, this.durationMs)
    let due = Math.floor(this.profile.cumulativeAt(t) + 1e-9)
    // Shed events were owed but never sent: the cap is on events sent, so it moves past them.
    if (this.maxEvents !== null) due = Math.min(due, this.maxEvents + this.shedCount)
    return due
  }

  /** How many to send now (0 when nothing is due). Call sent(n) after sending. */
  take(): number {
    const due = this.dueNow()
    return Math.max(0, Math.min(this.maxBatch, due - this.sentCount - this.shedCount))
  }

  /** Records that n were sent, and samples for the behind check. */
  record(n: number): void {
    this.sentCount += n
    const t = this.elapsed()
    const due = this.dueNow(t)
    this.maxBacklogSeen = Math.max(this.maxBacklogSeen, due - this.sentCount - this.shedCount)
    this.samples.push({t, due, sent: this.sentCount})
    while (this.samples.length > 2 && this.samples[1].t <= t - this.windowMs) this.samples.shift()
  }

  /** True when generation is over: the duration has passed or maxEvents were sent. */
  done(): boolean {
    if (this.maxEvents !== null && this.sentCount >= this.maxEvents) return true
    if (this.durationMs !== null && this.elapsed() >= this.durationMs && this.sentCount + this.shedCount >= this.dueNow()) return true
    return false
  }

  /** Real ms until at least one more event is due (0 when some already are), capped at capMs. */
  msUntilNext(capMs = 50): number {
    const elapsed = this.elapsed()
    const owedBefore = this.sentCount + this.shedCount
    if (this.dueNow(elapsed) > owedBefore) return 0
    const want = owedBefore + 1
    // Step forward until due; rates are piecewise linear, so a coarse search is enough.
    for (let step = 1; step <= capMs; step *= 2) {
      if (this.dueNow(elapsed + step) >= want) return step
    }
    return capMs
  }

  status(): PacerStatus {
    const t = this.elapsed()
    const due = this.dueNow(t)
    const backlog = Math.max(0, due - this.sentCount - this.shedCount)
    this.maxBacklogSeen = Math.max(this.maxBacklogSeen, backlog)
    const first = this.samples[0] ?? {t: 0, due: 0, sent: 0}
    const span = Math.max(1, t - first.t)
    const dueInWindow = due - first.due
    const sentInWindow = this.sentCount - first.sent
    // Behind: the window is mostly full, and either the shortfall exceeds the tolerance (plus one
    // event of rounding slack) or the backlog has grown through the whole window.
    const windowFull = span >= this.windowMs * 0.5
    const shortfall = dueInWindow - sentInWindow
    const lagging = windowFull && shortfall > Math.max(1, dueInWindow * this.tolerance) && backlog > Math.max(1, due * this.tolerance * 0.5)
    if (lagging) this.behindSince ??= t
    else this.behindSince = null
    return {
      elapsedMs: t,
      due,
      sent: this.sentCount,
      backlog,
      achievedRate: (sentInWindow * 1000) / span,
      targetRate: (dueInWindow * 1000) / span,
      behind: lagging,
      maxBacklog: this.maxBacklogSeen,
      done: this.done(),
    }
  }
}

/**
 * The average rate the profile planned for the run, which the achieved rate is held against: over
 * the planned duration, or until the event cap is due, whichever ends first. An interrupted run (or
 * a plan with no end) is held against what was due by the time it stopped.
 */
export function plannedAverageRate(
  profile: RateProfile,
  run: {plannedMs: number | null; maxEvents: number | null; generationMs: number; interrupted: boolean},
): number {
  const perSecond = (events: number, ms: number) => events / Math.max(0.001, ms / 1000)
  if (!run.interrupted) {
    let endMs = run.plannedMs
    if (run.maxEvents !== null) {
      const capMs = msUntilDue(profile, run.maxEvents, endMs ?? Number.POSITIVE_INFINITY)
      if (capMs !== null && (endMs === null || capMs < endMs)) endMs = capMs
    }
    if (endMs !== null && endMs > 0) return perSecond(Math.min(profile.cumulativeAt(endMs), run.maxEvents ?? Number.POSITIVE_INFINITY), endMs)
  }
  return perSecond(profile.cumulativeAt(run.generationMs), run.generationMs)
}

/** When `events` are due (ms), searching up to `limitMs` (and at most a year); null if never. */
function msUntilDue(profile: RateProfile, events: number, limitMs: number): number | null {
  const ceiling = Math.min(limitMs, 365 * 86_400_000)
  let hi = 1
  while (profile.cumulativeAt(hi) < events) {
    if (hi >= ceiling) return null
    hi = Math.min(ceiling, hi * 2)
  }
  let lo = 0
  while (hi - lo > 1) {
    const mid = (lo + hi) / 2
    if (profile.cumulativeAt(mid) >= events) hi = mid
    else lo = mid
  }
  return hi
}

/**
 * The backlog (outbox entries + every group's lag and pending) past which the generator pauses:
 * ten seconds of the plan's peak rate, at least 5,000 and at most 50,000. A run its services carry
 * stays far under it (steady-1k peaks near 1,300); a run asked for more than the machine carries
 * is held near it, so the services keep making progress and what is queued drains in seconds.
 */
export function backlogBound(spec: RateProfileSpec): number {
  const peak = Math.max(spec.start, ...spec.stages.map((s) => s.target))
  return Math.round(Math.min(50_000, Math.max(5_000, peak * 10)))
}
