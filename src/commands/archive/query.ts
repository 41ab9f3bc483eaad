import {Flags} from '@oclif/core'
import {archiveDir, archiveDirFlag, archiveFilterFlags, archiveFilterFrom, checkFilterTypes} from '../../cli/archive-flags.js'
import {BaseCommand, catalogFlag} from '../../cli/base.js'
import {printable} from '../../core/redact.js'
import type {ArchivedEvent} from '../../ops/archive/index.js'
import {shortEventId} from '../../core/event-id.js'

export interface ArchiveQueryResult {
  events: Array<{file: string; event: ArchivedEvent['record']['event']; published_at: number | null; handled: ArchivedEvent['record']['handled']}>
  files_read: number
  files_skipped: number
}

export default class ArchiveQuery extends BaseCommand<typeof ArchiveQuery> {
  static override summary = 'A compliance query over the archive, by aggregate or user id, type and time, without restoring anything.'
  static override description = `Reads the archive folder's manifest and opens only the files whose index (type, time range, ids) can match; each file read is checked against its sha256. On a terminal: one line per event; piped: the events as NDJSON (the envelopes as they were in the store). --json gives each event with its file, when it was published and which groups handled it.

--user finds the events whose aggregate or any payload id (user_id, author_id, follower_id, ...) is that id.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --user 3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61',
    '<%= config.bin %> <%= command.id %> --type "social.*" --from 2025-01-01 --to 2025-04-01 --limit 20',
    '<%= config.bin %> <%= command.id %> --aggregate 0b9f3c1e-8a4d-4e2b-9f6a-2d7c1e5b3a90 --json',
  ]
  static override flags = {
    ...archiveFilterFlags,
    limit: Flags.integer({summary: 'Stop after N events.', min: 1}),
    dir: archiveDirFlag,
    catalog: catalogFlag,
  }

  public async run(): Promise<ArchiveQueryResult> {
    const filter = archiveFilterFrom(this.flags)
    const dir = await archiveDir(this.flags.dir)
    const {queryArchive, openArchive} = await import('../../ops/archive/index.js')
    openArchive(dir)
    await checkFilterTypes(filter, dir, this.flags.catalog)
    const scan = {filesRead: 0, filesSkipped: 0}
    const json = this.jsonEnabled()
    const tty = Boolean(process.stdout.isTTY)
    const result: ArchiveQueryResult = {events: [], files_read: 0, files_skipped: 0}
    let count = 0
    for await (const {file, record} of queryArchive({dir, filter, limit: this.flags.limit, scan})) {
      count++
      if (json) result.events.push({file, event: record.event, published_at: record.published_at, handled: record.handled})
      else process.stdout.write(tty ? `${line({file, record})}\n` : `${JSON.stringify(record.event)}\n`)
    }
    result.files_read = scan.filesRead
    result.files_skipped = scan.filesSkipped
    if (!json) process.stderr.write(`${count} event(s); ${scan.filesRead} file(s) read, ${scan.filesSkipped} skipped by the index\n`)
    return result
  }
}

/** One readable line within 80 columns: time, type, aggregate and event id (shortened). */
export function line({record: {event}}: ArchivedEvent): string {
  // An archive file is bytes on disk, its aggregate ids anyone's: control characters shown escaped.
  const short = (text: unknown) => printable(String(text ?? '-')).slice(0, 8)
  const cut = (text: string, width: number) => (text.length <= width ? text.padEnd(width) : `${text.slice(0, width - 1)}…`)
  return `${printable(event.timestamp).slice(0, 19)}Z  ${cut(printable(event.event_type), 34)}  ${short(event.metadata?.aggregate_id).padEnd(8)}  ${shortEventId(printable(event.event_id))}`
}
