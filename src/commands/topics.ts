import {Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {formatAge} from '../core/duration.js'
import type {TopicInfo} from '../core/ports.js'

export default class Topics extends BaseCommand<typeof Topics> {
  static override summary = 'Each topic on the bus: partitions, retained length, first and last entry, retention, the groups reading it.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {
    all: Flags.boolean({summary: 'Also the internal topic tektree.metrics, where processes share their metrics with `tektree dashboard`.', default: false}),
    ...runtimeFlags,
  }

  public async run(): Promise<TopicInfo[]> {
    const runtime = await openRuntimeFromFlags(this.flags)
    let topics: TopicInfo[]
    try {
      if (runtime.describe().bus.origin === 'in-process') process.stderr.write('The bus is in this process only: it holds nothing another process published (start `tektree up`, or give --bus-url).\n')
      const {METRICS_TOPIC} = await import('../engine/metrics/beacon.js')
      topics = (await runtime.bus.topics()).filter((t) => this.flags.all || t.name !== METRICS_TOPIC).sort((a, b) => a.name.localeCompare(b.name))
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) this.render(topics, Date.now())
    return topics
  }

  private render(topics: TopicInfo[], now: number): void {
    if (topics.length === 0) return this.log('No topic on this bus yet.')
    const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)
    const age = (at: number | null) => (at === null ? '-' : `${formatAge(Math.max(0, now - at))} ago`)
    const retention = (r: TopicInfo['retention']) => (!r ? 'keep all' : [r.maxAgeMs !== undefined ? formatAge(r.maxAgeMs) : null, r.maxLen !== undefined ? `${r.maxLen} max` : null].filter(Boolean).join(', '))
    this.log(`${'TOPIC'.padEnd(26)} ${'PARTS'.padStart(5)} ${'LENGTH'.padStart(9)} ${'FIRST'.padStart(11)} ${'LAST'.padStart(11)}  RETENTION`)
    for (const t of topics) {
      this.log(`${cut(t.name, 26).padEnd(26)} ${String(t.partitions).padStart(5)} ${String(t.length).padStart(9)} ${age(t.firstAt).padStart(11)} ${age(t.lastAt).padStart(11)}  ${cut(retention(t.retention), 10)}`)
      if (t.groups.length > 0) this.log(cut(`  read by ${t.groups.join(', ')}`, 80))
    }
  }
}
