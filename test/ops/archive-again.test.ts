/**
 * Archive beside a store that goes on: an event announced again after its first copy was archived
 * (a threshold event's id is its identity: the same user's achievement, whenever it is seen again)
 * is a duplicate, not a new event that every downstream group handles again (RELIABILITY finding
 * 24: `archive run --as-of` a date to come, then another run of the same seed's users).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {queryArchive, runArchive} from '../../src/ops/archive/index.js'
import {verifyProjections} from '../../src/services/verify.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

const YEAR = 365 * 24 * 3600 * 1000

describe('archive, then more of the same users', () => {
  it('keeps archived ids known: a threshold event announced again is not handled again, verify finds 0 differences', {timeout: 180_000}, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-archive-again-'))
    const runtime = await openRuntime({busUrl: 'memory:', storeUrl: `sqlite:${path.join(dir, 'store.db')}`, ephemeral: true})
    const catalog = await loadCatalog()
    const archive = path.join(dir, 'archive')
    try {
      const scenario = applyOverrides(loadScenario('steady'), {events: 1_500, rate: 1_000})
      expect((await runSimulation({scenario, runtime, verify: true})).verify).toMatchObject({differences: 0})
      const result = await runArchive({store: runtime.store, catalog, dir: archive, asOf: Date.now() + 3 * YEAR})
      const unlocked = result.types.find((t) => t.type === 'gamification.achievement.unlocked')
      expect(unlocked?.archived).toBeGreaterThan(0)
      const archivedIds = new Set<string>()
      for await (const {record} of queryArchive({dir: archive})) archivedIds.add(record.event.event_id)
      // The same seed's users again: they reach what they had reached, and announce it again.
      await runSimulation({scenario, runtime})
      const back: string[] = []
      for await (const event of runtime.store.events.query({})) if (archivedIds.has(event.event_id)) back.push(`${event.event_type} ${event.event_id}`)
      expect(back).toEqual([])
      const verify = await verifyProjections({
        store: runtime.store,
        leaderboards: runtime.leaderboards,
        catalog,
        archived: (async function* () {
          for await (const {record} of queryArchive({dir: archive})) yield record.event
        })(),
      })
      expect(verify.differences.slice(0, 5)).toEqual([])
    } finally {
      await runtime.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
