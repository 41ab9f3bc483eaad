/**
 * The simulator on the Redis bus (in-process store, so the test needs only redis-server): faults
 * reach their effects the same way as in-process.
 */
import {randomUUID} from 'node:crypto'
import {describe, expect, inject, it} from 'vitest'
import {VirtualClock} from '../../src/core/clock.js'
import type {EventEnvelope} from '../../src/core/envelope.js'
import {createMemoryLeaderboards, createMemoryStore} from '../../src/adapters/memory/index.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {createRedisBus} from '../../src/adapters/redis/bus.js'
import type {Runtime} from '../../src/core/runtime.js'
import {runSimulation} from '../../src/simulator/run.js'
import {JOURNEY_STEPS, parseScenario, type JourneyStep} from '../../src/simulator/scenario.js'
import type {SimService} from '../../src/simulator/services-bridge.js'

const redisUrl = inject('redisUrl')

describe.skipIf(!redisUrl)(`simulate on Redis ${redisUrl ? '' : `(skipped: ${inject('redisUnavailable')})`}`, () => {
  it('poison -> DLQ, duplicates -> no double effect, transient failures -> retried', async () => {
    const bus = await createRedisBus({url: redisUrl!})
    const store = createMemoryStore()
    const runtime: Runtime = {
      bus,
      store,
      leaderboards: createMemoryLeaderboards(),
      clock: new VirtualClock({speed: 3600}),
      metrics: createMetrics(),
      endpoints: {bus: redisUrl!, store: null},
      describe: () => ({
        bus: {kind: 'redis', location: redisUrl!, origin: 'external'},
        store: {kind: 'memory', location: 'in-process', origin: 'in-process'},
        leaderboards: {kind: 'memory', location: 'in-process', origin: 'in-process'},
      }),
      close: async () => {
        await bus.close()
        await store.close()
      },
    }
    try {
      const name = `sim_${randomUUID().slice(0, 8)}`
      const service: SimService = {
        name,
        consumes: ['user.*'],
        async handle(event: EventEnvelope) {
          // The Redis server is shared by the suite: count only this run's events (in this store).
          if (!(await store.events.get(event.event_id))) return
          await store.projections.applyOnce(name, 'total', event.event_id, {$inc: {n: 1}})
        },
      }
      const journeys = {...Object.fromEntries(JOURNEY_STEPS.map((s) => [s, 0])), register: 2, authenticate: 3} as Record<JourneyStep, number>
      const scenario = parseScenario(
        {
          name: 'redis-faults',
          seed: 9,
          population: {users: 100, areas: 1},
          journeys,
          rate: {shape: 'step', stages: [{duration: '5s', target: 1000}]},
          events: 500,
          faults: {poison_pct: 2, duplicate_pct: 5, handler_failure: {[name]: 0.1}},
          clock: {speed: 3600},
        },
        'redis-faults.yaml',
      )
      const report = await runSimulation({scenario, runtime, services: [service]})
      expect(report.drained).toBe(true)
      expect(report.events.simulated).toBe(500)
      expect(report.faults.duplicates).toBeGreaterThan(5)
      expect(report.faults.transientFailures).toBeGreaterThan(10)
      expect(report.retries).toBeGreaterThanOrEqual(report.faults.transientFailures)
      // Poison from other suites' runs may land in this group too: at least ours are there.
      expect(await store.dlq.count({group: name})).toBeGreaterThanOrEqual(report.faults.poison)
      expect(Number((await store.projections.get(name, 'total'))?.n)).toBe(500)
    } finally {
      await runtime.close()
    }
  })
})
