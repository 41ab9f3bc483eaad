/** The three choreographies of seed 000 on the in-process engine; the oracle agrees with the result. */
import {afterEach, beforeAll, describe, expect, it} from 'vitest'
import {loadCatalog} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'
import {openRuntime} from '../../src/adapters/open.js'
import type {Runtime} from '../../src/core/runtime.js'
import {createStyle, stripAnsi, visibleWidth} from '../../src/cli/style.js'
import {renderDemo} from '../../src/commands/demo.js'
import {choreographyTests, engagementCase} from './choreography-cases.js'

let catalog: Catalog
const runtimes: Runtime[] = []
beforeAll(async () => {
  catalog = await loadCatalog()
})
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})
async function inProcess(): Promise<Runtime> {
  const runtime = await openRuntime({inProcess: true, log: () => undefined})
  runtimes.push(runtime)
  return runtime
}

describe('choreographies on the in-process engine', () => {
  choreographyTests(inProcess, () => catalog)
})

describe('the demo narration (tektree demo engagement)', () => {
  it('fits 80 columns and tells each reaction under the event that caused it', async () => {
    const result = await engagementCase(await inProcess(), catalog)
    for (const style of [createStyle({isTTY: false}), createStyle({isTTY: true, columns: 80}, {env: {}})]) {
      const lines = renderDemo(result, style)
      for (const line of lines) expect(visibleWidth(line), stripAnsi(line)).toBeLessThanOrEqual(80)
      const text = stripAnsi(lines.join('\n'))
      const at = (pattern: RegExp) => text.search(pattern)
      expect(at(/^ {3}knowledge\.answer\.accepted from knowledge/m)).toBeLessThan(at(/^ {4}-> gamification\.achievement\.unlocked: Linus unlocks "First accepted answer"$/m))
      expect(at(/unlocks "First accepted answer"/)).toBeLessThan(at(/^ {3}social\.content\.liked from knowledge/m))
      expect(at(/^ {4}-> gamification\.xp\.earned: \+50 XP to Linus \(total 160\)$/m)).toBeLessThan(at(/^ {3}social\.content\.liked/m))
      expect(at(/^ {4}-> gamification\.xp\.earned: \+2 XP to Linus \(total 162\)$/m)).toBeGreaterThan(at(/^ {3}social\.content\.liked/m))
      // a reaction to a reaction is indented under it
      expect(text).toMatch(/ {4}-> gamification\.achievement\.unlocked: Linus unlocks "First accepted answer"\n {7}-> notification\.sent: notify Linus: achievement_unlocked/)
    }
  })
})
