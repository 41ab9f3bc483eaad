/**
 * Any catalog without x-tektree (catalog.tektree === false): events of every type, generated from
 * their JSON Schemas (one compiled generator per type), at the requested rate. No TekTree services
 * run on such a catalog; the bus and the store do.
 */
import {base, en, Faker} from '@faker-js/faker'
import type {Catalog, JsonSchema} from '../catalog/types.js'
import type {DraftSource, SimDraft} from './journeys.js'
import {createRandom, runKey, SeededEventIds} from './random.js'

export type PayloadGeneratorFactory = (schema: JsonSchema) => (faker: Faker) => Record<string, unknown>

export function createForeignSource(options: {catalog: Catalog; seed: number | null; generatorFor: PayloadGeneratorFactory; runId?: string | null}): DraftSource {
  const {catalog} = options
  const random = createRandom(options.seed)
  const faker = new Faker({locale: [en, base]})
  faker.seed(options.seed ?? random.int(0x7fffffff))
  const types = catalog.events.map((e) => ({type: e.type, generate: options.generatorFor(e.payloadSchema)}))
  if (types.length === 0) throw new Error(`${catalog.source} defines no events to simulate`)
  const counts: Record<string, number> = Object.fromEntries(types.map((t) => [t.type, 0]))
  const seeded = options.seed !== null
  // As in the journeys: a seeded run's event ids are keyed by the run, so runs do not collide.
  const eventIds = new SeededEventIds(options.runId ? runKey(options.runId) : null, 1)
  return {
    next(n: number): SimDraft[] {
      const out: SimDraft[] = []
      for (let i = 0; i < n; i++) {
        const t = types[random.int(types.length)]
        counts[t.type]++
        out.push({type: t.type, payload: t.generate(faker), correlationId: random.uuid(), eventId: seeded ? eventIds.next(random) : null})
      }
      return out
    },
    counts: () => ({...counts}),
  }
}
