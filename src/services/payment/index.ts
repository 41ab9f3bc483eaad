/**
 * Payment: a free subscription for every new user, the subscription read model, usage metering of
 * knowledge posts against per-tier monthly quotas (fixtures/catalog/rules/payment.yaml), invoices
 * for paid upgrades, and the webhook audit.
 *
 * Besides what the catalog lists, payment consumes its own payment.subscription.upgraded /
 * downgraded / cancelled: those are produced by TekTree's payment API (the simulator plays it), and
 * this service's read model of each user's tier is built from them.
 */
import type {EventEnvelope} from '../../core/envelope.js'
import type {HandlerContext, ServiceDefinition} from '../../engine/consumer.js'
import {loadRulesFile} from '../rules.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, monthOf, stableId, str} from '../util.js'

export const SUBSCRIPTIONS = 'payment_subscriptions'
export const USAGE = 'payment_usage'
export const WEBHOOKS = 'payment_webhooks'
export const INVOICES = 'payment_invoices'
export const TIERS = ['free', 'pro', 'team', 'enterprise'] as const
export type Tier = (typeof TIERS)[number]

export interface PaymentRules {
  tiers: Record<Tier, {price_cents: number; quotas: Record<string, number | null>}>
  currency: string
}

const tier = {type: 'object', required: ['price_cents', 'quotas'], properties: {price_cents: {type: 'integer', minimum: 0}, quotas: {type: 'object', additionalProperties: {type: ['integer', 'null'], minimum: 0}}}}
const SCHEMA = {
  type: 'object',
  required: ['tiers', 'currency'],
  properties: {
    tiers: {type: 'object', required: [...TIERS], additionalProperties: false, properties: Object.fromEntries(TIERS.map((t) => [t, tier]))},
    currency: {type: 'string', pattern: '^[A-Z]{3}$'},
  },
}

export function loadPaymentRules(rulesDir?: string): PaymentRules {
  return loadRulesFile<PaymentRules>('payment', SCHEMA, rulesDir)
}

export const usageId = (user: string, quota: string, period: string) => `${user}:${quota}:${period}`
export const subscriptionIdFor = (user: string) => stableId('subscription', user)

const OWN_EVENTS = ['payment.subscription.upgraded', 'payment.subscription.downgraded', 'payment.subscription.cancelled']

export function createPaymentService(options: ServiceOptions): ServiceDefinition {
  const rules = loadPaymentRules(options.rulesDir)
  const effects = effectsByType(options.catalog, 'payment')
  const smallestQuota = new Map<string, number>()
  for (const t of TIERS) {
    for (const [quota, limit] of Object.entries(rules.tiers[t].quotas)) {
      if (limit !== null) smallestQuota.set(quota, Math.min(limit, smallestQuota.get(quota) ?? Number.POSITIVE_INFINITY))
    }
  }

  return {
    name: 'payment',
    consumes: [...new Set([...effects.keys(), ...OWN_EVENTS, 'payment.webhook.received'])],
    async handle(event, ctx) {
      const type = ctx.definition.type
      const payload = event.payload
      const projections = ctx.store.projections
      if (OWN_EVENTS.includes(type)) {
        const user = str(payload, 'user_id')
        if (!user) return
        const next = type === 'payment.subscription.cancelled' ? {tier: 'free', status: 'cancelled'} : {tier: String(payload.new_tier), status: 'active'}
        await projections.applyOnce(SUBSCRIPTIONS, user, event.event_id, {
          $set: {...next, subscription_id: str(payload, 'subscription_id') ?? subscriptionIdFor(user)},
          $setOnInsert: {user_id: user},
        })
        if (type === 'payment.subscription.upgraded') invoice(rules, ctx, event, user, next.tier as Tier)
        return
      }
      for (const effect of effects.get(type) ?? []) {
        switch (effect.action) {
          case 'create_subscription': {
            const user = str(payload, 'user_id')
            if (!user) break
            const subscriptionId = subscriptionIdFor(user)
            const initial = (effect.params.tier as string) ?? 'free'
            // $setOnInsert: an upgrade handled first (another topic, no order between them) wins.
            await projections.applyOnce(SUBSCRIPTIONS, user, event.event_id, {$setOnInsert: {user_id: user, subscription_id: subscriptionId, tier: initial, status: 'active'}})
            ctx.emit('payment.subscription.created', {subscription_id: subscriptionId, user_id: user, tier: initial}, {identity: `${user}:subscription.created`})
            break
          }
          case 'meter_usage': {
            const user = str(payload, effect.params.target as string)
            const quota = effect.params.quota as string
            if (user) await meter(rules, smallestQuota, ctx, event, user, quota)
            break
          }
          case 'audit_log':
          default:
            break
        }
      }
      if (type === 'payment.webhook.received') {
        await projections.applyOnce(WEBHOOKS, String(payload.webhook_id), event.event_id, {
          $set: {...payload, received_at: event.timestamp, correlation_id: event.correlation_id},
        })
      }
    },
  }
}

async function meter(rules: PaymentRules, smallest: Map<string, number>, ctx: HandlerContext, event: EventEnvelope, user: string, quota: string): Promise<void> {
  const period = monthOf(event.timestamp)
  const id = usageId(user, quota, period)
  const projections = ctx.store.projections
  await projections.applyOnce(USAGE, id, event.event_id, {$inc: {used: 1}, $setOnInsert: {user_id: user, quota, period}})
  const floor = smallest.get(quota)
  if (floor === undefined) return
  const used = Number((await projections.get(USAGE, id))?.used ?? 0)
  // Below every tier's limit nothing can be exceeded: skip reading the tier (the common case).
  if (used <= floor) return
  const subscription = await projections.get(SUBSCRIPTIONS, user)
  const current = ((subscription?.tier as Tier | undefined) ?? 'free') as Tier
  const limit = rules.tiers[current]?.quotas[quota]
  if (limit === null || limit === undefined || used <= limit) return
  ctx.emit('payment.quota.exceeded', {user_id: user, tier: current, quota, limit, used, period}, {identity: `${user}:quota:${quota}:${period}:${current}`})
}

function invoice(rules: PaymentRules, ctx: HandlerContext, event: EventEnvelope, user: string, to: Tier): void {
  const price = rules.tiers[to]?.price_cents ?? 0
  if (price <= 0) return
  ctx.emit('payment.invoice.paid', {
    invoice_id: stableId('invoice', event.event_id),
    subscription_id: str(event.payload, 'subscription_id') ?? subscriptionIdFor(user),
    user_id: user,
    tier: to,
    amount_cents: price,
    currency: rules.currency,
  })
}
