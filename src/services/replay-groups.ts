/** The TekTree services as replay targets: their subscriptions and what each owns. */
import type {Catalog} from '../catalog/types.js'
import {SystemClock} from '../core/clock.js'
import {resolveSubscription} from '../engine/consumer.js'
import type {ReplayGroup} from '../ops/replay.js'
import {createServices, resolveServiceNames, SERVICE_COLLECTIONS} from './index.js'

/** `names` may hold "all"; an unknown name is a UserError listing the services. */
export function replayGroups(catalog: Catalog, names: readonly string[], rulesDir?: string): ReplayGroup[] {
  const only = names.includes('all') ? undefined : resolveServiceNames(names)
  return createServices({catalog, clock: new SystemClock(), rulesDir, emailDir: null, only}).map((service) => {
    const {accepts} = resolveSubscription(catalog, service.consumes)
    return {
      name: service.name,
      accepts: (type: string) => {
        const definition = catalog.get(type)
        return definition !== undefined && accepts(definition)
      },
      collections: SERVICE_COLLECTIONS[service.name as keyof typeof SERVICE_COLLECTIONS] ?? [],
      leaderboards: service.name === 'gamification',
    }
  })
}
