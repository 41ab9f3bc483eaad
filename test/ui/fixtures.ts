/** Fixed dashboard data for the view-model and component tests: a busy run with a DLQ. */
import type {LatencySummary} from '../../src/core/metrics.js'
import type {DlqRecord} from '../../src/core/ports.js'
import type {DlqCause} from '../../src/ops/dlq.js'
import type {LagRow} from '../../src/ops/lag.js'
import type {DashboardData} from '../../src/ui/view-model.js'

export const NOW = Date.parse('2026-11-30T12:00:00Z')

const lat = (p50: number, p95: number, p99: number): LatencySummary => ({count: 1000, p50, p95, p99, max: p99 * 2, mean: p50})

const GROUPS = ['analytics', 'cache', 'email', 'gamification', 'notification', 'payment', 'realtime', 'search', 'user']

export function groupRow(group: string, i: number, extra: Partial<LagRow> = {}): LagRow {
  return {
    group,
    topic: '*',
    partition: null,
    lag: i * 10,
    pending: i,
    oldestPendingAgeMs: i === 0 ? null : i * 150,
    consumers: [`${group}-host-1`],
    idleMs: 20,
    inPerSec: 100 + i,
    outPerSec: 90 + i,
    trend: i % 3 === 0 ? 'growing' : i % 3 === 1 ? 'shrinking' : 'steady',
    etaMs: i % 3 === 0 ? null : i * 1000,
    ...extra,
  }
}

export function cause(n: number, extra: Partial<DlqCause> = {}): DlqCause {
  return {
    fingerprint: `payment|payment.subscription.started|HANDLER_FAILED|card <n> declined ${n}`,
    group: 'payment',
    event_type: 'payment.subscription.started',
    code: 'HANDLER_FAILED',
    message: `card <n> declined (cause ${n})`,
    count: 50 - n,
    first_seen: '2026-11-30T11:00:00.000Z',
    last_seen: '2026-11-30T11:59:00.000Z',
    ids: [`payment:id-${n}-a`, `payment:id-${n}-b`],
    ...extra,
  }
}

export function entry(id = 'payment:id-0-a'): DlqRecord {
  return {
    id,
    group: 'payment',
    event_id: id.split(':')[1],
    event_type: 'payment.subscription.started',
    topic: 'tektree.payment',
    partition: 3,
    delivery_id: '1700000000000-0',
    error: {error: {code: 'HANDLER_FAILED', message: 'card 4242 declined', details: {}}} as unknown as DlqRecord['error'],
    attempts: 4,
    first_failure_at: '2026-11-30T11:58:00.000Z',
    last_failure_at: '2026-11-30T11:59:00.000Z',
    dead_lettered_at: '2026-11-30T11:59:00.000Z',
    raw: '{}',
    envelope: {event_type: 'payment.subscription.started', payload: {user_id: 'u-1', plan: 'pro', amount: 9.99}} as unknown as DlqRecord['envelope'],
  }
}

export function busyData(extra: Partial<DashboardData> = {}): DashboardData {
  const groups = GROUPS.map((g, i) => groupRow(g, i))
  return {
    now: NOW,
    runtime: {bus: {kind: 'redis', location: 'redis://admin:secret@127.0.0.1:6390'}, store: {kind: 'sqlite', location: 'sqlite:/home/op/project/.tektree/store.db'}},
    runtimeStartedAt: NOW - 192_000,
    processes: [
      {id: 'h-1-a', role: 'simulate', host: 'h', pid: 1, workers: 2, startedAt: NOW - 60_000, at: NOW - 500},
      {id: 'h-2-b', role: 'services', host: 'h', pid: 2, workers: 1, startedAt: NOW - 120_000, at: NOW - 300},
    ],
    rates: {inPerSec: 1234.5, outPerSec: 1180},
    series: {in: Array.from({length: 120}, (_, i) => (i % 10) * 100), out: Array.from({length: 120}, (_, i) => (i % 7) * 100)},
    seriesBucketSeconds: 5,
    latency: {publish: lat(1.2, 4.5, 9.1), delivery: lat(40, 150, 300)},
    groups,
    groupRows: [
      groupRow('gamification', 3, {topic: 'tektree.knowledge'}),
      groupRow('gamification', 3, {topic: 'tektree.knowledge', partition: 0, consumers: ['gamification-host-1-0']}),
      groupRow('gamification', 3, {topic: 'tektree.knowledge', partition: 1, consumers: []}),
      groupRow('gamification', 3, {topic: 'tektree.social'}),
    ],
    consumers: {gamification: [{name: 'gamification-host-1-0', pending: 3, idleMs: 15, live: true}]},
    lagError: null,
    dlq: {total: 120, threshold: 100, causes: [cause(0), cause(1), cause(2)]},
    entry: null,
    types: [
      {type: 'social.content.liked', perSec: 400, total: 40_000},
      {type: 'knowledge.question.posted', perSec: 120.5, total: 12_345},
      {type: 'user.registered', perSec: 3, total: 300},
    ],
    tail: {lines: [{at: NOW - 1000, type: 'social.content.liked', key: 'aggregate-1234567', id: 'b56b0000-02b3-4ec7-b7a1-0123456789ab', partition: 3}], error: null},
    notice: null,
    ...extra,
  }
}
