/**
 * A shadow replay: the same rules reproduce the live state exactly (0 differences, nothing live
 * touched); a changed rule shows exactly the projections it changes.
 */
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {SystemClock} from '../../src/core/clock.js'
import {shadowReplay} from '../../src/ops/shadow.js'
import {createServices, SERVICE_COLLECTIONS} from '../../src/services/index.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

describe('shadow replay', () => {
  it('reproduces the live state with the same rules, and shows exactly what a changed rule changes', {timeout: 300_000}, async () => {
    const runtime = await openRuntime({inProcess: true})
    const catalog = await loadCatalog()
    const validator = createValidator(catalog)
    const rules = mkdtempSync(join(tmpdir(), 'tektree-rules-'))
    try {
      const report = await runSimulation({scenario: applyOverrides(loadScenario('steady'), {events: 800, rate: 400}), runtime, verify: true})
      expect(report.verify).toMatchObject({differences: 0})
      const service = (name: 'gamification' | 'payment', rulesDir?: string) => createServices({catalog, clock: new SystemClock(), emailDir: null, rulesDir, only: [name]})[0]
      const profilesBefore = await runtime.store.projections.find('gamification_profiles')

      for (const name of ['gamification', 'payment'] as const) {
        const same = await shadowReplay({live: runtime, catalog, validator, service: service(name), collections: SERVICE_COLLECTIONS[name], leaderboards: name === 'gamification'})
        expect(same.events).toBeGreaterThan(0)
        expect(same.documents.shadow).toBe(same.documents.live)
        expect({name, differences: same.differences.slice(0, 5)}).toEqual({name, differences: []})
      }

      // Level 3 from 150 XP instead of 250: exactly the profiles with 150-249 XP change, in `level` only.
      cpSync(join(process.cwd(), 'fixtures/catalog/rules'), rules, {recursive: true})
      const file = join(rules, 'gamification.yaml')
      writeFileSync(file, readFileSync(file, 'utf8').replace('levels: [0, 100, 250,', 'levels: [0, 100, 150,'))
      const changed = await shadowReplay({live: runtime, catalog, validator, service: service('gamification', rules), collections: SERVICE_COLLECTIONS.gamification, leaderboards: true})
      const expected = profilesBefore.filter((p) => Number(p.xp) >= 150 && Number(p.xp) < 250).map((p) => String(p._id)).sort()
      expect(expected.length).toBeGreaterThan(0)
      expect(changed.differences.map((d) => d.collection + ' ' + d.field).filter((k, i, all) => all.indexOf(k) === i)).toEqual(['gamification_profiles level'])
      expect(changed.differences.map((d) => d.id).sort()).toEqual(expected)
      expect(changed.differences.every((d) => d.live === 2 && d.shadow === 3)).toBe(true)

      // and nothing live was touched
      expect(await runtime.store.projections.find('gamification_profiles')).toEqual(profilesBefore)
    } finally {
      rmSync(rules, {recursive: true, force: true})
      await runtime.close()
    }
  })
})
