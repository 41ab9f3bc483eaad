/**
 * Reconcile on a real redis-server (AOF everysec, as the embedded one) and a SQLite store file: the
 * bus loses the tail of what the relay had published (as a crash loses AOF everysec's last second),
 * the services run and verify finds the projections short; reconcile republishes exactly what is
 * missing, the services catch up, and verify finds nothing. Its own redis-server, started here.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Redis} from 'ioredis'
import {afterAll, describe, expect, it} from 'vitest'
import {openRuntime} from '../../src/adapters/open.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {VirtualClock} from '../../src/core/clock.js'
import type {Runtime} from '../../src/core/runtime.js'
import {startRedisServer} from '../../src/embedded/redis-server.js'
import {reconcile} from '../../src/engine/reconcile.js'
import {startServices, waitForQuiet} from '../../src/services/host.js'
import {createServices} from '../../src/services/index.js'
import {verifyProjections} from '../../src/services/verify.js'
import {runSimulation} from '../../src/simulator/run.js'
import {parseScenario} from '../../src/simulator/scenario.js'

const dir = mkdtempSync(path.join(tmpdir(), 'tektree-reconcile-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

async function runServicesUntilQuiet(runtime: Runtime): Promise<void> {
  const catalog = await loadCatalog()
  const host = startServices({runtime, catalog, services: createServices({catalog, clock: runtime.clock, emailDir: path.join(dir, 'mail')})})
  try {
    expect(await waitForQuiet(runtime, host, {timeoutMs: 60_000})).toBe(true)
  } finally {
    await host.stop({drainTimeoutMs: 10_000})
  }
}

describe('reconcile: events the store marked published that the bus lost', () => {
  it('finds exactly the lost ones, republishes them, and verify then finds nothing', {timeout: 180_000}, async () => {
    const redis = await startRedisServer({dir: path.join(dir, 'redis'), appendonly: true})
    const admin = new Redis(redis.url, {lazyConnect: true, maxRetriesPerRequest: 1})
    // Retries wait 0 s / 10 s / 60 s: virtual time makes any retry pass at once.
    const runtime = await openRuntime({busUrl: redis.url, storeUrl: `sqlite:${path.join(dir, 'store.db')}`, ephemeral: true, clock: new VirtualClock({speed: 3600}), log: () => undefined})
    try {
      const catalog = await loadCatalog()
      // Given: simulated journeys published through the store, the outbox and the relay, with no
      // consumer running yet.
      const scenario = parseScenario(
        {name: 'reconcile', seed: 21, population: {users: 40, areas: 2}, rate: {shape: 'step', stages: [{duration: '5s', target: 1000}]}, events: 400},
        'reconcile.yaml',
      )
      const report = await runSimulation({scenario, runtime, services: [], workers: 1})
      expect(report.drained).toBe(true)
      expect(await runtime.store.outbox.pending()).toBe(0)
      const clean = await reconcile({store: runtime.store, bus: runtime.bus, catalog, dryRun: true})
      expect(clean).toMatchObject({checked: 400, missing: 0})

      // When: the bus loses the newest entries of every partition (what a crash takes from AOF
      // everysec), though the store has them as published.
      await admin.connect()
      const lost: string[] = []
      for (const spec of catalog.topics()) {
        for (let p = 0; p < spec.partitions; p++) {
          const stream = `${spec.name}:p${p}`
          const newest = (await admin.call('XREVRANGE', stream, '+', '-', 'COUNT', '2')) as Array<[string, string[]]>
          for (const [id, fields] of newest) {
            lost.push(JSON.parse(fields[fields.indexOf('h') + 1]).event_id)
            await admin.xdel(stream, id)
          }
        }
      }
      expect(lost.length).toBeGreaterThan(10)

      // The services see only what is left: verify finds the projections short.
      await runServicesUntilQuiet(runtime)
      const before = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})
      expect(before.differences.length).toBeGreaterThan(0)

      // Then: a dry run lists exactly the lost events (derived ones published since are all there).
      const dry = await reconcile({store: runtime.store, bus: runtime.bus, catalog, dryRun: true, listLimit: 1_000})
      expect(dry.missing).toBe(lost.length)
      expect(dry.republished).toBe(0)
      expect(new Set(dry.sample.map((m) => m.event_id))).toEqual(new Set(lost))
      expect(dry.checked).toBeGreaterThan(400)

      // Reconcile republishes them (small batches: several publishes), the services catch up, and
      // verify finds nothing; a second reconcile finds nothing missing.
      const fixed = await reconcile({store: runtime.store, bus: runtime.bus, catalog, batchSize: 7})
      expect(fixed).toMatchObject({missing: lost.length, republished: lost.length, dryRun: false})
      await runServicesUntilQuiet(runtime)
      const after = await verifyProjections({store: runtime.store, leaderboards: runtime.leaderboards, catalog})
      expect(after.differences).toEqual([])
      expect((await reconcile({store: runtime.store, bus: runtime.bus, catalog, dryRun: true})).missing).toBe(0)

      // Retention is not loss: a topic's events older than its retention period may be gone.
      const social = catalog.topics().find((t) => t.name === 'tektree.social')!
      const socialIds = new Set<string>()
      for (let p = 0; p < social.partitions; p++) {
        for (const [, fields] of (await admin.call('XRANGE', `${social.name}:p${p}`, '-', '+')) as Array<[string, string[]]>) socialIds.add(JSON.parse(fields[fields.indexOf('h') + 1]).event_id)
        await admin.call('XTRIM', `${social.name}:p${p}`, 'MAXLEN', '0')
      }
      expect(socialIds.size).toBeGreaterThan(0)
      // Today those are lost (republishing them is harmless); a retention period later, they aged out.
      expect((await reconcile({store: runtime.store, bus: runtime.bus, catalog, dryRun: true})).missing).toBe(socialIds.size)
      const later = Date.now() + social.retention!.maxAgeMs! + 60_000
      const aged = await reconcile({store: runtime.store, bus: runtime.bus, catalog, dryRun: true, now: () => later})
      expect(aged).toMatchObject({missing: 0, trimmed: socialIds.size})
    } finally {
      admin.disconnect()
      await runtime.close()
      await redis.stop()
    }
  })
})
