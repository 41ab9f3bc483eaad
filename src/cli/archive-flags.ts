/** The archive commands' folder and filters, read the same way by each. */
import {existsSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {join} from 'node:path'
import type {EventEnvelope} from '../core/envelope.js'
import type {ArchiveFilter} from '../ops/archive/index.js'
import {parseWhen} from './dlq-flags.js'

export const archiveDirFlag = Flags.string({
  summary: 'The archive folder. Default: archive/ in the data dir (.tektree/archive, or under TEKTREE_DATA_DIR).',
  env: 'TEKTREE_ARCHIVE_DIR',
})

export const archiveFilterFlags = {
  type: Flags.string({summary: 'Only these event types (globs: "social.*"); repeatable.', multiple: true, helpGroup: 'FILTER'}),
  aggregate: Flags.string({summary: 'Only events of this aggregate id.', helpGroup: 'FILTER'}),
  user: Flags.string({summary: 'Only events naming this user id (the aggregate, or any payload id: user_id, author_id, ...).', helpGroup: 'FILTER'}),
  from: Flags.string({summary: 'Events at or after: an ISO time, or a duration ago (30d).', helpGroup: 'FILTER'}),
  to: Flags.string({summary: 'Events before: an ISO time, or a duration ago.', helpGroup: 'FILTER'}),
}

export async function archiveDir(flag: string | undefined): Promise<string> {
  if (flag) return flag
  const {resolveDataDir} = await import('../embedded/discovery.js')
  return join(resolveDataDir(), 'archive')
}

/**
 * The archived events verify counts beside the store (their effects stay in the projections): the
 * folder given, which must hold an archive, else the data dir's when an archive run made one.
 */
export async function archivedEvents(flag: string | undefined): Promise<AsyncIterable<EventEnvelope> | undefined> {
  const [dir, {MANIFEST, queryArchive}] = await Promise.all([archiveDir(flag), import('../ops/archive/index.js')])
  if (!flag && !existsSync(join(dir, MANIFEST))) return undefined
  return (async function* () {
    for await (const {record} of queryArchive({dir})) yield record.event
  })()
}

export function archiveFilterFrom(flags: {type?: string[]; aggregate?: string; user?: string; from?: string; to?: string}): ArchiveFilter {
  return {
    ...(flags.type?.length ? {types: flags.type} : {}),
    ...(flags.aggregate ? {aggregateId: flags.aggregate} : {}),
    ...(flags.user ? {userId: flags.user} : {}),
    ...(flags.from ? {from: parseWhen(flags.from, 'from')} : {}),
    ...(flags.to ? {to: parseWhen(flags.to, 'to')} : {}),
  }
}

/** A filter's type globs must name a type the catalog or the archive knows (closest names otherwise). */
export async function checkFilterTypes(filter: ArchiveFilter, dir: string, catalogFile: string | undefined): Promise<void> {
  if (!filter.types?.length) return
  const [{loadCatalog}, {openArchive, archivedTypes, checkTypeGlobs}] = await Promise.all([import('../catalog/load.js'), import('../ops/archive/index.js')])
  const catalog = await loadCatalog(catalogFile)
  checkTypeGlobs(filter.types, [...catalog.events.flatMap((e) => [e.type, ...e.aliases]), ...archivedTypes(openArchive(dir))])
}
