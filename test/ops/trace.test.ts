/**
 * trace on the in-process engine after a simulation: a registration journey as a causal tree, with
 * every service that consumes each event named, handled, with when and how many attempts.
 */
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {traceJourney, type TraceNode} from '../../src/ops/trace.js'
import {renderTrace} from '../../src/commands/trace.js'
import {replayGroups} from '../../src/services/replay-groups.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

describe('trace', () => {
  it('follows a registration through every service that consumes each of its events', {timeout: 300_000}, async () => {
    const runtime = await openRuntime({inProcess: true})
    const catalog = await loadCatalog()
    try {
      const report = await runSimulation({scenario: applyOverrides(loadScenario('steady'), {events: 400, rate: 400}), runtime, verify: true})
      expect(report.verify).toMatchObject({differences: 0})
      const groups = replayGroups(catalog, ['all'])
      const consumersOf = (type: string) => groups.filter((g) => g.accepts(type)).map((g) => g.name)
      let registration: string | undefined
      for await (const e of runtime.store.events.query({types: ['user.registered'], limit: 1})) registration = e.event_id
      const trace = await traceJourney({store: runtime.store, consumersOf, eventId: registration})
      expect(trace).not.toBeNull()
      const [root] = trace!.roots
      expect(root).toMatchObject({event_id: registration, event_type: 'user.registered', asked: true})
      // every service that consumes user.registered handled it, with its time and attempts
      const expected = consumersOf('user.registered')
      expect(expected.length).toBeGreaterThan(2)
      expect(root.hops.map((h) => h.group)).toEqual([...expected].sort())
      for (const hop of root.hops) expect(hop).toMatchObject({outcome: 'handled', attempts: 1})
      for (const hop of root.hops) expect(hop.latency_ms).toBeGreaterThanOrEqual(0)
      // what it caused hangs under it, each with its own consumers
      const all: TraceNode[] = []
      const walk = (n: TraceNode) => {
        all.push(n)
        n.children.forEach(walk)
      }
      walk(root)
      expect(all.map((n) => n.event_type)).toContain('payment.subscription.created')
      for (const node of all) for (const hop of node.hops) expect({event: node.event_type, group: hop.group, outcome: hop.outcome}).toMatchObject({outcome: 'handled'})
      const lines = renderTrace(trace!)
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(80)
      expect(lines.join('\n')).toContain('payment.subscription.created')

      expect(await traceJourney({store: runtime.store, consumersOf, eventId: 'not-an-event'})).toBeNull()
    } finally {
      await runtime.close()
    }
  })
})
