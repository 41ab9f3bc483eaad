import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, metricsPortFlag, runtimeFlags, UserError} from '../cli/base.js'
import {createStyle} from '../cli/style.js'
import {exitCodeFor, parseThresholds} from '../simulator/assertions.js'
import {createProgressWriter} from '../simulator/progress.js'
import {renderSummary, reportPathProblem, writeReport, type SimulationReport} from '../simulator/report.js'
import {runSimulation} from '../simulator/run.js'
import {applyOverrides, loadScenario, parseDuration} from '../simulator/scenario.js'

export default class Simulate extends BaseCommand<typeof Simulate> {
  static override summary = 'Simulate TekTree traffic: realistic user journeys at a target rate, with faults, a report and SLO assertions.'
  static override description = `Generates causally consistent events (users register, ask, answer, like, follow, upgrade...) at the scenario's rate through the real path (store -> outbox -> bus), runs the TekTree services on them, injects faults when the scenario asks, then drains and reports throughput, latencies, retries, DLQ and backlog.

The services run in worker threads (--workers, default one per core) when the runtime can be shared (the embedded one, or servers by URL); the generator and its outbox relay keep the main thread. On an in-process runtime everything runs on one thread. When the backlog passes --max-backlog the generator pauses, and the report says for how long and how much of the plan was not generated: a run asked for more than the machine carries ends on time, at the rate it could sustain.

Scenarios ship in fixtures/scenarios (smoke, steady, steady-1k, burst-5k, soak, chaos, ci, registration, engagement, achievement) or come from a YAML file. Flags override the scenario. Assertions use a k6-like grammar: "metric op value[unit]".

Exit codes: 0 all assertions hold, 1 an assertion failed, the drain did not finish (a backlog that cannot be read, with the bus or the store gone, is not 0) or --verify could not run (it never runs on an undrained system: in-flight events would read as differences), 2 a usage error (bad scenario, bad assertion), 130 interrupted by Ctrl+C (143 by SIGTERM), after the brief drain and the report.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --scenario steady-1k --assert "delivery_p95<100ms" --assert "dlq==0"',
    '<%= config.bin %> <%= command.id %> --scenario chaos --verify --report chaos.json',
    '<%= config.bin %> <%= command.id %> --scenario steady --dashboard',
    '<%= config.bin %> <%= command.id %> --rate 2000 --duration 30s --seed 7 --in-process',
    '<%= config.bin %> <%= command.id %> --rate 100000 --duration 20s --workers 2',
    '<%= config.bin %> <%= command.id %> --scenario ./my-scenario.yaml --bus-url redis://127.0.0.1:6379',
  ]

  static override flags = {
    scenario: Flags.string({char: 's', summary: 'A shipped scenario name or a path to a scenario YAML file.', default: 'smoke'}),
    rate: Flags.integer({char: 'r', summary: 'Replace the stages with one steady rate (events/s).'}),
    duration: Flags.string({char: 'd', summary: "How long to generate (e.g. 30s, 5m); lifts the scenario's event cap unless --events is given."}),
    events: Flags.integer({char: 'n', summary: 'Stop after this many simulated events.'}),
    seed: Flags.integer({summary: 'Seed: the same seed gives the same events (apart from timestamps).'}),
    population: Flags.integer({summary: 'Number of simulated users.'}),
    report: Flags.string({summary: 'Write the JSON report to this file.'}),
    warmup: Flags.string({summary: "Leave the first part of generation (e.g. 10s) out of the latencies reported and asserted; replaces the scenario's warmup (0s = none)."}),
    assert: Flags.string({char: 'a', summary: 'A threshold like "delivery_p95<100ms" (repeatable; adds to the scenario\'s).', multiple: true}),
    verify: Flags.boolean({summary: 'After draining, recompute the projections from the event log and compare.', default: false}),
    'drain-timeout': Flags.string({summary: 'Longest wait for the backlog to empty after generation.', default: '30s'}),
    workers: Flags.integer({summary: 'Worker threads for the services (default: one per core); 1 runs them on the generator\'s thread.', min: 1, max: 64}),
    'max-backlog': Flags.integer({
      summary: 'Pause the generator while the backlog (outbox + lag + pending) is over this (default: 10 s of the peak rate, 5,000-50,000; 0 = never).',
      min: 0,
    }),
    dashboard: Flags.boolean({summary: 'Show the live dashboard (tektree dashboard) in place of the progress line; q closes it and the run goes on, Ctrl+C stops the run.', default: false}),
    'metrics-port': metricsPortFlag,
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<SimulationReport> {
    const {flags} = this
    const scenario = applyOverrides(loadScenario(flags.scenario), {
      rate: flags.rate,
      duration: flags.duration,
      events: flags.events,
      seed: flags.seed,
      population: flags.population,
      assert: flags.assert,
      warmup: flags.warmup,
    })
    parseThresholds(scenario.assert) // a bad threshold fails now (exit 2), before any traffic
    const reportProblem = flags.report ? reportPathProblem(flags.report) : null
    if (reportProblem) {
      throw new UserError(`Cannot write the report to ${flags.report}: ${reportProblem}`, {code: 'INVALID_FLAG', hint: 'Give --report a file in a folder that exists and you can write to. Nothing was run.', exitCode: 2})
    }
    let drainTimeoutMs: number
    try {
      drainTimeoutMs = parseDuration(flags['drain-timeout'])
    } catch (error) {
      throw new UserError(`--drain-timeout ${(error as Error).message}`, {code: 'INVALID_FLAG'})
    }

    const human = !this.jsonEnabled()
    const screen = flags.dashboard ? await import('../cli/dashboard-screen.js') : null
    if (screen) screen.requireTerminal('tektree simulate --dashboard')
    const progress = createProgressWriter(process.stderr, {style: createStyle(process.stderr)})
    const controller = new AbortController()
    let stoppedBy: NodeJS.Signals | null = null
    const onSignal = (signal: NodeJS.Signals) => {
      stoppedBy ??= signal
      // The first Ctrl+C (or SIGTERM) stops generation; the services workers drain, and the run still
      // reports. A second one gets the default behaviour: the process ends, its threads with it.
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      if (human) process.stderr.write('\nStopping: draining briefly, then the report (Ctrl+C again to quit now)\n')
      controller.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    // The dashboard, while it is open, has the terminal: the progress line waits.
    const dashboardStop = new AbortController()
    let dashboard: Promise<unknown> | null = null
    let dashboardOpen = false
    let report: SimulationReport
    try {
      report = await runSimulation(
        {
          scenario,
          redisUrl: flags['redis-url'],
          mongoUrl: flags['mongo-url'],
          inProcess: flags['in-process'],
          catalogPath: flags.catalog,
          verify: flags.verify,
          // Read as `tektree verify` reads it: an archive run took events whose effects stay.
          archived: flags['in-process'] ? undefined : async () => (await import('../cli/archive-flags.js')).archivedEvents(process.env.TEKTREE_ARCHIVE_DIR || undefined),
          drainTimeoutMs,
          metricsPort: flags['metrics-port'],
          workers: flags.workers,
          maxBacklog: flags['max-backlog'],
        },
        {
          signal: controller.signal,
          onProgress: human ? (p) => (dashboardOpen ? undefined : progress.update(p)) : undefined,
          onMetricsEndpoint: (url) => process.stderr.write(`Prometheus metrics: ${url}\n`),
          onRuntime: screen
            ? (runtime, catalog) => {
                dashboardOpen = true
                dashboard = screen.showDashboard(runtime, catalog, dashboardStop.signal).then(
                  (exit) => {
                    dashboardOpen = false
                    // Ctrl+C on the screen is Ctrl+C for the run; q only closes the screen.
                    if (exit === 'interrupt') onSignal('SIGINT')
                  },
                  (error: unknown) => {
                    dashboardOpen = false
                    process.stderr.write(`The dashboard stopped: ${(error as Error)?.message ?? error}; the run goes on.\n`)
                  },
                )
                // The screen closes before the run's runtime does, then the report is printed.
                return async () => {
                  dashboardStop.abort()
                  await dashboard
                }
              }
            : undefined,
        },
      )
    } finally {
      dashboardStop.abort()
      await dashboard
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      progress.done()
    }

    // The summary first: should the report's file fail now (the disk filled up), the run's figures are not lost.
    if (human) this.log(renderSummary(report, createStyle(process.stdout), {reportPath: flags.report}))
    if (flags.report) {
      try {
        writeReport(flags.report, report)
      } catch (error) {
        throw new UserError(`The report could not be written to ${flags.report}: ${(error as Error).message}`, {code: 'REPORT_NOT_WRITTEN', hint: human ? 'The summary above has its figures; --json prints the whole report on stdout.' : undefined, exitCode: 1})
      }
      if (human) this.log(`Report written to ${flags.report}`)
    }
    const code = exitCodeFor(report.assertions)
    if (code !== 0) {
      const failed = report.assertions.filter((a) => !a.ok)
      if (human) {
        process.stderr.write(`${failed.length} assertion(s) failed:\n`)
        for (const a of failed) process.stderr.write(`  ${a.threshold}: ${a.reason ?? 'failed'}\n`)
      }
      process.exitCode = code
    }
    // An interrupted run did not drain by design: its exit says it was stopped (128 + the signal).
    if (report.interrupted) {
      process.exitCode = stoppedBy === 'SIGTERM' ? 143 : 130
      if (report.verifySkipped) process.stderr.write(`verify skipped: ${report.verifySkipped}\n`)
      return report
    }
    // Said with --json too (on stderr): a run that did not finish its work is a failure.
    if (!report.drained) process.stderr.write(`The drain did not finish: ${report.notDrained ?? 'events were still in flight'}. Not a clean run (exit 1).\n`)
    if (report.verifySkipped) process.stderr.write(`verify skipped: ${report.verifySkipped}; the projections were not checked (exit 1).\n`)
    if (!report.drained || report.verifySkipped) process.exitCode = 1
    return report
  }
}
