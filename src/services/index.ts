/** The TekTree services: one factory per consumer group, chosen by name. */
import {UserError} from '../errors.js'
import {AUDIT, DAILY, DAU, createAnalyticsService} from './analytics/index.js'
import {createCacheService, INVALIDATIONS} from './cache/index.js'
import {createEmailService, MESSAGES} from './email/index.js'
import {createGamificationService, PROFILES} from './gamification/index.js'
import {AREA_FOLLOWERS, createNotificationService, FEEDS, FOLLOWERS} from './notification/index.js'
import {createPaymentService, INVOICES, SUBSCRIPTIONS, USAGE, WEBHOOKS} from './payment/index.js'
import {createRealtimeService, PUSHES} from './realtime/index.js'
import {createSearchService, DOCUMENTS} from './search/index.js'
import {SERVICE_NAMES, type ServiceDefinition, type ServiceName, type ServiceOptions} from './types.js'
import {BADGES, createUserService} from './user/index.js'

export {SERVICE_NAMES, type ServiceName, type ServiceOptions}

const FACTORIES: Record<ServiceName, (options: ServiceOptions) => ServiceDefinition> = {
  gamification: createGamificationService,
  payment: createPaymentService,
  notification: createNotificationService,
  search: createSearchService,
  cache: createCacheService,
  analytics: createAnalyticsService,
  realtime: createRealtimeService,
  user: createUserService,
  email: createEmailService,
}

/** Checks `--only` names (absent = all, empty = none); a typo is a user error naming the valid ones. */
export function resolveServiceNames(only?: readonly string[]): ServiceName[] {
  if (!only) return [...SERVICE_NAMES]
  const unknown = only.filter((name) => !(SERVICE_NAMES as readonly string[]).includes(name))
  if (unknown.length > 0) {
    throw new UserError(`Unknown service${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, {
      code: 'UNKNOWN_SERVICE',
      hint: `The services are ${SERVICE_NAMES.join(', ')}.`,
      exitCode: 2,
    })
  }
  return SERVICE_NAMES.filter((name) => only.includes(name))
}

/**
 * Each group's projection collections (besides seq_<group>, the runner's sequence guard), so a
 * replay from scratch can drop them; gamification also owns the leaderboards.
 */
export const SERVICE_COLLECTIONS: Record<ServiceName, readonly string[]> = {
  gamification: [PROFILES],
  payment: [SUBSCRIPTIONS, USAGE, WEBHOOKS, INVOICES],
  notification: [FEEDS, FOLLOWERS, AREA_FOLLOWERS],
  search: [DOCUMENTS],
  cache: [INVALIDATIONS],
  analytics: [DAU, DAILY, AUDIT],
  realtime: [PUSHES],
  user: [BADGES],
  email: [MESSAGES],
}

export function createServices(options: ServiceOptions & {only?: string[]}): ServiceDefinition[] {
  if (!options.catalog.tektree) return []
  return resolveServiceNames(options.only).map((name) => FACTORIES[name](options))
}
