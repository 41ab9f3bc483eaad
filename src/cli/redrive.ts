/** What `dlq retry` and `dlq redrive` share: the plan, the confirmation, the progress, the summary. */
import {Flags} from '@oclif/core'
import {confirm} from './confirm.js'
import type {DlqRecord} from '../core/ports.js'
import {printable} from '../core/redact.js'
import type {Runtime} from '../core/runtime.js'
import type {DlqCause} from '../ops/dlq.js'

/** More entries than this are sent only after a yes (or --yes). */
export const CONFIRM_ABOVE = 50

export const redriveFlags = {
  'dry-run': Flags.boolean({summary: 'Show what would be sent, by cause; send nothing.', default: false}),
  rate: Flags.integer({summary: 'Entries sent a second (default: as fast as the bus takes them).', min: 1}),
  yes: Flags.boolean({char: 'y', summary: `Do not ask before sending more than ${CONFIRM_ABOVE} entries.`, default: false}),
}

export interface RedriveReport {
  dry_run: boolean
  matched: number
  sent: number
  interrupted: boolean
  causes: Array<Omit<DlqCause, 'ids'>>
  /** Groups with no consumer running: their entries wait on the group's topic until one starts. */
  idle_groups: string[]
}

interface Output {
  log(line: string): void
  json: boolean
}

export async function runRedrive(runtime: Runtime, records: DlqRecord[], flags: {'dry-run': boolean; rate?: number; yes: boolean; catalog?: string}, out: Output): Promise<RedriveReport> {
  const [{groupByCause}, {redrive}, {loadCatalog}] = await Promise.all([import('../ops/dlq.js'), import('../ops/redrive.js'), import('../catalog/load.js')])
  const causes = groupByCause(records).map(({ids: _ids, ...cause}) => cause)
  const groups = [...new Set(records.map((r) => r.group))].sort()
  const stats = await runtime.bus.stats()
  const idle = groups.filter((g) => !stats.some((s) => s.group === g && s.consumers.some((c) => c.live)))
  const dryRun = flags['dry-run']
  if (!out.json) {
    out.log(`${records.length} entr${records.length === 1 ? 'y' : 'ies'} to send back to ${groups.join(', ') || 'no group'}${dryRun ? ' (dry run: nothing sent)' : ''}`)
    for (const c of causes.slice(0, 20)) out.log(printable(`  ${String(c.count).padStart(6)}  ${c.group}  ${c.event_type ?? '(unparsed)'}  ${c.code}`).slice(0, 80))
    if (idle.length > 0) out.log(`No consumer of ${idle.join(', ')} is running: the entries wait for \`tektree services\`.`)
  }
  const report = {dry_run: dryRun, matched: records.length, sent: 0, interrupted: false, causes, idle_groups: idle}
  if (dryRun || records.length === 0) return report
  if (records.length > CONFIRM_ABOVE && !flags.yes) {
    await confirm(`Send ${records.length} entries back to their groups?`, {message: `Refusing to send ${records.length} DLQ entries back without confirmation`, hint: `More than ${CONFIRM_ABOVE} and no terminal to ask on: add --yes (or --dry-run to see what would go).`})
  }
  const catalog = await loadCatalog(flags.catalog)
  const stop = new AbortController()
  const onSigint = () => stop.abort()
  process.once('SIGINT', onSigint)
  const progress = process.stderr.isTTY && !out.json
  try {
    const result = await redrive({
      bus: runtime.bus,
      catalog,
      records,
      ratePerSec: flags.rate,
      signal: stop.signal,
      onProgress: progress ? (sent, total) => process.stderr.write(`\rsent ${sent}/${total}`) : undefined,
    })
    if (progress) process.stderr.write('\n')
    if (!out.json) {
      out.log(`${result.sent} sent${result.interrupted ? ` (interrupted: run it again for the ${result.total - result.sent} left)` : ''}; each leaves the DLQ once its group has handled it`)
    }
    if (result.interrupted) process.exitCode = 130
    return {...report, sent: result.sent, interrupted: result.interrupted}
  } finally {
    process.off('SIGINT', onSigint)
  }
}
