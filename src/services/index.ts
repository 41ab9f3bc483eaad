/** The TekTree services: one factory per consumer group, chosen by name. */
import {UserError} from '../errors.js'
import {createAnalyticsService} from './analytics/index.js'
import {createCacheService} from './cache/index.js'
import {createEmailService} from './email/index.js'
import {createGamificationService} from './gamification/index.js'
import {createNotificationService} from './notification/index.js'
import {createPaymentService} from './payment/index.js'
import {createRealtimeService} from './realtime/index.js'
import {createSearchService} from './search/index.js'
import {SERVICE_NAMES, type ServiceDefinition, type ServiceName, type ServiceOptions} from './types.js'
import {createUserService} from './user/index.js'

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

export function createServices(options: ServiceOptions & {only?: string[]}): ServiceDefinition[] {
  if (!options.catalog.tektree) return []
  return resolveServiceNames(options.only).map((name) => FACTORIES[name](options))
}
