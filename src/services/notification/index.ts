/**
 * Notification: the catalog's notify and add_to_feed effects. Recipients are payload fields, or the
 * followers of a user (from social.user.followed) or of an area (its contributors: the catalog has
 * no area-follow event). The actor is never notified of their own action. Each delivery emits
 * notification.sent; likes and upvotes are batched per recipient and template: at most one
 * delivery per window of event time, while every one still counts in the recipient's feed.
 *
 * Follower fan-out is capped per event (rules: max_fanout).
 *
 * Feed counts: `direct` counts notifications to named recipients (a pure function of the event log,
 * checked by `tektree verify`); `fanout` counts follower notifications, which depend on whether a
 * follow was handled before a post on another aggregate - a race by design, as in TekTree itself.
 */
import type {EventEnvelope} from '../../core/envelope.js'
import type {HandlerContext, ServiceDefinition} from '../../engine/consumer.js'
import {loadRulesFile} from '../rules.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, stableId, str} from '../util.js'

export const FEEDS = 'notification_feeds'
export const FOLLOWERS = 'notification_followers'
export const AREA_FOLLOWERS = 'notification_area_followers'

export interface NotificationRules {
  batch_window_ms: number
  max_fanout: number
  feed_size: number
  actors: Record<string, string>
  area_followers_from: string[]
}

const SCHEMA = {
  type: 'object',
  required: ['batch_window_ms', 'max_fanout', 'feed_size', 'actors', 'area_followers_from'],
  properties: {
    batch_window_ms: {type: 'integer', minimum: 1},
    max_fanout: {type: 'integer', minimum: 0},
    feed_size: {type: 'integer', minimum: 1, maximum: 1000},
    actors: {type: 'object', additionalProperties: {type: 'string'}},
    area_followers_from: {type: 'array', items: {type: 'string'}},
  },
}

export function loadNotificationRules(rulesDir?: string): NotificationRules {
  return loadRulesFile<NotificationRules>('notification', SCHEMA, rulesDir)
}

/** The named recipients of a notify effect for an event (no followers), without the actor. */
export function directRecipients(rules: NotificationRules, type: string, payload: Record<string, unknown>, params: Record<string, unknown>): string[] {
  const actor = str(payload, rules.actors[type])
  const out = new Set<string>()
  for (const field of (params.recipients as string[] | undefined) ?? []) {
    const user = str(payload, field)
    if (user && user !== actor) out.add(user)
  }
  if (params.target) {
    const user = str(payload, params.target as string)
    if (user && user !== actor) out.add(user)
  }
  return [...out]
}

export function createNotificationService(options: ServiceOptions): ServiceDefinition {
  const rules = loadNotificationRules(options.rulesDir)
  const effects = effectsByType(options.catalog, 'notification')
  const areaSources = new Set(rules.area_followers_from)
  return {
    name: 'notification',
    consumes: [...new Set([...effects.keys(), ...areaSources])],
    async handle(event, ctx) {
      const type = ctx.definition.type
      const payload = event.payload
      const projections = ctx.store.projections
      if (type === 'social.user.followed') {
        const followee = str(payload, 'followee_id')
        const follower = str(payload, 'follower_id')
        if (followee && follower) await projections.applyOnce(FOLLOWERS, followee, event.event_id, {$addToSet: {followers: follower}})
      }
      if (areaSources.has(type)) {
        const area = str(payload, 'area_id')
        const author = str(payload, 'author_id')
        if (area && author) await projections.applyOnce(AREA_FOLLOWERS, area, event.event_id, {$addToSet: {followers: author}})
      }
      for (const effect of effects.get(type) ?? []) {
        const params = effect.params
        if (effect.action === 'add_to_feed') {
          for (const user of directRecipients(rules, type, payload, params)) await addToFeed(rules, ctx, event, user, 'xp_earned', 'direct')
          continue
        }
        if (effect.action !== 'notify') continue
        const template = String(params.template)
        const channel = (params.channel as string | undefined) ?? 'in_app'
        for (const user of directRecipients(rules, type, payload, params)) {
          await addToFeed(rules, ctx, event, user, template, 'direct')
          await deliver(rules, ctx, event, user, template, channel, Boolean(params.batched))
        }
        if (params.followers_of) {
          const field = params.followers_of as string
          const key = str(payload, field)
          if (!key) continue
          const doc = await projections.get(field === 'area_id' ? AREA_FOLLOWERS : FOLLOWERS, key)
          const actor = str(payload, rules.actors[type])
          let notified = 0
          for (const user of (doc?.followers as string[] | undefined) ?? []) {
            if (user === actor) continue
            if (notified++ >= rules.max_fanout) break
            await addToFeed(rules, ctx, event, user, template, 'fanout')
            await deliver(rules, ctx, event, user, template, channel, false)
          }
        }
      }
    },
  }
}

async function addToFeed(rules: NotificationRules, ctx: HandlerContext, event: EventEnvelope, user: string, template: string, kind: 'direct' | 'fanout'): Promise<void> {
  await ctx.store.projections.applyOnce(FEEDS, user, `${event.event_id}:${template}`, {
    $inc: {[kind]: 1, unread: 1},
    $push: {items: {each: [{template, source_event_id: event.event_id, source_event_type: event.event_type, at: event.timestamp}], slice: -rules.feed_size}},
    $setOnInsert: {user_id: user},
  })
}

function deliver(rules: NotificationRules, ctx: HandlerContext, event: EventEnvelope, user: string, template: string, channel: string, batched: boolean): void {
  const payload = {
    notification_id: '',
    user_id: user,
    channel,
    template,
    source_event_type: ctx.definition.type,
    batched_count: 1,
  }
  if (batched) {
    const window = Math.floor(Date.parse(event.timestamp) / rules.batch_window_ms)
    const identity = `${user}:${template}:${window}`
    ctx.emit('notification.sent', {...payload, notification_id: stableId('notification', identity)}, {identity})
    return
  }
  ctx.emit('notification.sent', {...payload, notification_id: stableId('notification', event.event_id, user, template)}, {key: `${user}:${template}`})
}
