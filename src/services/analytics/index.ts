/**
 * Analytics: daily active users (a set per day: one document per user and day, so counting it
 * is idempotent whatever the redeliveries), daily counts per metric of the catalog's track effects
 * (subscriptions, notification engagement, realtime engagement, revenue, ...), and the webhook audit.
 */
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ProjectionStore} from '../../core/ports.js'
import type {ServiceOptions} from '../types.js'
import {dayOf, effectsByType, str} from '../util.js'

export const DAU = 'analytics_dau'
export const DAILY = 'analytics_daily'
export const AUDIT = 'analytics_audit'

export const dailyId = (metric: string, day: string) => `${metric}:${day}`

export async function dailyActiveUsers(projections: ProjectionStore, day: string): Promise<number> {
  return projections.count(DAU, {day})
}

export function createAnalyticsService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'analytics')
  return {
    name: 'analytics',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      const projections = ctx.store.projections
      const day = dayOf(event.timestamp)
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        if (effect.action === 'audit_log') {
          await projections.update(AUDIT, String(event.payload.webhook_id ?? event.event_id), {
            $set: {...event.payload, event_id: event.event_id, received_at: event.timestamp},
          })
          continue
        }
        if (effect.action !== 'track') continue
        const metric = String(effect.params.metric)
        if (metric === 'dau') {
          const user = str(event.payload, 'user_id')
          if (user) await projections.update(DAU, `${day}:${user}`, {$set: {day, user_id: user}})
          continue
        }
        const inc: Record<string, number> = {count: 1}
        if (typeof event.payload.amount_cents === 'number') inc.amount_cents = event.payload.amount_cents
        await projections.applyOnce(DAILY, dailyId(metric, day), event.event_id, {$inc: inc, $setOnInsert: {metric, day}})
      }
    },
  }
}
