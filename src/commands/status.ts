import {BaseCommand} from '../cli/base.js'
import {maskUrl} from '../errors.js'
import {embeddedStatus, type EmbeddedStatus, type PartStatus} from '../runtime/embedded/index.js'
import {dataDirFlag} from './up.js'

export interface StatusResult extends EmbeddedStatus {
  /** URLs set in the environment that commands use instead of the embedded runtime (masked). */
  overrides: {redis_url?: string; mongo_url?: string}
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  return h < 48 ? `${h}h${String(m % 60).padStart(2, '0')}m` : `${Math.floor(h / 24)}d${h % 24}h`
}

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show what runs where: the embedded runtime (real or in-process), pids, ports, versions, uptime.'
  static override description = `Reads the discovery file (<data-dir>/runtime.json) that \`tektree up\` writes and checks each server: is its pid alive, does it answer a ping. A discovery file whose servers are all gone is reported as stale and removed.

When nothing is up, says what commands do instead: start a server for their own run, or (without redis-server / a MongoDB server) run that part in-process, which other terminals cannot attach to.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {
    'data-dir': dataDirFlag,
  }

  public async run(): Promise<StatusResult> {
    const status = await embeddedStatus({dataDir: this.flags['data-dir']})
    const overrides: StatusResult['overrides'] = {}
    if (process.env.TEKTREE_REDIS_URL) overrides.redis_url = maskUrl(process.env.TEKTREE_REDIS_URL)
    if (process.env.TEKTREE_MONGO_URL) overrides.mongo_url = maskUrl(process.env.TEKTREE_MONGO_URL)
    const result: StatusResult = {...status, overrides}
    if (!this.jsonEnabled()) this.render(result)
    return result
  }

  private render(s: StatusResult): void {
    const headline: Record<EmbeddedStatus['state'], string> = {
      up: `Embedded runtime: up${s.uptime_ms !== undefined ? ` for ${duration(s.uptime_ms)}` : ''} (${s.data_dir})`,
      partial: `Embedded runtime: partly up (${s.data_dir}); \`tektree up\` restarts what is missing`,
      down: `Embedded runtime: down (${s.data_dir})`,
      stale: `Embedded runtime: down; a stale discovery file was found`,
    }
    this.log(headline[s.state])
    const line = (label: string, p: PartStatus) => {
      if (p.state === 'absent') {
        this.log(`  ${label} ${p.mode === 'in-process' ? 'in-process' : 'not running'}: ${p.note ?? ''}`)
        return
      }
      const health = p.state === 'running' ? 'running' : p.state === 'unresponsive' ? 'NOT ANSWERING' : 'DEAD'
      this.log(`  ${label} ${p.version} at ${maskUrl(p.url ?? '')}: ${health} (pid ${p.pid} ${p.alive ? 'alive' : 'gone'}, port ${p.port})`)
      this.log(`        data: ${p.persistent ? p.data_dir : 'in memory only (lost on down)'}`)
      if (p.state !== 'running' && p.mode === 'in-process') this.log(`        commands run this part in-process meanwhile; other terminals cannot attach to it`)
    }
    line('bus   ', s.redis)
    line('store ', s.mongo)
    if (s.cleaned) this.log(`  cleaned: ${s.cleaned}`)
    if (s.overrides.redis_url) this.log(`  TEKTREE_REDIS_URL is set: commands use ${s.overrides.redis_url} for the bus`)
    if (s.overrides.mongo_url) this.log(`  TEKTREE_MONGO_URL is set: commands use ${s.overrides.mongo_url} for the store`)
    if (s.state === 'down' || s.state === 'stale') this.log(`Start it with \`${this.config.bin} up\`.`)
  }
}
