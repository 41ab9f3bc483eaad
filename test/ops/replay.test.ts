/**
 * Replay on the in-process engine: each TekTree service rebuilt from scratch out of the event log
 * (verify then finds 0 differences), and a plain replay that reaches the named group only.
 */
import {describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {SystemClock} from '../../src/core/clock.js'
import {replay, untilQuiet} from '../../src/ops/replay.js'
import {startServices, waitForQuiet} from '../../src/services/host.js'
import {createServices, SERVICE_COLLECTIONS} from '../../src/services/index.js'
import {replayGroups} from '../../src/services/replay-groups.js'
import {verifyProjections} from '../../src/services/verify.js'
import {runSimulation} from '../../src/simulator/run.js'
import {applyOverrides, loadScenario} from '../../src/simulator/scenario.js'

describe('replay', () => {
  it('rebuilds each service from scratch out of the log: verify finds 0 differences; a plain replay reaches its group only', {timeout: 300_000}, async () => {
    const runtime = await openRuntime({inProcess: true})
    const catalog = await loadCatalog()
    try {
      const report = await runSimulation({scenario: applyOverrides(loadScenario('steady'), {events: 600, rate: 300}), runtime, verify: true})
      expect(report.verify).toMatchObject({differences: 0})
      const host = startServices({runtime, catalog, services: createServices({catalog, clock: new SystemClock(), emailDir: null}), consumerOptions: {blockMs: 20}})
      try {
        const received = () => Object.fromEntries(host.stats().map((s) => [s.group, s.received]))
        for (const group of replayGroups(catalog, ['all'])) {
          const handledBefore = received()[group.name]
          const before = await Promise.all(SERVICE_COLLECTIONS[group.name as keyof typeof SERVICE_COLLECTIONS].map((c) => runtime.store.projections.count(c)))
          // a document the log does not explain: gone after the rebuild
          const [first] = SERVICE_COLLECTIONS[group.name as keyof typeof SERVICE_COLLECTIONS]
          await runtime.store.projections.update(first, 'not-from-the-log', {$set: {stray: true}})
          const result = await replay({runtime, catalog, groups: [group], query: {}, fromScratch: true, quiet: {intervalMs: 100}})
          expect(result.interrupted).toBe(false)
          expect(result.dropped.collections).toContain(`seq_${group.name}`)
          expect(await waitForQuiet(runtime, host, {timeoutMs: 60_000})).toBe(true)
          // rebuilt by handling every event it consumes again, not left as it was
          expect(result.sent).toBeGreaterThan(0)
          expect(received()[group.name] - handledBefore).toBe(result.sent)
          expect(await runtime.store.projections.get(first, 'not-from-the-log')).toBeNull()
          const after = await Promise.all(SERVICE_COLLECTIONS[group.name as keyof typeof SERVICE_COLLECTIONS].map((c) => runtime.store.projections.count(c)))
          expect({group: group.name, counts: after}).toEqual({group: group.name, counts: before})
          const verify = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})
          expect({group: group.name, differences: verify.differences.slice(0, 5)}).toEqual({group: group.name, differences: []})
        }

        // Plain replay of knowledge events into search: search receives them again, nobody else does.
        const start = received()
        const [search] = replayGroups(catalog, ['search'])
        const result = await replay({runtime, catalog, groups: [search], query: {types: ['knowledge.*']}})
        expect(result.sent).toBeGreaterThan(0)
        expect(await waitForQuiet(runtime, host, {timeoutMs: 60_000})).toBe(true)
        const end = received()
        expect(end.search - start.search).toBe(result.sent)
        for (const group of Object.keys(end).filter((g) => g !== 'search')) expect({group, more: end[group] - start[group]}).toEqual({group, more: 0})
      } finally {
        await host.stop()
      }
    } finally {
      await runtime.close()
    }
  })

  it('rebuilds only once the group is quiet: waits out a backlog that drains, refuses one that a load keeps up, dropping nothing', {timeout: 60_000}, async () => {
    const runtime = await openRuntime({inProcess: true})
    const catalog = await loadCatalog()
    try {
      const [group] = replayGroups(catalog, ['search'])
      const topic = 'tektree.knowledge'
      await runtime.bus.ensureTopics([{name: topic, partitions: 2}])
      const sub = await runtime.bus.subscribe({group: group.name, consumer: 'c1', topics: [topic], batchSize: 5, blockMs: 20})
      const message = (i: number) => ({topic, key: `k${i % 4}`, value: '{}', headers: {}})
      const [collection] = group.collections
      await runtime.store.projections.update(collection, 'kept', {$set: {kept: true}})

      // A load that keeps coming: refused after the wait, with the group named and nothing dropped.
      let sent = 0
      const load = setInterval(() => void runtime.bus.publish([message(sent++)]), 10)
      const refused = await replay({runtime, catalog, groups: [group], query: {}, fromScratch: true, quiet: {timeoutMs: 500, intervalMs: 100}}).then(
        () => null,
        (error: unknown) => error as {code?: string; message: string},
      )
      clearInterval(load)
      expect(refused?.code).toBe('GROUP_BUSY')
      expect(refused?.message).toContain('search (backlog')
      expect(await runtime.store.projections.get(collection, 'kept')).toMatchObject({kept: true})

      // The backlog left, drained by a consumer meanwhile: waited for, then rebuilt.
      const states: number[] = []
      const drain = (async () => {
        for (let empty = 0; empty < 5; ) {
          const batch = await sub.next()
          empty = batch.length === 0 ? empty + 1 : 0
          await new Promise((resolve) => setTimeout(resolve, 30))
          await sub.ack(batch)
        }
      })()
      const result = await replay({runtime, catalog, groups: [group], query: {}, fromScratch: true, quiet: {timeoutMs: 20_000, intervalMs: 100, onWait: (state) => states.push(state.busy[0]?.backlog ?? 0)}})
      await drain
      expect(states.length).toBeGreaterThan(0)
      expect(result.dropped.collections).toContain(collection)
      expect(await runtime.store.projections.get(collection, 'kept')).toBeNull()
      expect((await untilQuiet(runtime, [group.name], {intervalMs: 50})).quiet).toBe(true)
      await sub.close()
    } finally {
      await runtime.close()
    }
  })
})
