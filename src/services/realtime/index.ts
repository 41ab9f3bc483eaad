/**
 * Real-time: the catalog's push effects, to the seed 001 channels (/ws/notifications per user,
 * /ws/leaderboard for everyone). Pushes go to options.realtime (the WebSocket endpoint of
 * `tektree services --ws-port`); a redelivered event is pushed again with the same event_id, which
 * clients use to drop repeats. Pushes are counted per channel. Besides the catalog's push effects,
 * realtime.user.joined (which only analytics lists) is pushed to /ws/presence: who is online.
 */
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, str} from '../util.js'

export const PUSHES = 'realtime_pushes'
const PRESENCE_EVENT = 'realtime.user.joined'

export function createRealtimeService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'realtime')
  return {
    name: 'realtime',
    consumes: [...effects.keys(), PRESENCE_EVENT],
    async handle(event, ctx) {
      const presence = ctx.definition.type === PRESENCE_EVENT ? [{action: 'push', description: 'presence', params: {channel: '/ws/presence', kind: 'joined', target: 'user_id'}}] : []
      for (const effect of [...(effects.get(ctx.definition.type) ?? []), ...presence]) {
        if (effect.action !== 'push') continue
        const channel = String(effect.params.channel)
        const user = str(event.payload, effect.params.target as string)
        options.realtime?.push(channel, {
          kind: String(effect.params.kind),
          user_id: user,
          event_id: event.event_id,
          event_type: ctx.definition.type,
          at: event.timestamp,
          data: event.payload,
        })
        await ctx.store.projections.applyOnce(PUSHES, channel, event.event_id, {$inc: {count: 1}, $setOnInsert: {channel}})
      }
    },
  }
}
