import {join} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags} from '../cli/base.js'
import {createStyle, wrap, type Style} from '../cli/style.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import type {DemoEvent, DemoResult} from '../services/demo.js'

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
    pattern: Args.string({description: 'Which choreography.', options: [...NAMES], required: true, ignoreStdin: true}),
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
    for (const line of renderDemo(r, createStyle())) this.log(line)
  }
}

/**
 * The narration: each step's published events, each followed by what it caused (indented by
 * causation: a reaction under its cause, and its own reactions under it), then each user's state.
 * Fits the width: long lines wrap under their own indent.
 */
export function renderDemo(r: DemoResult, style: Style): string[] {
  const out: string[] = []
  const say = (text: string, lead: string, indent = `${lead}   `) => out.push(...wrap(text, style.width, indent, lead))
  out.push(style.bold(r.title), style.dim(`correlation ${r.correlation_id}`))
  r.steps.forEach((step, i) => {
    out.push('')
    say(style.bold(`${i + 1}. ${step.title}`), '')
    // Reactions come in causal order (depth first from each published event, see runDemo).
    const reactions = [...step.reactions]
    const reaction = (x: DemoEvent) => say(`${style.dim('->')} ${x.type}: ${x.summary}`, `${'   '.repeat(x.depth)} `)
    for (const e of step.published) {
      say(`${style.bold(e.type)} from ${e.source}: ${e.summary}`, '   ')
      while (reactions.length > 0 && (reactions[0].depth > 1 || reactions[0].causation_id === e.event_id)) reaction(reactions.shift()!)
    }
    // Reactions to an earlier step's events (a throttled board update, say): named with their cause.
    for (const x of reactions) say(`${style.dim('->')} ${x.type}${x.depth === 1 ? ` (caused by ${x.causation_type ?? '?'})` : ''}: ${x.summary}`, `${'   '.repeat(x.depth)} `)
  })
  out.push('')
  for (const u of r.users) {
    const facts = [`${u.xp} XP`, `level ${u.level}`, `streak ${u.streak}`, `${u.tier} tier`, `badges ${u.tier_badge ?? '-'} / L${u.level_badge ?? '-'}`, `${u.notifications} notifications`]
    say(`${style.bold(u.name)}: ${facts.join(', ')}`, '', '  ')
    if (u.achievements.length > 0) say(`achievements: ${u.achievements.join(', ')}`, '  ', '    ')
    if (u.quests.length > 0) say(`quests: ${u.quests.join(', ')}`, '  ', '    ')
  }
  if (r.search) say(`search "${r.search.query}": ${r.search.hits.map((h) => `${h.kind} "${h.title}"`).join('; ') || 'no hits'}`, '', '  ')
  say(`cache invalidations: ${r.cache_invalidations}${r.mail_dir ? `, mails in ${r.mail_dir}` : ''}`, '', '  ')
  say(`${r.events} events in this journey${r.settled ? '' : ' (the services had not settled when the demo stopped waiting)'}`, '', '  ')
  return out
}
