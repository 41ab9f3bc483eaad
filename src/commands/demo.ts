import {join} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../cli/base.js'
import {createStyle, wrap} from '../cli/style.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import type {DemoResult} from '../services/demo.js'

const NAMES = ['registration', 'engagement', 'achievement'] as const

export default class Demo extends BaseCommand<typeof Demo> {
  static override summary = "Run one of the TekTree event catalog's three choreography patterns and narrate it: the events as they flow, each service's reaction, the state at the end."
  static override description = `registration: a user signs up, verifies their email, logs in two days running and fills in their profile (welcome XP, free subscription, tier badge, mails, verified-member achievement, streak, search index, cache invalidation).
engagement: a question, an answer, an acceptance, a like, a follow and a comment between two users (XP to the right authors, notifications, search, usage metering, leaderboards).
achievement: a user's first questions and an upgrade (first-question achievement, a quest, level ups, invoice, badges).

The demo runs every TekTree service on the runtime (embedded by default, --in-process for none) under one correlation id, one step at a time, waiting for the services to settle after each.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> registration --in-process',
    '<%= config.bin %> <%= command.id %> engagement',
    '<%= config.bin %> <%= command.id %> achievement --json',
  ]
  static override args = {
    pattern: Args.string({description: 'Which choreography.', options: [...NAMES], required: true}),
  }
  static override flags = {
    'mail-dir': Flags.string({summary: 'Folder for the .eml files of the email service.', default: join('.tektree', 'mail')}),
    ...runtimeFlags,
  }

  public async run(): Promise<DemoResult> {
    const [{loadCatalog}, {runDemo}] = await Promise.all([import('../catalog/load.js'), import('../services/demo.js')])
    const catalog = await loadCatalog()
    const runtime = await openRuntimeFromFlags(this.flags)
    let result: DemoResult
    try {
      result = await runDemo(this.args.pattern as DemoResult['demo'], {runtime, catalog, emailDir: this.flags['mail-dir']})
    } finally {
      await runtime.close()
    }
    if (!this.jsonEnabled()) this.render(result)
    return result
  }

  private render(r: DemoResult): void {
    const style = createStyle()
    this.log(`${r.title}  (correlation ${r.correlation_id})\n`)
    r.steps.forEach((step, i) => {
      this.log(`${i + 1}. ${step.title}`)
      for (const e of step.published) this.log(`   ${e.source} -> ${e.type}  ${e.summary}`)
      for (const e of step.reactions) this.log(`      ${(e.causation_type ?? '?').padEnd(34)} => ${e.source.padEnd(12)} ${e.type.padEnd(34)} ${e.summary}`)
      this.log('')
    })
    // One paragraph per user: a nine-column table does not fit 80 columns.
    for (const u of r.users) {
      const facts = [`${u.xp} XP`, `level ${u.level}`, `streak ${u.streak}`, `${u.tier} tier`, `badges ${u.tier_badge ?? '-'} / L${u.level_badge ?? '-'}`, `${u.notifications} notifications`]
      for (const line of wrap(`${u.name}: ${facts.join(', ')}`, style.width, '  ')) this.log(line)
      if (u.achievements.length > 0) for (const line of wrap(`achievements: ${u.achievements.join(', ')}`, style.width, '    ', '  ')) this.log(line)
      if (u.quests.length > 0) for (const line of wrap(`quests: ${u.quests.join(', ')}`, style.width, '    ', '  ')) this.log(line)
    }
    if (r.search) this.log(`search "${r.search.query}": ${r.search.hits.map((h) => `${h.kind} "${h.title}"`).join('; ') || 'no hits'}`)
    this.log(`cache invalidations: ${r.cache_invalidations}${r.mail_dir ? `   mails: ${r.mail_dir}` : ''}`)
    this.log(`${r.events} events in this journey${r.settled ? '' : ' (the services had not settled when the demo stopped waiting)'}`)
  }
}
