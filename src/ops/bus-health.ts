/**
 * Whether the bus answers, for a long-running command's status (`tektree services`). The bus's
 * clients wait for a server that went away and reconnect by themselves, silently: without this,
 * a stopped redis-server or broker showed as services idling at 0/s. A cheap read (where one
 * partition ends) every `everyMs`, given up after `timeoutMs`; onChange on each change.
 */
import type {Bus} from '../core/ports.js'

export interface BusHealth {
  /** When the bus stopped answering (ms since the epoch), or null while it answers. */
  downSince(): number | null
  stop(): void
}

export function watchBus(
  bus: Bus,
  options: {topic: string; everyMs: number; timeoutMs: number; now?: () => number; onChange(change: {answering: boolean; sinceMs: number}): void},
): BusHealth {
  const now = options.now ?? Date.now
  let downSince: number | null = null
  let probing = false
  let stopped = false
  const probe = async () => {
    if (probing || stopped) return
    probing = true
    const startedAt = now()
    let timer: NodeJS.Timeout | undefined
    const answered = await Promise.race([
      bus.positionAt(options.topic, 0, 'end').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), options.timeoutMs))),
    ])
    clearTimeout(timer)
    probing = false
    if (stopped) return
    if (!answered && downSince === null) {
      downSince = startedAt
      options.onChange({answering: false, sinceMs: downSince})
    } else if (answered && downSince !== null) {
      const since = downSince
      downSince = null
      options.onChange({answering: true, sinceMs: since})
    }
  }
  const interval = setInterval(() => void probe(), options.everyMs)
  interval.unref()
  return {
    downSince: () => downSince,
    stop: () => {
      stopped = true
      clearInterval(interval)
    },
  }
}
