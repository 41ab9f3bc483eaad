import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {maskUrl} from '../errors.js'
import {upEmbeddedRuntime, type UpResult} from '../runtime/embedded/index.js'

export const dataDirFlag = Flags.string({
  summary: 'Directory of the embedded runtime: discovery file and server data.',
  description: 'Default: .tektree in the current directory.',
  env: 'TEKTREE_DATA_DIR',
  helpGroup: 'RUNTIME',
})

export default class Up extends BaseCommand<typeof Up> {
  static override summary = 'Start the embedded runtime (redis-server + a MongoDB server) in the background.'
  static override description = `Starts redis-server (append-only file, fsync every second, data in <data-dir>/redis) and a MongoDB server (mongod with data in <data-dir>/mongo; else mongo-java-server, which keeps data in memory) as background processes that outlive this command, waits until both answer, and writes <data-dir>/runtime.json. Every other tektree command run from this directory then attaches to them, so several terminals share one bus and one store.

Idempotent: when the runtime is already up it says so; a part that died is started again. A part that cannot be had (no redis-server, no mongod and no Java) is reported; commands then run that part in-process.

Stop it with \`tektree down\`; see it with \`tektree status\`.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json', 'TEKTREE_DATA_DIR=/tmp/tt <%= config.bin %> <%= command.id %>']
  static override flags = {
    'data-dir': dataDirFlag,
    'ready-timeout': Flags.integer({summary: 'Seconds to wait for each server to answer.', default: 90, min: 1}),
  }

  public async run(): Promise<UpResult> {
    const human = !this.jsonEnabled()
    if (human) process.stderr.write('Starting the embedded runtime...\n')
    const result = await upEmbeddedRuntime({dataDir: this.flags['data-dir'], readyTimeoutMs: this.flags['ready-timeout'] * 1000})
    if (human) {
      const {discovery} = result
      this.log(result.state === 'already-up' ? `The embedded runtime is already up (since ${discovery.started_at}).` : `The embedded runtime is up.`)
      for (const [label, server] of [
        ['bus  ', discovery.redis],
        ['store', discovery.mongo],
      ] as const) {
        if (!server) continue
        const fresh = result.started.includes(label === 'bus  ' ? 'redis' : 'mongo') ? 'started' : 'running'
        this.log(`  ${label} ${server.version} at ${maskUrl(server.url)} (pid ${server.pid}, ${fresh}; data ${server.persistent ? server.data_dir : 'in memory only'})`)
      }
      for (const missing of result.unavailable) {
        this.log(`  ${missing.part === 'redis' ? 'bus  ' : 'store'} unavailable: ${missing.reason}`)
        this.log(`        commands run this part in-process; other terminals cannot attach to it.`)
      }
      this.log(`Discovery file: ${result.discoveryFile}. Stop with \`${this.config.bin} down\`.`)
    }
    return result
  }
}
