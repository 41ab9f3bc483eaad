/**
 * One services worker thread (started by src/services/workers.ts): opens its own runtime from the
 * parent's endpoints, runs its groups with their own publisher and outbox relay (startServices), and
 * reports to the parent every reportEveryMs: runner stats, a metrics delta, injected failures, the
 * runner events and relay errors since the last report. On 'stop' it drains like `tektree services`
 * does, reports a last time and says 'stopped'; on 'crash' it crashes one runner of a group.
 *
 * It does nothing when imported outside a worker started with a WorkerSetup.
 */
import {performance} from 'node:perf_hooks'
import {parentPort, workerData, type MessagePort} from 'node:worker_threads'
import {loadCatalog} from '../catalog/load.js'
import type {RunnerEvent, ServiceDefinition} from '../engine/consumer.js'
import {createMetrics} from '../engine/metrics/index.js'
import {openRuntime} from '../adapters/open.js'
import {withFailures} from '../simulator/faults.js'
import {startServices} from './host.js'
import {createServices} from './index.js'
import {clockFromSpec, toWireError, toWireEvent, type FromWorker, type ToWorker, type WireError, type WorkerSetup} from './workers.js'

async function main(port: MessagePort, setup: WorkerSetup): Promise<void> {
  const post = (message: FromWorker) => port.postMessage(message)
  const catalog = await loadCatalog(setup.catalogPath)
  const metrics = createMetrics()
  const clock = clockFromSpec(setup.clock) ?? undefined
  const runtime = await openRuntime({
    busUrl: setup.endpoints.bus,
    storeUrl: setup.endpoints.store,
    ephemeral: true,
    clock,
    metrics,
    log: (line) => post({type: 'log', line: `worker ${setup.index}: ${line}`}),
  })

  const failures = {transient: 0, permanent: 0}
  const services: ServiceDefinition[] = createServices({only: setup.services, catalog, clock: runtime.clock, emailDir: setup.emailDir}).map((service) =>
    withFailures(service, {transient: setup.faults.transient?.[service.name] ?? 0, permanent: setup.faults.permanent?.[service.name] ?? 0}, failures),
  )
  let events: Array<{service: string; event: RunnerEvent}> = []
  let relayErrors: WireError[] = []
  const host = startServices({
    runtime,
    catalog,
    services,
    instances: setup.instances,
    consumerOptions: setup.consumerOptions,
    onEvent: (service, event) => {
      // 'subscribed' is the runner's own bookkeeping; the parent shows errors, retries and the DLQ.
      if (event.type !== 'subscribed') events.push({service, event: toWireEvent(event)})
    },
    onRelayError: (error) => relayErrors.push(toWireError(error)),
  })

  let loop = performance.eventLoopUtilization()
  const report = () => {
    const now = performance.eventLoopUtilization()
    const busy = performance.eventLoopUtilization(now, loop).utilization
    loop = now
    post({type: 'report', stats: host.stats(), metrics: metrics.takeDelta(), failures: {...failures}, events, relayErrors, busy})
    events = []
    relayErrors = []
  }
  const timer = setInterval(report, setup.reportEveryMs)

  let stopping = false
  port.on('message', (message: ToWorker) => {
    if (message.type === 'crash') {
      host.crash(message.service)
      return
    }
    if (message.type === 'stop' && !stopping) {
      stopping = true
      void (async () => {
        try {
          await host.stop({drainTimeoutMs: message.drainTimeoutMs})
        } catch (error) {
          relayErrors.push(toWireError(error))
        }
        clearInterval(timer)
        report()
        await runtime.close().catch(() => undefined)
        post({type: 'stopped'})
      })()
    }
  })
  post({type: 'ready'})
}

const setup = workerData as WorkerSetup | undefined
if (parentPort && setup?.kind === 'tektree-services-worker') {
  const port = parentPort
  main(port, setup).catch((error) => {
    // Thrown out of the thread: the parent sees an 'error' and restarts the worker.
    setImmediate(() => {
      throw error
    })
  })
}
