/** Durations as people type them ("500ms", "30s", "10m", "1h") and as a terminal shows them. */

/** "30s" -> 30000. Accepts ms, s, m, h, d. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim())
  if (!match) throw new RangeError(`"${text}" is not a duration (e.g. 500ms, 30s, 10m, 1h, 7d)`)
  const value = Number(match[1])
  const unit = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}[match[2] as 'ms' | 's' | 'm' | 'h' | 'd']
  return Math.round(value * unit)
}

/** The exact inverse of parseDuration for whole units: 30000 -> "30s". */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}

/** Short and approximate, for a column: 850ms, 4.2s, 3m05s, 2h10m, 3d04h. */
export function formatAge(ms: number): string {
  if (ms <= 0) return '0s'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`
  const pad = (n: number) => String(n).padStart(2, '0')
  const s = Math.floor(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`
}
