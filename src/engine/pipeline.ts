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
}

export interface Pipeline {
  readonly catalog: Catalog
  readonly validator: EventValidator
  readonly publisher: Publisher
  readonly relay: OutboxRelay | null
  /** A consumer runner for `service` that emits through this pipeline's publisher. */
  startConsumer(service: ServiceDefinition, options?: ConsumerOptions): ConsumerHandle
  /**
   * Publishes what is left in the outbox (bounded by drainTimeoutMs, default 10 s; rejects with
   * DrainTimeoutError), then stops the relay. Consumers are the caller's to stop first.
   */
  stop(options?: {drainTimeoutMs?: number}): Promise<void>
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
  let stopping: Promise<void> | null = null
  return {
    catalog,
    validator,
    publisher,
    relay,
    startConsumer: (service, consumerOptions) => startConsumer({runtime, catalog, validator, publisher}, service, consumerOptions),
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        if (!relay) return
        try {
          await relay.drain(stopOptions.drainTimeoutMs ?? 10_000)
        } finally {
          await relay.stop()
        }
      })()
      return stopping
    },
  }
}
