/**
 * A rebuild after an archive run (RELIABILITY finding 28): the projections held the archived
 * events' effects, so `replay --from-scratch` replays them from the archive too, merged by time
 * as verify reads them; without them every archived event's effects were lost (a profile's whole
 * history, an achievement whose announcement was archived). --shadow reads them likewise.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {SystemClock} from '../../src/core/clock.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {queryArchive, runArchive} from '../../src/ops/archive/index.js'
import {replay} from '../../src/ops/replay.js'
import {shadowReplay} from '../../src/ops/shadow.js'
import {startServices, waitForQuiet} from '../../src/services/host.js'
import {createServices} from '../../src/services/index.js'
import {replayGroups} from '../../src/services/replay-groups.js'
import {verifyProjections} from '../../src/services/verify.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

const YEAR = 365 * 24 * 3600 * 1000

describe('rebuild after an archive run', () => {
  it('replays the archived events too: verify finds 0 differences, where the store alone loses their effects', {timeout: 240_000}, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tektree-replay-archive-'))
    const runtime = await openRuntime({busUrl: 'memory:', storeUrl: `sqlite:${path.join(dir, 'store.db')}`, ephemeral: true})
    const catalog = await loadCatalog()
    const archive = path.join(dir, 'archive')
    const archived = (): AsyncIterable<EventEnvelope> =>
      (async function* () {
        for await (const {record} of queryArchive({dir: archive})) yield record.event
      })()
    const verify = async () => (await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog, archived: archived()})).differences
    try {
      const scenario = applyOverrides(loadScenario('steady'), {events: 800, rate: 800})
      expect((await runSimulation({scenario, runtime, verify: true})).verify).toMatchObject({differences: 0})
      // The gamification events only (achievements among them), then everything past retention.
      const some = await runArchive({store: runtime.store, catalog, dir: archive, asOf: Date.now() + 3 * YEAR, types: ['gamification.*']})
      expect(some.archived).toBeGreaterThan(0)
      expect(await verify()).toEqual([])
      const [gamification] = replayGroups(catalog, ['gamification'])

      // A shadow run over the log and the archive finds the live state; over the store alone, not.
      const shadow = (withArchive: boolean) =>
        shadowReplay({
          live: runtime,
          catalog,
          validator: createValidator(catalog),
          service: createServices({catalog, clock: new SystemClock(), emailDir: null, only: ['gamification']})[0],
          collections: gamification.collections,
          leaderboards: gamification.leaderboards,
          archived: withArchive ? archived() : undefined,
        })
      expect((await shadow(true)).differences.slice(0, 5)).toEqual([])
      expect((await shadow(false)).differences.length).toBeGreaterThan(0)

      const host = startServices({runtime, catalog, services: createServices({catalog, clock: new SystemClock(), emailDir: null}), consumerOptions: {blockMs: 20}})
      try {
        const rebuild = async (withArchive: boolean) => {
          const result = await replay({runtime, catalog, groups: [gamification], query: {}, fromScratch: true, quiet: {intervalMs: 100}, archived: withArchive ? archived() : undefined})
          expect(await waitForQuiet(runtime, host, {timeoutMs: 60_000})).toBe(true)
          return result
        }
        // the store alone: what the archived events did is gone (the defect)
        expect((await rebuild(false)).archived).toBe(0)
        expect((await verify()).length).toBeGreaterThan(0)
        // with the archive: all of it back
        const result = await rebuild(true)
        expect(result.archived).toBeGreaterThan(0)
        expect((await verify()).slice(0, 5)).toEqual([])

        // Everything past retention archived now: the rebuild still finds it all.
        await runArchive({store: runtime.store, catalog, dir: archive, asOf: Date.now() + 3 * YEAR})
        await rebuild(true)
        expect((await verify()).slice(0, 5)).toEqual([])
      } finally {
        await host.stop()
      }
    } finally {
      await runtime.close()
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
