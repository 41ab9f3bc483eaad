/**
 * Cache: invalidates the user profile cache on user.profile.updated. The cache itself lives in the
 * TekTree API; here each invalidation is recorded as a document keyed by the event (naturally
 * idempotent, however late a redelivery comes) and counted.
 */
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ProjectionStore} from '../../core/ports.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, str} from '../util.js'

export const INVALIDATIONS = 'cache_invalidations'

export async function invalidationCount(projections: ProjectionStore, cache = 'user_profile'): Promise<number> {
  return projections.count(INVALIDATIONS, {cache})
}

export function createCacheService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'cache')
  return {
    name: 'cache',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        if (effect.action !== 'invalidate_cache') continue
        const key = str(event.payload, effect.params.target as string)
        await ctx.store.projections.update(INVALIDATIONS, event.event_id, {
          $set: {cache: String(effect.params.cache), key, at: event.timestamp},
        })
      }
    },
  }
}
