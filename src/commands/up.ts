import {existsSync, statSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, UserError} from '../cli/base.js'
import {fitLines, terminalWidth} from '../cli/style.js'
import {maskUrl} from '../errors.js'
import {upEmbeddedRuntime, type UpResult} from '../embedded/index.js'
import type {ReconcileResult} from '../engine/reconcile.js'
import {LEADERBOARDS_HINT, leaderboardsOnBus, summaryLine} from './reconcile.js'

export const dataDirFlag = Flags.string({
  summary: 'Directory of the embedded runtime: discovery file, store file and server data.',
  description: 'Default: .tektree in the current directory.',
  env: 'TEKTREE_DATA_DIR',
  helpGroup: 'RUNTIME',
})

/** 1536 -> "1.5 KiB" */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}

export default class Up extends BaseCommand<typeof Up> {
  static override summary = 'Start the embedded runtime (redis-server + the store) in the background.'
  static override description = `Starts redis-server (append-only file, fsync every second, data in <data-dir>/redis) as a background process that outlives this command, and sets up the store: mongod (data in <data-dir>/mongo) where one is on PATH or named by TEKTREE_MONGO_BIN, else the SQLite file <data-dir>/store.db, which it opens once (creating it and migrating its schema, so a bad file is reported here). Then it writes <data-dir>/runtime.json. Every other tektree command run from this directory attaches to them, so several terminals share one bus and one store.

Without \`up\`, commands still share the store file, and a command that needs the bus starts redis-server in <data-dir>/redis for its own run (others attach to it meanwhile); \`up\` keeps one running.

Whenever it (re)starts redis-server it reconciles: every event the store marked published that the bus no longer holds (a crash loses up to the last second of AOF everysec) is published again, as \`tektree reconcile\` does.

Idempotent: when the runtime is already up it says so; a part that died is started again ON THE PORT IT HAD, so connected clients (a running \`tektree services\`) recover. A part that cannot be had (no redis-server) is reported; commands then run it in-process.

With --bus kafka the bus is a single-node Kafka broker (KRaft, data in <data-dir>/kafka) instead of redis-server: Java 17+ and the broker's jars (scripts/provision-kafka.sh; fetched with Maven on first use where it is installed). Commands then attach to it as to redis-server; the leaderboards live in the store (Kafka has no sorted sets).

A data dir remembers its bus (<data-dir>/bus.json, kept by \`down\`, deleted by \`down --purge\`): \`up\` without --bus starts the kind it last ran, and --bus naming the other kind is refused (exit 2), since that bus would have none of the dir's events and leaderboards; --switch-bus moves the dir on purpose. A bus that cannot be started fails \`up\` (exit 2) and stops what it started; only when redis-server is not installed do commands run the bus in-process instead.

Stop it with \`tektree down\`; see it with \`tektree status\`.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --bus kafka',
    '<%= config.bin %> <%= command.id %> --bus redis --switch-bus',
    'TEKTREE_DATA_DIR=/tmp/tt <%= config.bin %> <%= command.id %>',
  ]
  static override flags = {
    'data-dir': dataDirFlag,
    bus: Flags.string({summary: 'The bus server: redis (redis-server) or kafka (a single-node broker). Default: the one the runtime has, else redis.', options: ['redis', 'kafka']}),
    'switch-bus': Flags.boolean({summary: 'Let --bus differ from the kind this data dir last ran: moves it to that bus (the old bus\' data stays behind, unused).', default: false}),
    'ready-timeout': Flags.integer({summary: 'Seconds to wait for each server to answer.', default: 90, min: 1}),
    catalog: catalogFlag,
  }

  /** Prints a line fitted to the terminal (80 columns when not one). */
  private say(text = ''): void {
    for (const line of fitLines(text, terminalWidth(process.stdout))) this.log(line)
  }

  public async run(): Promise<UpResult & {reconcile?: ReconcileResult; reconcile_error?: string}> {
    const human = !this.jsonEnabled()
    if (this.flags['switch-bus'] && !this.flags.bus) {
      throw new UserError('--switch-bus needs --bus naming the bus to move this data dir to', {code: 'USAGE', hint: `e.g. \`${this.config.bin} up --bus redis --switch-bus\`; see \`${this.config.bin} up --help\`.`, exitCode: 2})
    }
    if (human) process.stderr.write('Starting the embedded runtime...\n')
    const up = await upEmbeddedRuntime({dataDir: this.flags['data-dir'], readyTimeoutMs: this.flags['ready-timeout'] * 1000, ...(this.flags.bus ? {bus: this.flags.bus as 'redis' | 'kafka'} : {}), switchBus: this.flags['switch-bus']})
    const result: UpResult & {reconcile?: ReconcileResult; reconcile_error?: string} = up
    let boardsWithBus = false
    // A redis-server (re)started from its AOF may lack the last second of what it had acknowledged:
    // put back what the store says was published. Not on every command's own server start: this
    // scans the store's published events, which `up` can afford once and a command's run cannot.
    if ((up.started.includes('redis') && up.discovery.redis) || (up.started.includes('kafka') && up.discovery.kafka)) {
      try {
        const reconciled = await this.reconcile()
        result.reconcile = reconciled.result
        boardsWithBus = reconciled.boardsWithBus
      } catch (error) {
        result.reconcile_error = (error as Error).message
        process.exitCode = 1
      }
    }
    if (human) {
      const {discovery} = result
      this.say(result.state === 'already-up' ? `The embedded runtime is already up (since ${discovery.up?.started_at}).` : `The embedded runtime is up.`)
      for (const [label, part] of [
        ['bus  ', 'redis'],
        ['bus  ', 'kafka'],
        ['store', 'mongo'],
      ] as const) {
        const server = discovery[part]
        if (!server) continue
        const fresh = result.started.includes(part) ? 'started' : 'running'
        this.say(`  ${label} ${server.version} at ${maskUrl(server.url)} (pid ${server.pid}, ${fresh}; data ${server.persistent ? server.data_dir : 'in memory only'})`)
      }
      if (discovery.sqlite) {
        const bytes = existsSync(discovery.sqlite.path) ? statSync(discovery.sqlite.path).size : 0
        this.say(`  store ${discovery.sqlite.path} (${discovery.sqlite.version}, ${formatSize(bytes)})`)
      }
      for (const missing of result.unavailable) {
        this.say(`  ${missing.part === 'mongo' ? 'store' : 'bus  '} unavailable: ${missing.reason}`)
        this.say(`        commands run this part in-process; other terminals cannot attach to it.`)
      }
      // redis-server remembered is what plain `up` always started: only Kafka is worth a line.
      if (result.bus?.from === 'remembered' && result.bus.kind === 'kafka') this.say(`  note: the bus is Kafka, the one this data dir last ran (${result.bus.file}); \`--bus redis --switch-bus\` moves it`)
      if (result.bus?.switched_from) this.say(`  note: the bus moved from ${result.bus.switched_from === 'kafka' ? 'Kafka' : 'redis-server'} to ${result.bus.kind === 'kafka' ? 'Kafka' : 'redis-server'} (--switch-bus); the old one's data stays, unused`)
      for (const note of result.notes) this.say(`  note: ${note}`)
      if (result.reconcile) this.say(`  ${summaryLine(result.reconcile)}`)
      // On Kafka the leaderboards are in the store, which lost nothing: no rebuild to advise.
      if (result.reconcile && result.reconcile.missing > 0 && boardsWithBus) this.say(`  ${LEADERBOARDS_HINT}`)
      if (result.reconcile_error) this.say(`  reconcile FAILED: ${result.reconcile_error}; run \`${this.config.bin} reconcile\` once it can reach the bus and the store`)
      this.say(`Discovery file: ${result.discoveryFile}. Stop with \`${this.config.bin} down\`.`)
    }
    return result
  }

  /** The reconcile, and whether the leaderboards are on the bus's server (then they lost what it lost). */
  private async reconcile(): Promise<{result: ReconcileResult; boardsWithBus: boolean}> {
    const [{loadCatalog}, {reconcile}, {openRuntime}] = await Promise.all([import('../catalog/load.js'), import('../engine/reconcile.js'), import('../adapters/open.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntime({dataDir: this.flags['data-dir'], command: 'up', log: () => undefined})
    try {
      return {result: await reconcile({store: runtime.store, bus: runtime.bus, catalog}), boardsWithBus: leaderboardsOnBus(runtime.describe())}
    } finally {
      await runtime.close()
    }
  }
}
