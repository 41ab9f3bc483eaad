/**
 * What the DLQ must hold after a simulated run with faults, computed from the faults' own rules
 * (src/simulator/faults.ts), never from the DLQ itself: the oracle (verify) leaves dead-lettered
 * events out of its expectations, so an event dead-lettered by mistake would pass verify unseen.
 *
 * - A permanent handler failure of group G on event E happens when unitHash(`G:E:permanent`) is
 *   under G's rate: every such (G, E) of the log, for a G that takes E's type, is dead-lettered with
 *   SIMULATED_PERMANENT_FAILURE, once.
 * - A poison pill is dead-lettered by every group that takes the type named in its header, with a
 *   parse or validation error: as many distinct pills as the report says were sent.
 * - Nothing else: no transient failure or crash may use up an event's attempts.
 */
import type {Catalog} from '../../../src/catalog/types.js'
import type {Store} from '../../../src/core/ports.js'
import {resolveSubscription} from '../../../src/engine/consumer.js'
import {SystemClock} from '../../../src/core/clock.js'
import {createServices} from '../../../src/services/index.js'
import {unitHash} from '../../../src/simulator/random.js'

const POISON_CODES = new Set(['INVALID_JSON', 'VALIDATION_FAILED', 'UNKNOWN_EVENT_TYPE'])

export interface DeadLetterCheck {
  /** Records nobody expected: group, code, event type. */
  unexpected: string[]
  /** Expected (group, event) permanent failures and poison deliveries that are not there. */
  missing: string[]
  /** Counts: permanent failures, poison records, distinct pills. */
  permanent: number
  poisonRecords: number
  pills: number
}

export async function checkDeadLetters(store: Store, catalog: Catalog, permanentRates: Readonly<Record<string, number>>, poisonSent: number): Promise<DeadLetterCheck> {
  const groups = createServices({catalog, clock: new SystemClock(), emailDir: null}).map((s) => ({name: s.name, accepts: resolveSubscription(catalog, s.consumes).accepts}))
  const expectedPermanent = new Set<string>()
  for await (const event of store.events.query({order: 'asc'})) {
    const definition = catalog.get(event.event_type)
    if (!definition) continue
    for (const group of groups) {
      const rate = permanentRates[group.name] ?? 0
      if (rate > 0 && group.accepts(definition) && unitHash(`${group.name}:${event.event_id}:permanent`) < rate) expectedPermanent.add(`${group.name} ${event.event_id}`)
    }
  }
  const unexpected: string[] = []
  const permanentSeen = new Set<string>()
  const pills = new Map<string, {type: string | null; groups: Set<string>}>()
  let poisonRecords = 0
  for (const record of await store.dlq.list({limit: 1_000_000})) {
    const code = record.error.error.code
    const key = `${record.group} ${record.event_id}`
    if (code === 'SIMULATED_PERMANENT_FAILURE' && expectedPermanent.has(key) && !permanentSeen.has(key)) {
      permanentSeen.add(key)
      continue
    }
    const definition = record.event_type ? catalog.get(record.event_type) : undefined
    const takes = definition !== undefined && groups.some((g) => g.name === record.group && g.accepts(definition))
    if (POISON_CODES.has(code) && record.envelope === null && takes) {
      poisonRecords++
      const pill = pills.get(record.raw) ?? {type: record.event_type, groups: new Set<string>()}
      if (pill.groups.has(record.group)) unexpected.push(`${record.group} ${code} ${record.event_type} (the same pill twice)`)
      pill.groups.add(record.group)
      pills.set(record.raw, pill)
      continue
    }
    unexpected.push(`${record.group} ${code} ${record.event_type} ${record.event_id}`)
  }
  const missing = [...expectedPermanent].filter((key) => !permanentSeen.has(key)).map((key) => `${key} SIMULATED_PERMANENT_FAILURE`)
  for (const [raw, pill] of pills) {
    const definition = pill.type ? catalog.get(pill.type) : undefined
    for (const group of groups) if (definition && group.accepts(definition) && !pill.groups.has(group.name)) missing.push(`${group.name} poison ${pill.type} ${raw.slice(0, 40)}`)
  }
  if (pills.size < poisonSent) missing.push(`${poisonSent - pills.size} poison pill(s) in no group's DLQ`)
  if (pills.size > poisonSent) unexpected.push(`${pills.size - poisonSent} more poison pills than were sent`)
  return {unexpected, missing, permanent: permanentSeen.size, poisonRecords, pills: pills.size}
}
