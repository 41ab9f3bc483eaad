/** Small pure helpers the services and the oracle share (no handler logic). */
import {derivedEventId} from '../core/event-id.js'
import type {Catalog, ConsumerEffect} from '../catalog/types.js'

/** A payload field as a string, or null when absent / not a string. */
export function str(payload: Record<string, unknown>, field: string | undefined): string | null {
  if (!field) return null
  const value = payload[field]
  return typeof value === 'string' && value !== '' ? value : null
}

/** ISO 8601 week of a timestamp, e.g. "2026-W47" (weeks start on Monday; week 1 holds the first Thursday). */
export function isoWeek(timestamp: string | number): string {
  const date = new Date(typeof timestamp === 'number' ? timestamp : Date.parse(timestamp))
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()))
  const weekday = day.getUTCDay() || 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday) // the Thursday of this week decides the year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7)
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`
}

/** "2026-11" of a timestamp (UTC). */
export function monthOf(timestamp: string): string {
  return new Date(Date.parse(timestamp)).toISOString().slice(0, 7)
}

/** "2026-11-23" of a timestamp (UTC). */
export function dayOf(timestamp: string): string {
  return new Date(Date.parse(timestamp)).toISOString().slice(0, 10)
}

/** A stable UUID-shaped id for a name (subscription of a user, invoice of an event, ...). */
export function stableId(...parts: string[]): string {
  return derivedEventId(parts.join('\u0000'), 'tektree-services', 'id', 0)
}

/** The effects the catalog gives `service` for each canonical event type. */
export function effectsByType(catalog: Catalog, service: string): Map<string, ConsumerEffect[]> {
  const out = new Map<string, ConsumerEffect[]>()
  for (const event of catalog.events) {
    const consumer = event.consumers.find((c) => c.service === service)
    if (consumer) out.set(event.type, consumer.effects)
  }
  return out
}

/** Calendar day arithmetic on "YYYY-MM-DD" strings: whole days from a to b. */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000)
}
