/**
 * A Ctrl+C (or SIGTERM) being handled by the process-wide stop: while the embedded servers a command
 * started are being shut down, the command itself may fail (its redis-server went away under it).
 * That failure is a consequence of the signal, not the user's mistake: the command exits as the
 * signal would have it (130 / 143 / 129), quietly, once the servers are stopped.
 */
export interface Interruption {
  signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP'
  exitCode: number
  /** Settles when the servers this process owns are stopped (or the wait gave up). */
  stopped: Promise<void>
}

let current: Interruption | undefined

export function noteInterruption(interruption: Interruption): void {
  current ??= interruption
}

export function interruption(): Interruption | undefined {
  return current
}
