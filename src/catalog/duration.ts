/**
 * ISO-8601 durations as the catalog's retention table writes them ("P2Y", "P7D", "PT12H", "P1Y6M").
 * Calendar units use fixed lengths (a year is 365 days, a month 30): retention is a trimming policy,
 * not a calendar, and a fixed length keeps it deterministic.
 */
const DURATION = /^P(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const UNIT_MS = [365 * DAY, 30 * DAY, 7 * DAY, DAY, HOUR, MINUTE, SECOND]

/** Milliseconds of an ISO-8601 duration; null when the text is not one (or has no unit at all). */
export function parseIsoDuration(text: string): number | null {
  const match = DURATION.exec(text.trim().toUpperCase())
  if (!match || text.trim().toUpperCase().endsWith('T')) return null
  let total = 0
  let seen = false
  for (let i = 0; i < UNIT_MS.length; i++) {
    const part = match[i + 1]
    if (part === undefined) continue
    seen = true
    total += Number(part.replace(',', '.')) * UNIT_MS[i]
  }
  return seen ? Math.round(total) : null
}

/** "indefinite"/"forever"/empty mean no limit (null); anything else must be an ISO-8601 duration. */
export function retentionMs(period: unknown): number | null | undefined {
  if (period === undefined || period === null) return null
  const text = String(period).trim().toLowerCase()
  if (text === '' || text === 'indefinite' || text === 'forever' || text === 'infinite') return null
  const ms = parseIsoDuration(text)
  return ms === null ? undefined : ms
}

/** A short human form for tables: "2y", "7d", "indefinite". */
export function formatPeriod(ms: number | null): string {
  if (ms === null) return 'indefinite'
  const units: Array<[number, string]> = [[365 * DAY, 'y'], [30 * DAY, 'mo'], [DAY, 'd'], [HOUR, 'h'], [MINUTE, 'm'], [SECOND, 's']]
  for (const [size, suffix] of units) if (ms >= size && ms % size === 0) return `${ms / size}${suffix}`
  return `${ms}ms`
}
