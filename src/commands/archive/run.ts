import {relative} from 'node:path'
import {Flags} from '@oclif/core'
import {archiveDir, archiveDirFlag} from '../../cli/archive-flags.js'
import {BaseCommand, catalogFlag, runtimeFlags} from '../../cli/base.js'
import {parseWhen} from '../../cli/dlq-flags.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {ArchiveRunResult} from '../../ops/archive/index.js'

export default class ArchiveRun extends BaseCommand<typeof ArchiveRun> {
  static override summary = "Moves the events past their retention out of the store into gzip NDJSON files, by the catalog's retention table."
  static override description = `Each event type's retention comes from the catalog's retention table (realtime 7 days, notification 30 days, social 1 year, gamification 2 years, payment 7 years; user and knowledge kept indefinitely). Events older than that, and already published, go into gzip NDJSON files under the archive folder, listed in its manifest.ndjson with their sha256, count and an index (type, time range, ids) that \`tektree archive query\` reads.

An event leaves the store only once its file is written, fsynced, renamed into place, read back and listed. A run stopped by Ctrl+C or kill -9 can be run again: it first repairs what the stopped one left, then goes on; nothing is lost or archived twice.

--as-of applies retention as if it were that date. Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --as-of 2027-06-01 --type "social.*" --json',
  ]
  static override flags = {
    'dry-run': Flags.boolean({summary: 'Count what would move, per domain and type; write and remove nothing.', default: false}),
    'as-of': Flags.string({summary: 'Apply retention as of this date (ISO) instead of now.'}),
    type: Flags.string({summary: 'Only these event types (globs: "social.*"); repeatable.', multiple: true}),
    dir: archiveDirFlag,
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<ArchiveRunResult> {
    const [{loadCatalog}, {runArchive}] = await Promise.all([import('../../catalog/load.js'), import('../../ops/archive/index.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const dir = await archiveDir(this.flags.dir)
    const runtime = await openRuntimeFromFlags(this.flags)
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    try {
      if (runtime.describe().store.origin === 'in-process') process.stderr.write('The store is in this process only: it holds nothing another process appended (start `tektree up`, or give --store-url).\n')
      const asOf = this.flags['as-of'] ? parseWhen(this.flags['as-of'], 'as-of') : runtime.clock.now()
      const progress = process.stderr.isTTY && !this.jsonEnabled()
      let files = 0
      const result = await runArchive({
        store: runtime.store,
        catalog,
        dir,
        asOf,
        types: this.flags.type,
        dryRun: this.flags['dry-run'],
        signal: stop.signal,
        onFile: progress ? (f) => process.stderr.write(`\r${++files} file(s) written, last ${f.type}`.padEnd(79)) : undefined,
      })
      if (progress && files > 0) process.stderr.write('\n')
      if (!this.jsonEnabled()) for (const line of renderRun(result)) this.log(line)
      if (result.interrupted) process.exitCode = 130
      return result
    } finally {
      process.off('SIGINT', onSigint)
      await runtime.close()
    }
  }
}

const n = (value: number) => value.toLocaleString('en-US')

/** The run's summary, within 80 columns. */
export function renderRun(result: ArchiveRunResult): string[] {
  const out: string[] = []
  const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)
  const r = result.recovered
  const repaired = r.removed_temps.length + r.adopted.length + r.removed_orphans.length + r.completed.length + r.abandoned.length
  if (repaired > 0) {
    out.push('Repaired what a stopped run left:')
    if (r.removed_temps.length) out.push(`  ${r.removed_temps.length} temp file(s) removed (their events were still in the store)`)
    if (r.adopted.length) out.push(`  ${r.adopted.length} file(s) checked and listed in the manifest`)
    if (r.removed_orphans.length) out.push(`  ${r.removed_orphans.length} unreadable unlisted file(s) removed`)
    if (r.completed.length) out.push(`  ${r.completed.length} listed file(s) whose events now left the store`)
    if (r.abandoned.length) out.push(`  ${r.abandoned.length} listed file(s) missing or damaged: retired, their events stay`)
  }
  out.push(cut(`${result.dry_run ? 'Dry run, nothing written: ' : ''}retention as of ${result.as_of.slice(0, 19)}Z`, 80))
  const rows = result.types.filter((t) => (result.dry_run ? t.past : t.archived + t.unpublished) > 0)
  if (rows.length === 0) out.push('Nothing is past its retention.')
  else {
    out.push(result.dry_run ? `${'TYPE'.padEnd(44)} ${'RETENTION'.padStart(10)} ${'WOULD MOVE'.padStart(12)}` : `${'TYPE'.padEnd(36)} ${'RETENTION'.padStart(10)} ${'ARCHIVED'.padStart(10)} ${'FILES'.padStart(6)} ${'HELD'.padStart(6)}`)
    let domain = ''
    const totals = new Map<string, number>()
    for (const t of rows) totals.set(t.domain, (totals.get(t.domain) ?? 0) + (result.dry_run ? t.past : t.archived))
    for (const t of rows) {
      if (t.domain !== domain) {
        domain = t.domain
        out.push(`${domain} (${n(totals.get(domain)!)})`)
      }
      if (result.dry_run) out.push(`  ${cut(t.type, 42).padEnd(42)} ${t.retention.padStart(10)} ${n(t.past).padStart(12)}`)
      else out.push(`  ${cut(t.type, 34).padEnd(34)} ${t.retention.padStart(10)} ${n(t.archived).padStart(10)} ${String(t.files).padStart(6)} ${n(t.unpublished).padStart(6)}`)
    }
  }
  if (result.kept.length > 0) out.push(cut(`Kept indefinitely: ${result.kept.map((k) => `${k.category} (${k.types} types)`).join(', ')}`, 80))
  if (!result.dry_run) {
    const where = relative(process.cwd(), result.dir)
    out.push(cut(`${n(result.archived)} event(s) archived into ${result.files.length} file(s) under ${where && !where.startsWith('..') ? where : result.dir}`, 80))
    if (result.types.some((t) => t.unpublished > 0)) out.push('HELD: past retention but not yet published; they stay until the relay sends them.')
    if (result.interrupted) out.push('Interrupted: run it again to go on.')
  }
  return out
}
