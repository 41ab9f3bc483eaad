/**
 * The dashboard's feed on the in-process bus and store: what one reading gathers (the processes'
 * snapshots, lag per group, the DLQ by cause, the open entry), the retry of an entry by the path of
 * `tektree dlq retry` (the group's own topic), and the tail that runs only while its view is open.
 */
import {describe, expect, it} from 'vitest'
import {createMemoryBus, createMemoryStore} from '../../src/adapters/memory/index.js'
import {loadCatalog} from '../../src/catalog/load.js'
import {directTopic, REDRIVE_HEADER} from '../../src/engine/direct.js'
import {startMetricsBeacon} from '../../src/engine/metrics/beacon.js'
import {createMetrics} from '../../src/engine/metrics/index.js'
import {DashboardFeed} from '../../src/ui/feed.js'
import {initialUiState} from '../../src/ui/view-model.js'
import {entry} from './fixtures.js'

const IN_PROCESS = {kind: 'memory', location: 'in-process', origin: 'in-process' as const}

async function setup() {
  const bus = createMemoryBus()
  const store = createMemoryStore()
  const catalog = await loadCatalog()
  const runtime = {bus, store, describe: () => ({bus: IN_PROCESS, store: IN_PROCESS, leaderboards: IN_PROCESS})}
  return {bus, store, catalog, feed: new DashboardFeed({runtime, catalog}), close: () => Promise.all([bus.close(), store.close()])}
}

describe('DashboardFeed', () => {
  it('gathers snapshots of another process, lag per group and the DLQ by cause', async () => {
    const {bus, store, catalog, feed, close} = await setup()
    try {
      const metrics = createMetrics()
      const beacon = startMetricsBeacon({bus, metrics, role: 'services', workers: () => 2, intervalMs: 10_000})
      const topic = catalog.topics()[0]
      await bus.ensureTopics([topic])
      const sub = await bus.subscribe({group: 'gamification', consumer: 'c1', topics: [topic.name]})
      await bus.publish([{topic: topic.name, key: 'k', value: '{}', headers: {}}])
      metrics.published('user.registered', 3, 1)
      await beacon.flush()
      await store.dlq.add({...entry(), envelope: null})
      await feed.tick()
      const data = feed.data()
      expect(data.processes.map((p) => [p.role, p.workers, p.pid])).toEqual([['services', 2, process.pid]])
      expect(data.latency.publish.count).toBe(3)
      expect(data.groups.map((g) => [g.group, g.lag + g.pending])).toEqual([['gamification', 1]])
      expect(data.consumers.gamification.map((c) => c.name)).toEqual(['c1'])
      expect(data.dlq).toMatchObject({total: 1, threshold: 100})
      expect(data.dlq!.causes[0]).toMatchObject({group: 'payment', code: 'HANDLER_FAILED', message: 'card <n> declined'})
      // The entry is read once its view is open.
      feed.setUi({...initialUiState(), view: 'entry', openCause: data.dlq!.causes[0].fingerprint})
      await feed.tick()
      expect(feed.data().entry?.id).toBe('payment:id-0-a')
      await sub.close()
      await beacon.stop()
    } finally {
      await close()
    }
  })

  it("retries an entry onto its group's own topic, as tektree dlq retry does, and says so", async () => {
    const {bus, store, feed, close} = await setup()
    try {
      await store.dlq.add({...entry(), envelope: null})
      await feed.retry('payment:id-0-a')
      const sent = (await Promise.all(Array.from({length: 8}, (_, p) => bus.read(directTopic('payment'), p, null, 10)))).flat()
      expect(sent).toHaveLength(1)
      expect(sent[0].headers[REDRIVE_HEADER]).toBe('payment:id-0-a')
      expect(feed.data().notice).toContain('sent payment:id-0-a back to payment')
      await feed.retry('payment:nope')
      expect(feed.data().notice).toContain('payment:nope is no longer in the DLQ')
    } finally {
      await close()
    }
  })

  it('tails only while the tail view is open, with its type filter', async () => {
    const {bus, catalog, feed, close} = await setup()
    try {
      await bus.ensureTopics(catalog.topics())
      const liked = catalog.get('social.content.liked')!
      const registered = catalog.get('user.registered')!
      feed.setUi({...initialUiState(), view: 'tail', filters: {overview: '', dlq: '', tail: 'liked'}})
      await feed.tick()
      await new Promise((r) => setTimeout(r, 100))
      await bus.publish([
        {topic: liked.topic, key: 'a', value: JSON.stringify({event_type: 'social.content.liked', event_id: 'e1'}), headers: {event_type: 'social.content.liked'}},
        {topic: registered.topic, key: 'b', value: JSON.stringify({event_type: 'user.registered', event_id: 'e2'}), headers: {event_type: 'user.registered'}},
      ])
      await new Promise((r) => setTimeout(r, 800))
      expect(feed.data().tail.lines.map((l) => l.type)).toEqual(['social.content.liked'])
      feed.setUi(initialUiState())
      await feed.tick()
      await bus.publish([{topic: liked.topic, key: 'a', value: '{}', headers: {event_type: 'social.content.liked'}}])
      await new Promise((r) => setTimeout(r, 700))
      expect(feed.data().tail.lines).toHaveLength(1)
    } finally {
      await close()
    }
  })
})
