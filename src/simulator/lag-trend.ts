/**
 * Whether the services are falling behind: the backlog (lag + pending + outbox) grew by half again
 * over the last window and is past a floor. A steady backlog is latency, not falling behind; one
 * that keeps growing means the generator outruns the consumers, and the run must say so rather than
 * look healthy because the generator itself kept its rate.
 */
export interface LagTrend {
  record(atMs: number, backlog: number): void
  /** The backlog grew over the last window (as of the last record). */
  readonly growing: boolean
}

export function createLagTrend(options: {windowMs?: number; floor?: number} = {}): LagTrend {
  const windowMs = options.windowMs ?? 5_000
  const floor = options.floor ?? 1_000
  const samples: Array<{t: number; backlog: number}> = []
  let growing = false
  return {
    record(atMs, backlog) {
      samples.push({t: atMs, backlog})
      // Keep one sample at least a window old to compare against.
      while (samples.length > 2 && samples[1].t <= atMs - windowMs) samples.shift()
      const then = samples[0]
      growing = atMs - then.t >= windowMs * 0.8 && backlog > floor && backlog > then.backlog * 1.5
    },
    get growing() {
      return growing
    },
  }
}
