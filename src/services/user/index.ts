/**
 * User: the tier badge and the level badge on each profile (the catalog's update_badge effects).
 * The level badge only rises ($max), so a late level.up can never lower it. The tier badge from
 * payment.subscription.created is kept apart (created_tier): payment appends it when it handles
 * user.registered, possibly after the user's first upgrade, and it must not undo that upgrade.
 */
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ProjectionDoc} from '../../core/ports.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, str} from '../util.js'

export const BADGES = 'user_badges'

export interface UserBadges {
  user_id: string
  tier: string
  level: number
}

export function toBadges(doc: ProjectionDoc | null): UserBadges | null {
  if (!doc) return null
  return {user_id: String(doc.user_id ?? doc._id), tier: String(doc.tier ?? doc.created_tier ?? 'free'), level: Number(doc.level ?? 1)}
}

export function createUserService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'user')
  return {
    name: 'user',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        if (effect.action !== 'update_badge') continue
        const params = effect.params
        const user = str(event.payload, params.target as string)
        if (!user) continue
        const value = params.value ?? event.payload[params.value_field as string]
        if (value === undefined) continue
        const update =
          params.badge === 'level'
            ? {$max: {level: Number(value)}}
            : ctx.definition.type === 'payment.subscription.created'
              ? {$set: {created_tier: String(value)}}
              : {$set: {tier: String(value)}}
        await ctx.store.projections.applyOnce(BADGES, user, event.event_id, {...update, $setOnInsert: {user_id: user}})
      }
    },
  }
}
