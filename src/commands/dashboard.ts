import {BaseCommand, catalogFlag, runtimeFlags} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'

export default class Dashboard extends BaseCommand<typeof Dashboard> {
  static override summary = 'A live screen of the runtime: throughput, latency against the targets, group lag, the DLQ, events by type, a tail.'
  static override description = `Attaches to the runtime of this directory (\`tektree up\`) or to the servers given by URL and shows what every process using it does: the simulator and \`tektree services\` in other terminals included. Those processes share their metrics through the bus (a snapshot a second on the internal topic tektree.metrics); lag and the DLQ are read from the bus and the store.

Keys: j/k or arrows move, Enter opens a group (its partitions and consumers) or a DLQ cause (an entry, which r retries after a yes, as \`tektree dlq retry\` does), Esc goes back, Tab changes view (overview, DLQ, tail), / filters, space pauses, ? shows help, q or Ctrl+C quits.

It needs a terminal; piped, it says so and exits 2: use \`tektree lag --watch\`, or --json for one reading of the figures as data.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --bus-url redis://127.0.0.1:6379 --store-url sqlite:./.tektree/store.db', '<%= config.bin %> <%= command.id %> --json | jq .groups']
  static override flags = {catalog: catalogFlag, ...runtimeFlags}

  public async run(): Promise<unknown> {
    const {requireTerminal, openFeed, showDashboard} = await import('../cli/dashboard-screen.js')
    if (!this.jsonEnabled()) requireTerminal('tektree dashboard')
    const {loadCatalog} = await import('../catalog/load.js')
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntimeFromFlags(this.flags, {command: 'dashboard'})
    try {
      if (this.jsonEnabled()) {
        // Two readings a second apart: rates, trends and percentiles need both.
        const feed = await openFeed(runtime, catalog)
        await feed.tick()
        await new Promise((resolve) => setTimeout(resolve, 1_000))
        await feed.tick()
        const {tail: _tail, notice: _notice, entry: _entry, ...data} = feed.data()
        return data
      }
      const stop = new AbortController()
      const onSignal = () => stop.abort()
      process.once('SIGTERM', onSignal)
      process.once('SIGINT', onSignal)
      try {
        await showDashboard(runtime, catalog, stop.signal)
      } finally {
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
      }
      return undefined
    } finally {
      await runtime.close()
    }
  }
}
