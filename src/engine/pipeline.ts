/**
 * The one assembly of the engine on a runtime: a publisher whose appends wake an outbox relay, and
 * consumer runners that emit through that publisher (their committed units wake the same relay).
 * `tektree publish`, `tektree simulate`, `tektree services` and each services worker thread build
 * theirs here, so they cannot drift apart in how events reach the bus.
 */
import type {Catalog} from '../catalog/types.js'
import {createValidator, type EventValidator} from '../catalog/validate.js'
import type {Runtime} from '../core/runtime.js'
import {startConsumer, type ConsumerHandle, type ConsumerOptions, type ServiceDefinition} from './consumer.js'
import {startMetricsBeacon, type MetricsBeacon} from './metrics/beacon.js'
import {createPublisher, type Publisher} from './publisher.js'
import {createOutboxRelay, type OutboxRelay, type OutboxRelayOptions} from './relay.js'

export interface PipelineOptions {
  runtime: Runtime
  catalog: Catalog
  /** Default: one compiled from the catalog. */
  validator?: EventValidator
  /** producer_id of what this pipeline drafts, and its relay's lease owner. */
  producerId: string
  /** Run an outbox relay here (default true); without one, another process's relay moves the events. */
  relay?: boolean
  onRelayError?: OutboxRelayOptions['onError']
  onPublished?: OutboxRelayOptions['onPublished']
  /**
   * Share this process's metrics with `tektree dashboard` (engine/metrics/beacon.ts) as `role`. Only
   * a process's main pipeline: worker threads send theirs to the parent, which shares them all.
   */
  beacon?: {role: string; workers?: () => number}
}

export interface Pipeline {
  readonly catalog: Catalog
  readonly validator: EventValidator
  readonly publisher: Publisher
  readonly relay: OutboxRelay | null
  /** This process's metrics snapshots for the dashboard, when asked for (stop() stops it). */
  readonly beacon: MetricsBeacon | null
  /** A consumer runner for `service` that emits through this pipeline's publisher. */
  startConsumer(service: ServiceDefinition, options?: ConsumerOptions): ConsumerHandle
  /**
   * Publishes what is left in the outbox (bounded by drainTimeoutMs, default 10 s; rejects with
   * DrainTimeoutError), then stops the relay. Consumers are the caller's to stop first. `drain:
   * false` stops at once: the caller waited for what it needed (the rest is another relay's, or
   * the next run's).
   */
  stop(options?: {drainTimeoutMs?: number; drain?: boolean}): Promise<void>
}

/** Builds the pipeline and starts its relay. */
export function createPipeline(options: PipelineOptions): Pipeline {
  const {runtime, catalog, producerId} = options
  const validator = options.validator ?? createValidator(catalog)
  const relay =
    options.relay === false
      ? null
      : createOutboxRelay({
          store: runtime.store,
          bus: runtime.bus,
          catalog,
          metrics: runtime.metrics,
          owner: producerId,
          onError: options.onRelayError,
          onPublished: options.onPublished,
        })
  const publisher = createPublisher({store: runtime.store, catalog, validator, relay: relay ?? undefined, producerId, metrics: runtime.metrics})
  relay?.start()
  const beacon: MetricsBeacon | null = options.beacon ? startMetricsBeacon({bus: runtime.bus, metrics: runtime.metrics, ...options.beacon}) : null
  let stopping: Promise<void> | null = null
  return {
    catalog,
    validator,
    publisher,
    relay,
    beacon,
    startConsumer: (service, consumerOptions) => startConsumer({runtime, catalog, validator, publisher}, service, consumerOptions),
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        try {
          if (!relay) return
          try {
            if (stopOptions.drain !== false) await relay.drain(stopOptions.drainTimeoutMs ?? 10_000)
          } finally {
            await relay.stop()
          }
        } finally {
          await beacon?.stop()
        }
      })()
      return stopping
    },
  }
}
