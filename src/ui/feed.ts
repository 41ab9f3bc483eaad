/**
 * The dashboard's data, fetched outside the components: every second the processes' metric
 * snapshots (engine/metrics/beacon.ts) and a lag reading (ops/lag.ts), every few seconds the DLQ
 * (ops/dlq.ts; read whole only when its count moved or it is on screen), the open entry, and the
 * live tail (ops/tail.ts) while its view is open. Everything through the Bus and Store ports.
 * What it asks for follows the UI state it is given (setUi); it never renders.
 */
import type {Catalog} from '../catalog/types.js'
import type {DlqRecord} from '../core/ports.js'
import type {Runtime} from '../core/runtime.js'
import {compileTypeGlobs} from '../core/glob.js'
import {pause} from '../core/pause.js'
import {METRICS_TOPIC_SPEC, readSnapshots} from '../engine/metrics/beacon.js'
import {DLQ_ALERT_THRESHOLD, groupByCause, listDlq, type DlqCause} from '../ops/dlq.js'
import {byGroup, lagRows, sampleLag, type LagSample} from '../ops/lag.js'
import {redrive} from '../ops/redrive.js'
import {tail} from '../ops/tail.js'
import {MetricsWindow} from './metrics-window.js'
import {tailFilter, type DashboardData, type TailLine, type UiState} from './view-model.js'

export interface FeedOptions {
  runtime: Pick<Runtime, 'bus' | 'store' | 'describe'>
  catalog: Catalog
  /** Since when the runtime runs, when known (`tektree up`'s start). */
  runtimeStartedAt?: number | null
  now?: () => number
  /** Between readings (default 1 s). */
  intervalMs?: number
  /** Called when new data is in (the renderer redraws, at most a few times a second). */
  onChange?: () => void
}

const SERIES_BUCKET_SECONDS = 5
const SERIES_BUCKETS = 60
const TAIL_KEEP = 300
/** How far back the first read of the snapshots goes: the sparkline is full at once. */
const HISTORY_MS = SERIES_BUCKET_SECONDS * SERIES_BUCKETS * 1000

const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]

export class DashboardFeed {
  private readonly window = new MetricsWindow()
  private readonly now: () => number
  private cursor: string | null | undefined = undefined
  private lagBefore: LagSample | null = null
  private lagNow: LagSample | null = null
  private lagError: string | null = null
  private dlq: {total: number; causes: DlqCause[]} | null = null
  private dlqReadAt = 0
  private entry: DlqRecord | null = null
  private tailLines: TailLine[] = []
  private tailError: string | null = null
  private tailRun: {key: string; stop: AbortController} | null = null
  private ui: UiState | null = null
  private notice: string | null = null
  private noticeAt = 0
  private wake: AbortController | null = null
  private ticks = 0
  /** The renderer's redraw, called after each reading. */
  listener: (() => void) | null = null

  constructor(private readonly options: FeedOptions) {
    this.now = options.now ?? Date.now
  }

  /** What the view-model is computed from, now. */
  data(): DashboardData {
    const now = this.now()
    const described = this.options.runtime.describe()
    const merged = this.lagNow ? byGroup(this.lagNow) : null
    const groups = merged ? lagRows(this.lagBefore ? byGroup(this.lagBefore) : null, merged) : []
    const consumers: DashboardData['consumers'] = {}
    for (const g of merged?.groups ?? []) consumers[g.group] = g.consumers
    return {
      now,
      runtime: {bus: {kind: described.bus.kind, location: described.bus.location}, store: {kind: described.store.kind, location: described.store.location}},
      runtimeStartedAt: this.options.runtimeStartedAt ?? null,
      processes: this.window.processes(now),
      rates: this.window.rates(now),
      series: this.window.series(now, SERIES_BUCKET_SECONDS, SERIES_BUCKETS),
      seriesBucketSeconds: SERIES_BUCKET_SECONDS,
      latency: this.window.latency(now),
      groups,
      groupRows: this.lagNow ? lagRows(this.lagBefore, this.lagNow, {partitions: true}) : [],
      consumers,
      lagError: this.lagError,
      dlq: this.dlq ? {...this.dlq, threshold: DLQ_ALERT_THRESHOLD} : null,
      entry: this.ui?.view === 'entry' ? this.entry : null,
      types: this.window.types(now),
      tail: {lines: this.tailLines, error: this.tailError},
      notice: this.notice !== null && now - this.noticeAt < 15_000 ? this.notice : null,
    }
  }

  /** What the screen shows now: the feed reads what it needs for it (the tail, an entry) at once. */
  setUi(ui: UiState): void {
    const before = this.ui
    this.ui = ui
    const moved = !before || before.view !== ui.view || before.openCause !== ui.openCause || before.openGroup !== ui.openGroup || before.filters.tail !== ui.filters.tail
    if (moved) this.wake?.abort()
  }

  /** Runs until `signal` aborts: a reading a second (sooner when the UI moved). */
  async run(signal: AbortSignal): Promise<void> {
    const {bus} = this.options.runtime
    try {
      await bus.ensureTopics([METRICS_TOPIC_SPEC])
    } catch {
      // Read below, and said there, when the bus does not answer.
    }
    try {
      while (!signal.aborted) {
        await this.tick()
        this.options.onChange?.()
        this.listener?.()
        this.wake = new AbortController()
        const both = AbortSignal.any([signal, this.wake.signal])
        await pause(this.options.intervalMs ?? 1_000, both)
      }
    } finally {
      this.tailRun?.stop.abort()
    }
  }

  /** One round of readings (tests, --json). */
  async tick(): Promise<void> {
    const {bus, store} = this.options.runtime
    const now = this.now()
    this.ticks++
    try {
      const read = await readSnapshots(bus, this.cursor, now - HISTORY_MS)
      this.cursor = read.cursor
      for (const snapshot of read.snapshots) this.window.add(snapshot)
      this.window.prune(now)
    } catch (error) {
      this.say(`metrics could not be read: ${message(error)}`)
    }
    try {
      const sample = await sampleLag(bus, {}, this.now)
      this.lagBefore = this.lagNow
      this.lagNow = sample
      this.lagError = null
    } catch (error) {
      this.lagError = message(error)
    }
    const view = this.ui?.view ?? 'overview'
    const dlqOnScreen = view === 'dlq' || view === 'entry'
    try {
      // The count is cheap; the entries are read again when it moved, or every few seconds on screen.
      if (this.dlq === null || this.ticks % 3 === 0 || dlqOnScreen) {
        const total = await store.dlq.count()
        if (this.dlq === null || total !== this.dlq.total || (dlqOnScreen && now - this.dlqReadAt > 3_000)) {
          this.dlq = {total, causes: total === 0 ? [] : groupByCause(await listDlq(store.dlq))}
          this.dlqReadAt = now
        }
      }
      if (view === 'entry' && this.ui?.openCause) {
        const cause = this.dlq?.causes.find((c) => c.fingerprint === this.ui!.openCause)
        this.entry = cause ? await store.dlq.get(cause.ids[0]) : null
      }
    } catch (error) {
      this.say(`the DLQ could not be read: ${message(error)}`)
    }
    this.followTail(view === 'tail' ? (this.ui?.filters.tail ?? '') : null)
  }

  /** Sends one DLQ entry back to its group, the way `tektree dlq retry` does (ops/redrive.ts). */
  async retry(id: string): Promise<void> {
    const {bus, store} = this.options.runtime
    try {
      const record = await store.dlq.get(id)
      if (!record) return this.say(`${id} is no longer in the DLQ`)
      await redrive({bus, catalog: this.options.catalog, records: [record]})
      const running = this.lagNow?.groups.some((g) => g.group === record.group && g.consumers.some((c) => c.live))
      this.say(`sent ${id} back to ${record.group}; it leaves the DLQ once handled${running ? '' : ` (no consumer of ${record.group} runs: it waits for tektree services)`}`)
      this.dlq = null
    } catch (error) {
      this.say(`retry of ${id} failed: ${message(error)}`)
    }
    this.wake?.abort()
  }

  private say(text: string): void {
    this.notice = text
    this.noticeAt = this.now()
  }

  /** Keeps one tail running while its view is open, restarted when its filter changes. */
  private followTail(filter: string | null): void {
    const key = filter === null ? null : `tail:${filter}`
    if (this.tailRun && this.tailRun.key === key) return
    this.tailRun?.stop.abort()
    this.tailRun = null
    if (key === null || filter === null) return
    const stop = new AbortController()
    this.tailRun = {key, stop}
    this.tailLines = []
    this.tailError = null
    const topics = [...new Set(this.options.catalog.events.map((e) => e.topic))].sort()
    const {globs, words} = tailFilter(filter)
    // Globs and words together: a type matching either is shown.
    const types = globs.length > 0 && words.length === 0 ? globs : undefined
    const matches = (type: string) => words.length === 0 || words.some((w) => type.toLowerCase().includes(w))
    const matchGlob = globs.length > 0 && words.length > 0 ? compileTypeGlobs(globs) : () => false
    void (async () => {
      try {
        for await (const event of tail({bus: this.options.runtime.bus, topics, from: 'end', follow: true, signal: stop.signal, pollMs: 500, filter: {types}})) {
          const envelope = event.envelope
          const type = String(envelope?.event_type ?? event.delivery.headers.event_type ?? '(not an event)')
          if (!types && !(matches(type) || matchGlob(type))) continue
          this.tailLines.push({
            at: event.delivery.enqueuedAt,
            type,
            key: event.delivery.key,
            id: String(envelope?.event_id ?? event.delivery.headers.event_id ?? event.delivery.id),
            partition: event.delivery.partition,
          })
          if (this.tailLines.length > TAIL_KEEP) this.tailLines.splice(0, this.tailLines.length - TAIL_KEEP)
        }
      } catch (error) {
        if (!stop.signal.aborted) this.tailError = `tail stopped: ${message(error)}`
      }
    })()
  }
}
