import {availableParallelism} from 'node:os'
import {join, resolve} from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, metricsPortFlag, runtimeFlags, UserError} from '../cli/base.js'
import {fitLines, terminalWidth} from '../cli/style.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {formatAge} from '../core/duration.js'
import {printable} from '../core/redact.js'
import {watchBus} from '../ops/bus-health.js'
import type {RunnerEvent} from '../engine/consumer.js'

/** How often `services` asks whether the bus answers (and half of it: how long it waits). */
const BUS_PROBE_MS = 4_000

export default class Services extends BaseCommand<typeof Services> {
  static override summary = "Run the TekTree services' consumers in the foreground until Ctrl+C."
  static override description = `Runs every TekTree service (gamification, payment, notification, search, cache, analytics, realtime, user, email) as consumer groups on the runtime: the embedded one by default, or the servers given by URL. Start it in several terminals (or with --instances) and the groups share the work; each aggregate's events stay in order.

The groups run in worker threads (--workers, default one per core), whole groups per thread, each thread with its own connections to the bus and the store; a thread that dies is started again and its unacked events are redelivered. On an in-process runtime (--in-process) they all run on the main thread.

SIGINT / SIGTERM drain: the runners finish and ack what they hold, derived events are published, then it exits 0. A second Ctrl+C quits at once (unacked events are redelivered to the group).

With --ws-port the real-time service streams its pushes over WebSocket: ws://127.0.0.1:PORT/ws/notifications?user_id=ID, /ws/leaderboard, /ws/presence (websocat or a browser can watch); it then runs on the main thread, beside the endpoint. Clients show a token (TEKTREE_WS_TOKEN, else one printed at start) as Authorization: Bearer TOKEN, ?token=TOKEN or the subprotocol tektree.token.TOKEN; browsers connect only from localhost or an origin in TEKTREE_WS_ORIGINS. Welcome and verification mails are written as .eml files to --mail-dir.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --only gamification,payment',
    '<%= config.bin %> <%= command.id %> --dashboard',
    '<%= config.bin %> <%= command.id %> --ws-port 8080 --metrics-port 9464',
    '<%= config.bin %> <%= command.id %> --bus-url redis://127.0.0.1:6379 --store-url mongodb://127.0.0.1:27017/tektree --instances 2',
  ]
  static override flags = {
    only: Flags.string({summary: 'Run only these services (comma-separated).'}),
    instances: Flags.integer({summary: 'Consumer runners per service in this process.', default: 1, min: 1, max: 16}),
    workers: Flags.integer({summary: 'Worker threads for the services (default: one per core); 1 runs them on the main thread.', min: 1, max: 64}),
    'ws-port': Flags.integer({summary: 'Serve real-time pushes over WebSocket on this port (0 = a free one).', min: 0, max: 65535}),
    'mail-dir': Flags.string({summary: 'Folder for the .eml files of the email service.', default: join('.tektree', 'mail')}),
    'status-every': Flags.integer({summary: 'Seconds between status lines (0 = none).', default: 5, min: 0}),
    dashboard: Flags.boolean({summary: 'Show the live dashboard (tektree dashboard) in place of the status lines; q or Ctrl+C on it drains and stops.', default: false}),
    'metrics-port': metricsPortFlag,
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  /** While the dashboard has the terminal, lines wait for it to close (they would tear the screen). */
  private screenOpen = false
  private held: string[] = []

  /** Prints a line fitted to the terminal (80 columns when not one). */
  private say(text = ''): void {
    if (this.screenOpen) {
      if (this.held.length < 200) this.held.push(text)
      return
    }
    for (const line of fitLines(text, terminalWidth(process.stdout))) this.log(line)
  }

  public async run(): Promise<void> {
    const [{loadCatalog}, {createServices, resolveServiceNames}, {startServices, statsByService}, {shareableEndpoints, startServiceWorkers}, {startRealtimeServer}, {startPrometheusExporter}] =
      await Promise.all([
        import('../catalog/load.js'),
        import('../services/index.js'),
        import('../services/host.js'),
        import('../services/workers.js'),
        import('../services/realtime/ws-server.js'),
        import('../engine/metrics/index.js'),
      ])
    const screen = this.flags.dashboard ? await import('../cli/dashboard-screen.js') : null
    if (screen) screen.requireTerminal('tektree services --dashboard')
    const only = this.flags.only?.split(',').map((s) => s.trim()).filter(Boolean)
    if (only && only.length === 0) throw new UserError('--only names no service', {code: 'NO_SERVICES', hint: 'e.g. --only gamification,payment', exitCode: 2})
    const names = resolveServiceNames(only) // a typo fails before anything starts
    const catalog = await loadCatalog(this.flags.catalog)
    if (!catalog.tektree) {
      throw new UserError(`${catalog.source} has no x-tektree extensions: there are no TekTree services to run on it`, {
        code: 'NOT_A_TEKTREE_CATALOG',
        hint: 'Drop --catalog to use the TekTree catalog; tektree simulate and publish work with any AsyncAPI catalog.',
      })
    }
    const runtime = await openRuntimeFromFlags(this.flags, {command: 'services'})
    const closers: Array<() => Promise<void>> = [() => runtime.close()]
    try {
      const ws = this.flags['ws-port'] === undefined ? null : await startRealtimeServer({port: this.flags['ws-port']})
      if (ws) {
        closers.unshift(() => ws.close())
        this.say(`Real-time pushes: ${ws.url}/ws/notifications?user_id=ID, ${ws.url}/ws/leaderboard, ${ws.url}/ws/presence`)
        // A generated token is printed once, here, whole (not wrapped: it is copied); one from the environment is the user's to know.
        if (ws.tokenSource === 'generated') this.log(`  clients show this token (Authorization: Bearer TOKEN, or ?token=TOKEN):\n    ${ws.token}`)
        else this.log('  clients show the token in TEKTREE_WS_TOKEN (Authorization: Bearer, or ?token=)')
      }
      if (this.flags['metrics-port'] !== undefined) {
        const exporter = await startPrometheusExporter(runtime.metrics, {port: this.flags['metrics-port']})
        closers.unshift(() => exporter.close())
        this.say(`Prometheus metrics: ${exporter.url}`)
      }

      const endpoints = shareableEndpoints(runtime)
      let workers = this.flags.workers ?? availableParallelism()
      if (workers > 1 && !endpoints) {
        if (this.flags.workers !== undefined) this.say(`--workers ${workers}: the runtime has in-process parts, which other threads cannot reach; the services run on the main thread.`)
        workers = 1
      }
      // Realtime pushes to the WebSocket endpoint of this thread: with --ws-port it runs here.
      const inThread = workers > 1 ? names.filter((name) => ws && name === 'realtime') : names
      const inWorkers = names.filter((name) => !inThread.includes(name))
      const mailDir = resolve(this.flags['mail-dir'])
      const onEvent = (service: string, event: RunnerEvent) => {
        // What came off the bus (types, ids, messages that quote its bytes) is shown escaped, never raw.
        if (event.type === 'bus_error') this.warn(printable(`${service}: bus error (${event.phase}): ${(event.error as Error)?.message ?? event.error}; retrying`))
        if (event.type === 'dead_lettered') this.say(printable(`${service}: dead-lettered ${event.record.event_type ?? 'an unparseable message'} ${event.record.event_id ?? event.record.delivery_id}: ${event.record.error.error.message}`))
      }
      const onRelayError = (error: unknown) =>
        this.warn(printable(`outbox relay: ${(error as Error)?.message ?? error}${(error as {code?: string})?.code === 'OUTBOX_QUARANTINED' ? '' : '; retrying'}`))
      const host = startServices({
        runtime,
        catalog,
        services: createServices({only: inThread, catalog, clock: runtime.clock, emailDir: mailDir, realtime: ws?.sink}),
        instances: this.flags.instances,
        // With workers, what runs here is realtime at most, which derives no events: the workers relay.
        relay: inWorkers.length === 0,
        beacon: {role: 'services', workers: () => pool?.assignment.length ?? 0},
        onEvent,
        onRelayError,
      })
      const pool =
        inWorkers.length === 0
          ? null
          : startServiceWorkers({
              endpoints: endpoints!,
              catalogPath: this.flags.catalog,
              services: inWorkers,
              workers,
              instances: this.flags.instances,
              clock: runtime.clock,
              emailDir: mailDir,
              metrics: runtime.metrics,
              onEvent,
              onRelayError,
              onWorkerExit: (exit) =>
                this.warn(printable(`the worker running ${exit.services.join(', ')} died (${exit.error?.message ?? `exit code ${exit.exitCode}`}); ${exit.restarting ? 'starting it again' : 'it keeps dying on start: given up'}`)),
              onLog: (line) => this.say(printable(line, {layout: true})),
            })
      const stats = () => [...host.stats(), ...(pool?.stats() ?? [])]

      // Handlers first, then the line that says we run: a signal in between would kill us undrained.
      let requestStop: (why: string) => void = () => undefined
      const stopRequested = new Promise<void>((resolve) => {
        const onSignal = (signal: string) => {
          process.off('SIGINT', onSigint)
          process.off('SIGTERM', onSigterm)
          process.once('SIGINT', () => process.exit(130))
          this.say(`\n${signal}: draining (Ctrl+C again to quit now)`)
          resolve()
        }
        const onSigint = () => onSignal('SIGINT')
        const onSigterm = () => onSignal('SIGTERM')
        requestStop = onSignal
        process.on('SIGINT', onSigint)
        process.on('SIGTERM', onSigterm)
      })
      if (pool) {
        // A worker that cannot start at all (the store or bus refuses it) ends the command.
        await Promise.race([pool.ready, stopRequested]).catch(async (error) => {
          await Promise.all([pool.terminate(), host.stop()])
          throw error
        })
      }
      const placement = pool ? `, in ${pool.assignment.length} worker thread(s): ${pool.assignment.map((g) => g.join(', ')).join(' | ')}${inThread.length > 0 ? ` | main thread: ${inThread.join(', ')}` : ''}` : ''
      this.say(`Running ${names.join(', ')} (${this.flags.instances} runner(s) each${placement}). Ctrl+C to drain and stop.`)

      // The dashboard in place of the status lines: q or Ctrl+C on it is a stop request.
      const screenStop = new AbortController()
      const dashboard = screen
        ? ((this.screenOpen = true),
          screen.showDashboard(runtime, catalog, screenStop.signal).then(
            (exit) => exit !== 'aborted' && requestStop(exit === 'quit' ? 'q' : 'Ctrl+C'),
            (error: unknown) => this.warn(`the dashboard stopped: ${(error as Error)?.message ?? error}`),
          ).finally(() => {
            this.screenOpen = false
            for (const line of this.held.splice(0)) this.say(line)
          }))
        : null
      let last = new Map<string, number>()
      let lastAt = Date.now()
      const every = screen ? 0 : this.flags['status-every'] * 1000
      // The bus's clients wait for it and reconnect by themselves: say so while they wait.
      const bus = runtime.describe().bus
      const probeTopic = catalog.topics()[0]?.name
      const health =
        screen || !probeTopic
          ? null
          : watchBus(runtime.bus, {
              topic: probeTopic,
              everyMs: BUS_PROBE_MS,
              timeoutMs: BUS_PROBE_MS / 2,
              onChange: ({answering, sinceMs}) =>
                answering
                  ? this.say(`bus ${bus.location} answers again, after ${formatAge(Date.now() - sinceMs)}; the services go on`)
                  : this.warn(
                      `bus ${bus.location} not answering since ${new Date(sinceMs).toISOString().slice(11, 19)}: the services wait and reconnect by themselves${bus.origin === 'embedded' ? ' (`tektree up` starts it again on its port)' : ''}`,
                    ),
            })
      const timer = every > 0
        ? setInterval(() => {
            const now = Date.now()
            const byService = statsByService(stats())
            const parts: string[] = []
            for (const name of names) {
              const s = byService.get(name)
              if (!s) continue
              const rate = ((s.handled - (last.get(name) ?? 0)) * 1000) / Math.max(1, now - lastAt)
              parts.push(`${name} ${Math.round(rate)}/s${s.deadLettered ? ` dlq ${s.deadLettered}` : ''}`)
            }
            last = new Map([...byService].map(([name, s]) => [name, s.handled]))
            lastAt = now
            const down = health?.downSince() ?? null
            const busPart = down === null ? '' : ` | bus not answering for ${formatAge(now - down)}`
            this.say(`${new Date(now).toISOString().slice(11, 19)}${busPart} | ${parts.join(' | ')}`)
          }, every)
        : null

      await stopRequested
      screenStop.abort()
      await dashboard
      if (timer) clearInterval(timer)
      health?.stop()
      await Promise.all([host.stop(), pool?.stop({drainTimeoutMs: 10_000})])
      const totals = [...statsByService(stats()).values()]
      this.say(`Stopped: ${totals.reduce((n, s) => n + s.handled, 0)} events handled, ${totals.reduce((n, s) => n + s.deadLettered, 0)} dead-lettered.`)
    } finally {
      for (const close of closers) await close()
    }
  }
}
