import {BaseCommand} from '../cli/base.js'
import {createStyle, wrap, type Style} from '../cli/style.js'
import {maskUrl} from '../errors.js'
import {embeddedStatus, type EmbeddedStatus, type PartStatus} from '../embedded/index.js'
import {dataDirFlag, formatSize} from './up.js'

export interface StatusResult extends EmbeddedStatus {
  /** URLs set in the environment that commands use instead of the embedded runtime (masked). */
  overrides: {bus_url?: string; store_url?: string}
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
  static override summary = 'Show what runs where: the bus and the store (real or in-process), pids, ports, versions, the store file, uptime.'
  static override description = `Reads the discovery file (<data-dir>/runtime.json) and checks each part: is its pid alive, does it answer a ping; for the SQLite store file, its path, size, SQLite version and event count. Servers that a running command started for its own run are shown with that command. Entries of commands that are gone are removed; a part of \`tektree up\` that died is shown as DEAD (\`tektree up\` restarts it on its port).

When nothing is up, says what commands do instead: share the store file and start redis-server for their own run, or (without redis-server) run the bus in-process, which other terminals cannot attach to.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {
    'data-dir': dataDirFlag,
  }

  public async run(): Promise<StatusResult> {
    const status = await embeddedStatus({dataDir: this.flags['data-dir']})
    const overrides: StatusResult['overrides'] = {}
    const bus = process.env.TEKTREE_BUS_URL || process.env.TEKTREE_REDIS_URL
    const store = process.env.TEKTREE_STORE_URL || process.env.TEKTREE_MONGO_URL
    if (bus) overrides.bus_url = maskUrl(bus)
    if (store) overrides.store_url = maskUrl(store)
    const result: StatusResult = {...status, overrides}
    if (!this.jsonEnabled()) this.render(result)
    return result
  }

  private render(s: StatusResult): void {
    for (const line of renderStatus(s, createStyle(), this.config.bin)) this.log(line)
  }
}

/** The status for people, every line fitted to the width (long notes and paths wrap, indented). */
export function renderStatus(s: StatusResult, style: Style, bin = 'tektree'): string[] {
  const out: string[] = []
  const say = (text: string, lead = '', indent = `${lead}  `) => out.push(...wrap(text, style.width, indent, lead))
  const headline: Record<EmbeddedStatus['state'], string> = {
    up: `Embedded runtime: ${style.ok('up')}${s.uptime_ms !== undefined ? ` for ${duration(s.uptime_ms)}` : ''} (${s.data_dir})`,
    partial: `Embedded runtime: ${style.warn('partly up')} (${s.data_dir}); \`${bin} up\` restarts what is missing`,
    down: `Embedded runtime: not up (${s.data_dir})`,
    stale: `Embedded runtime: not up (${s.data_dir}); an unreadable discovery file was found`,
  }
  say(headline[s.state])
  const detail = '        '
  const line = (label: string, p: PartStatus) => {
    if (p.kind === 'sqlite') {
      const health = p.state === 'running' || p.state === 'absent' ? '' : `: ${style.bad('CANNOT BE OPENED')}`
      // One parenthesis: "(not created yet) (SQLite 3.53.2)" read as two afterthoughts.
      const facts = [p.state === 'absent' ? 'not created yet' : undefined, p.version, p.size_bytes !== undefined ? formatSize(p.size_bytes) : undefined, p.events !== undefined ? `${p.events} events` : undefined].filter(Boolean)
      say(`${p.path}${health}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`, `  ${label} `, detail)
      if (p.error) say(p.error, detail)
      if (p.quarantined) say(`${style.warn(`${p.quarantined} QUARANTINED`)}: event(s) the bus refused, set aside out of the outbox`, detail)
      if (p.state === 'running' && p.mode === 'file') say('the store file every command in this directory shares', detail)
      return
    }
    if (p.state === 'absent') {
      say(`${p.mode === 'in-process' ? 'in-process' : 'not running'}: ${p.note ?? ''}`, `  ${label} `, detail)
      return
    }
    const health = p.state === 'running' ? style.ok('running') : style.bad(p.state === 'unresponsive' ? 'NOT ANSWERING' : 'DEAD')
    say(`${p.version} at ${maskUrl(p.url ?? '')}: ${health} (pid ${p.pid} ${p.alive ? 'alive' : 'gone'}, port ${p.port})`, `  ${label} `, detail)
    say(`data: ${p.persistent ? p.data_dir : 'in memory only (lost on down)'}`, detail)
    if (p.mode === 'per-command' && p.note) say(p.note, detail)
    if (p.state !== 'running' && p.mode === 'embedded') say(`commands using it fail until \`${bin} up\` restarts it (port ${p.port}) or \`${bin} down\` clears it`, detail)
  }
  line('bus  ', s.bus)
  line('store', s.store)
  if (s.cleaned) say(`cleaned: ${s.cleaned}`, '  ', detail)
  if (s.overrides.bus_url) say(`TEKTREE_BUS_URL / TEKTREE_REDIS_URL is set: commands use ${s.overrides.bus_url} for the bus`, '  ', detail)
  if (s.overrides.store_url) say(`TEKTREE_STORE_URL / TEKTREE_MONGO_URL is set: commands use ${s.overrides.store_url} for the store`, '  ', detail)
  if (s.state === 'down' || s.state === 'stale') {
    // A Kafka dir's commands have no bus of their own to start (see the bus line).
    say(s.bus.kind === 'kafka' ? `Start it with \`${bin} up\` (commands in this directory need its Kafka broker).` : `Start it with \`${bin} up\` (optional: commands share the store file and start their own bus without it).`)
  }
  return out
}
