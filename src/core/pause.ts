/** Waits `ms` (or until the time `until`); resolves true when the wait ran out, false at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false)
  if (ms <= 0) return Promise.resolve(true)
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

/** pause() until a time (ms since the epoch). */
export const pauseUntil = (at: number, signal?: AbortSignal): Promise<boolean> => pause(at - Date.now(), signal)
