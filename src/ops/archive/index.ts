/**
 * Archive by retention (seed 000's table, as the catalog carries it: each event type's
 * `retention` category and period). `runArchive` moves the events past their period out of the
 * store into gzip NDJSON files (./files.ts), `queryArchive` reads them back through the manifest's
 * index without restoring, `restoreArchive` puts them back as already published, and
 * `verifyArchive` checks every file against the manifest.
 *
 * The order that keeps a crash (Ctrl+C, kill -9) from losing or duplicating an event, for each file:
 *   1. write <file>.tmp, fsync, rename into place, fsync the folder;
 *   2. read it back from disk and compare every line with what was meant to be written;
 *   3. append its manifest line (checksum, count, index) and fsync;
 *   4. remove its events from the store;
 *   5. append {"kind":"deleted"}.
 * The next run (or restore) first repairs what a stopped run left: a temp file is removed (its
 * events never left the store), a renamed file without its manifest line is read, checked and
 * listed (or removed when it does not read back whole), and a listed file whose events are still
 * in the store has them removed, each only where the store holds the very same event.
 */
import {existsSync, readFileSync} from 'node:fs'
import type {Catalog} from '../../catalog/types.js'
import {formatPeriod} from '../../catalog/duration.js'
import {canonicalJson, type EventEnvelope} from '../../core/envelope.js'
import {compileTypeGlobs} from '../../core/glob.js'
import type {Store, StoredEventRecord} from '../../core/ports.js'
import {closest} from '../../core/suggest.js'
import {UserError} from '../../errors.js'
import {buildIdFilter, idHashes, mayHold} from './id-filter.js'
import {
  appendManifest,
  compress,
  ensureManifest,
  fileSize,
  fromManifestPath,
  listFiles,
  lockArchive,
  lockHolder,
  manifestPath,
  parseRecords,
  readLines,
  readManifest,
  recordLines,
  removeFile,
  sha256,
  truncateTorn,
  writeDurably,
  type ArchiveFileEntry,
  type Manifest,
} from './files.js'

export {MANIFEST, type ArchiveFileEntry} from './files.js'

/** One event type's retention, from the catalog. */
export interface RetentionRule {
  type: string
  aliases: string[]
  domain: string
  category: string
  /** null = indefinite (never archived). */
  maxAgeMs: number | null
}

/** Every catalog type with a retention category, by domain then type. */
export function retentionRules(catalog: Catalog): RetentionRule[] {
  return catalog.events
    .filter((e) => e.retention !== null)
    .map((e) => ({type: e.type, aliases: e.aliases, domain: e.domain, category: e.retention!.category, maxAgeMs: e.retention!.maxAgeMs}))
    .sort((a, b) => a.domain.localeCompare(b.domain) || a.type.localeCompare(b.type))
}

/** Crash points for tests: a hook that throws stops the run there, as kill -9 would. */
export interface ArchiveHooks {
  /** The temp file is written and fsynced, not yet renamed. */
  beforeRename?(file: string): void
  /** The file is in place and read back, its manifest line not yet written. */
  beforeManifest?(file: string): void
  /** The manifest line is durable, the events are still in the store. */
  beforeDelete?(file: string): void
}

export interface ArchiveRunOptions {
  store: Store
  catalog: Catalog
  dir: string
  /** Retention is applied as of this time (ms): events older than asOf - period leave the store. */
  asOf: number
  /** Only these event types (globs). */
  types?: string[]
  dryRun?: boolean
  /** Most events per archive file (default 5000). */
  fileEvents?: number
  signal?: AbortSignal
  hooks?: ArchiveHooks
  onFile?(file: ArchiveFileEntry): void
}

export interface ArchiveTypeResult {
  type: string
  domain: string
  category: string
  retention: string
  /** Events at or after this time stay. */
  cutoff: string
  /** Dry run: events past retention now. */
  past: number
  archived: number
  files: number
  /** Past retention but not yet published (in the outbox or quarantined): they stay until the relay has them. */
  unpublished: number
}

export interface ArchiveRunResult {
  dir: string
  as_of: string
  dry_run: boolean
  types: ArchiveTypeResult[]
  /** Categories kept indefinitely, with how many types each. */
  kept: Array<{category: string; types: number}>
  archived: number
  files: string[]
  recovered: RecoveryResult
  interrupted: boolean
}

export interface RecoveryResult {
  /** Temp files of a stopped run, removed (their events were still in the store). */
  removed_temps: string[]
  /** Files renamed into place by a stopped run before their manifest line: checked and listed. */
  adopted: string[]
  /** Such files that did not read back whole: removed (their events were still in the store). */
  removed_orphans: string[]
  /** Listed files whose events a stopped run had not yet removed from the store: removed now. */
  completed: string[]
  /** Listed files gone missing or damaged before their events left the store: retired, the events stay. */
  abandoned: string[]
}

const FILE_EVENTS = 5_000

export async function runArchive(options: ArchiveRunOptions): Promise<ArchiveRunResult> {
  const {store, catalog, dir, asOf, signal} = options
  const rules = selectRules(catalog, options.types)
  const result: ArchiveRunResult = {
    dir,
    as_of: new Date(asOf).toISOString(),
    dry_run: Boolean(options.dryRun),
    types: [],
    kept: keptCategories(rules),
    archived: 0,
    files: [],
    recovered: {removed_temps: [], adopted: [], removed_orphans: [], completed: [], abandoned: []},
    interrupted: false,
  }
  const timed = rules.filter((r) => r.maxAgeMs !== null)
  if (options.dryRun) {
    for (const rule of timed) {
      const cutoff = asOf - rule.maxAgeMs!
      const past = await store.events.count({types: [rule.type, ...rule.aliases], to: cutoff})
      result.types.push(typeResult(rule, cutoff, {past}))
    }
    return result
  }
  const release = lockArchive(dir)
  try {
    ensureManifest(dir)
    const manifest = readManifest(dir)
    result.recovered = await recover(dir, store, manifest, categoryOf(catalog))
    const perFile = Math.max(1, options.fileEvents ?? FILE_EVENTS)
    for (const rule of timed) {
      if (signal?.aborted) {
        result.interrupted = true
        break
      }
      const cutoff = asOf - rule.maxAgeMs!
      const row = typeResult(rule, cutoff, {})
      result.types.push(row)
      let chunk: string[] = []
      const flush = async () => {
        const ids = chunk
        chunk = []
        const written = await archiveChunk({dir, store, rule, asOf, ids, names: manifest, hooks: options.hooks})
        row.unpublished += written.unpublished
        if (!written.entry) return
        manifest.files.push(written.entry)
        manifest.deleted.add(written.entry.file)
        row.archived += written.entry.count
        row.files++
        result.archived += written.entry.count
        result.files.push(written.entry.file)
        options.onFile?.(written.entry)
      }
      for await (const event of store.events.query({types: [rule.type, ...rule.aliases], to: cutoff})) {
        chunk.push(event.event_id)
        if (chunk.length < perFile) continue
        // Between files only: a file under way is finished (or its temp left for the next run).
        if (signal?.aborted) break
        await flush()
      }
      // Stopped with events of this type left (the rest of the types are checked above).
      if (signal?.aborted && chunk.length > 0) {
        result.interrupted = true
        break
      }
      if (chunk.length > 0) await flush()
    }
  } finally {
    release()
  }
  return result
}

function typeResult(rule: RetentionRule, cutoff: number, extra: Partial<ArchiveTypeResult>): ArchiveTypeResult {
  return {
    type: rule.type,
    domain: rule.domain,
    category: rule.category,
    retention: formatPeriod(rule.maxAgeMs),
    cutoff: new Date(cutoff).toISOString(),
    past: 0,
    archived: 0,
    files: 0,
    unpublished: 0,
    ...extra,
  }
}

function keptCategories(rules: readonly RetentionRule[]): Array<{category: string; types: number}> {
  const kept = new Map<string, number>()
  for (const rule of rules) if (rule.maxAgeMs === null) kept.set(rule.category, (kept.get(rule.category) ?? 0) + 1)
  return [...kept].sort((a, b) => a[0].localeCompare(b[0])).map(([category, types]) => ({category, types}))
}

/** The rules the --type globs pick; a glob that picks none is a usage error naming the closest types. */
function selectRules(catalog: Catalog, types: readonly string[] | undefined): RetentionRule[] {
  const rules = retentionRules(catalog)
  if (!types || types.length === 0) return rules
  checkTypeGlobs(types, rules.flatMap((r) => [r.type, ...r.aliases]))
  const wanted = compileTypeGlobs(types)
  return rules.filter((r) => wanted(r.type) || r.aliases.some(wanted))
}

/** Each glob must match one of `known`; otherwise a UserError with the closest names. */
export function checkTypeGlobs(globs: readonly string[], known: readonly string[]): void {
  for (const glob of globs) {
    let matches: (type: string) => boolean
    try {
      matches = compileTypeGlobs([glob])
    } catch (error) {
      throw new UserError(`--type "${glob}" is not a type glob: ${(error as Error).message}`, {code: 'INVALID_FLAGS', exitCode: 2})
    }
    if (known.some(matches)) continue
    const domains = [...new Set(known.map((t) => `${t.split('.')[0]}.*`))]
    const near = closest(glob, [...known, ...domains], {limit: 3, substrings: true, maxDistance: Math.max(3, Math.floor(glob.length / 3))})
    throw new UserError(`No event type matches "${glob}"`, {
      code: 'UNKNOWN_EVENT_TYPE',
      hint: near.length > 0 ? `Did you mean ${near.join(', ')}?` : '`tektree catalog list` lists the types.',
      exitCode: 2,
      details: {type: glob, suggestions: near},
    })
  }
}

function categoryOf(catalog: Catalog): (type: string) => string {
  return (type) => catalog.get(type)?.retention?.category ?? 'unknown'
}

// ------------------------------------------------------------------------------------ one file

interface ChunkOptions {
  dir: string
  store: Store
  rule: RetentionRule
  asOf: number
  ids: string[]
  names: Manifest
  hooks?: ArchiveHooks
}

async function archiveChunk({dir, store, rule, asOf, ids, names, hooks}: ChunkOptions): Promise<{entry: ArchiveFileEntry | null; unpublished: number}> {
  const records = await store.events.records(ids)
  // An event the relay has not published yet stays: archived, it would never reach the bus.
  const published = records.filter((r) => r.published_at !== null)
  const unpublished = records.length - published.length
  if (published.length === 0) return {entry: null, unpublished}
  const lines = recordLines(published)
  const bytes = await compress(lines)
  const file = freeName(dir, names, rule, published)
  const path = fromManifestPath(dir, file)
  writeDurably(path, bytes, () => hooks?.beforeRename?.(file))
  // Read back from the disk, not from memory: what restore will read is what is checked.
  const check = await checkFile(path, lines.length)
  if ('error' in check || check.lines.some((line, i) => line !== lines[i])) {
    removeFile(path)
    throw new UserError(`The archive file ${file} did not read back as written${'error' in check ? `: ${check.error}` : ''}; nothing was removed from the store`, {
      code: 'ARCHIVE_WRITE_FAILED',
      hint: 'Check the disk under the archive folder (space, errors), then run again.',
      exitCode: 1,
      details: {file},
    })
  }
  hooks?.beforeManifest?.(file)
  const entry = fileEntry(file, check.sha256, check.bytes, published, rule.category, asOf, rule.type)
  appendManifest(dir, entry)
  hooks?.beforeDelete?.(file)
  const removed = await store.events.remove(published.map((r) => r.event.event_id))
  appendManifest(dir, {kind: 'deleted', file, removed, at: new Date().toISOString()})
  return {entry, unpublished}
}

/** `<domain>/<type>/<first timestamp>_<count>_<hash of the ids>.ndjson.gz`, made unique. */
function freeName(dir: string, manifest: Manifest, rule: RetentionRule, records: readonly StoredEventRecord[]): string {
  const first = records.reduce((min, r) => (r.event.timestamp < min ? r.event.timestamp : min), records[0].event.timestamp)
  const stamp = first.replace(/[-:]/g, '').replace(/\.\d+/, '')
  const hash = sha256(Buffer.from(records.map((r) => r.event.event_id).join('\n'))).slice(0, 8)
  const base = `${rule.domain}/${rule.type}/${stamp}_${records.length}_${hash}`
  const listed = new Set(manifest.files.map((f) => f.file))
  // The same events archived again (restored, then past retention again) get a file of their own.
  for (let n = 1; ; n++) {
    const file = `${base}${n === 1 ? '' : `-${n}`}.ndjson.gz`
    if (!listed.has(file) && !existsSync(fromManifestPath(dir, file))) return file
  }
}

function fileEntry(file: string, hash: string, bytes: number, records: readonly StoredEventRecord[], category: string, asOf: number, type?: string): ArchiveFileEntry {
  let first = records[0].event.timestamp
  let last = first
  const ids = new Set<string>()
  const types = new Set<string>()
  for (const {event} of records) {
    types.add(event.event_type)
    if (event.timestamp < first) first = event.timestamp
    if (event.timestamp > last) last = event.timestamp
    for (const id of idsOf(event)) ids.add(id)
  }
  return {
    kind: 'file',
    file,
    sha256: hash,
    bytes,
    count: records.length,
    type: type ?? records[0].event.event_type,
    types: [...types].sort(),
    domain: (type ?? records[0].event.event_type).split('.')[0],
    category,
    first,
    last,
    ids: buildIdFilter(ids),
    archived_at: new Date().toISOString(),
    as_of: new Date(asOf).toISOString(),
  }
}

/**
 * The ids an event can be found by: its aggregate id and every payload value under a key named
 * `id`, `*_id` or `*_ids` (user_id, author_id, follower_ids, ...), at any depth.
 */
export function idsOf(event: EventEnvelope): Set<string> {
  const ids = new Set<string>()
  const aggregate = event.metadata?.aggregate_id
  if (typeof aggregate === 'string') ids.add(aggregate)
  const walk = (value: unknown, idKey: boolean) => {
    if (typeof value === 'string') {
      if (idKey) ids.add(value)
    } else if (Array.isArray(value)) for (const item of value) walk(item, idKey)
    else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) walk(item, /(^|_)ids?$/i.test(key))
  }
  walk(event.payload, false)
  return ids
}

/** Reads a file from disk: its checksum, size and lines, or what is wrong with it. */
async function checkFile(path: string, expectedCount?: number): Promise<{sha256: string; bytes: number; lines: string[]} | {error: string}> {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    return {error: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `unreadable (${(error as Error).message})`}
  }
  const read = await readLines(bytes)
  if ('error' in read) return read
  if (expectedCount !== undefined && read.lines.length !== expectedCount) return {error: `holds ${read.lines.length} event(s), expected ${expectedCount}`}
  return {sha256: sha256(bytes), bytes: bytes.length, lines: read.lines}
}

// ------------------------------------------------------------------------------------ recovery

/** Repairs what a stopped run left (see the header); under the lock. */
async function recover(dir: string, store: Store, manifest: Manifest, category: (type: string) => string): Promise<RecoveryResult> {
  const out: RecoveryResult = {removed_temps: [], adopted: [], removed_orphans: [], completed: [], abandoned: []}
  truncateTorn(dir, manifest)
  const {archives, temps} = listFiles(dir)
  for (const temp of temps) {
    removeFile(fromManifestPath(dir, temp))
    out.removed_temps.push(temp)
  }
  const listed = new Set(manifest.files.map((f) => f.file))
  for (const file of archives.filter((f) => !listed.has(f))) {
    const check = await checkFile(fromManifestPath(dir, file))
    const parsed = 'error' in check ? check : parseRecords(check.lines)
    if ('error' in check || 'error' in parsed || parsed.records.length === 0) {
      removeFile(fromManifestPath(dir, file))
      out.removed_orphans.push(file)
      continue
    }
    const asOf = Date.now()
    const entry = fileEntry(file, check.sha256, check.bytes, parsed.records, category(parsed.records[0].event.event_type), asOf)
    appendManifest(dir, entry)
    manifest.files.push(entry)
    out.adopted.push(file)
  }
  for (const entry of manifest.files) {
    if (manifest.deleted.has(entry.file) || manifest.abandoned.has(entry.file)) continue
    const check = await checkFile(fromManifestPath(dir, entry.file), entry.count)
    const parsed = 'error' in check ? check : check.sha256 !== entry.sha256 ? {error: 'its checksum differs from the manifest'} : parseRecords(check.lines)
    if ('error' in parsed) {
      appendManifest(dir, {kind: 'abandoned', file: entry.file, reason: parsed.error, at: new Date().toISOString()})
      manifest.abandoned.add(entry.file)
      out.abandoned.push(entry.file)
      continue
    }
    // Only where the store holds the very same event: anything else stays where it is.
    const archived = new Map(parsed.records.map((r) => [r.event.event_id, canonicalJson(r.event)]))
    const held = await store.events.records([...archived.keys()])
    const same = held.filter((r) => archived.get(r.event.event_id) === canonicalJson(r.event)).map((r) => r.event.event_id)
    const removed = await store.events.remove(same)
    appendManifest(dir, {kind: 'deleted', file: entry.file, removed, at: new Date().toISOString()})
    manifest.deleted.add(entry.file)
    out.completed.push(entry.file)
  }
  return out
}

// ------------------------------------------------------------------------------------ query

export interface ArchiveFilter {
  types?: string[]
  aggregateId?: string
  /** Events whose aggregate or any payload id (user_id, author_id, ...) is this. */
  userId?: string
  /** Envelope timestamp, inclusive lower and exclusive upper bound (ms). */
  from?: number
  to?: number
}

export interface ArchiveScan {
  filesRead: number
  filesSkipped: number
}

export interface ArchivedEvent {
  file: string
  record: StoredEventRecord
}

/** The archive's manifest, or a UserError saying there is none and what to run. */
export function openArchive(dir: string): Manifest {
  if (!existsSync(manifestPath(dir))) {
    throw new UserError(`No archive in ${dir}${existsSync(dir) ? ' (the folder has no manifest.ndjson)' : ' (the folder does not exist)'}`, {
      code: 'ARCHIVE_NOT_FOUND',
      hint: 'Run `tektree archive run` to archive the events past retention (`--dry-run` shows what would move), or name the folder that holds one (--dir; --archive for tektree verify).',
      exitCode: 2,
      details: {dir},
    })
  }
  return readManifest(dir)
}

/** Types a filter's globs may name: the catalog's and the archive's own. */
export function archivedTypes(manifest: Manifest): string[] {
  return [...new Set(manifest.files.flatMap((f) => f.types ?? [f.type]))]
}

/**
 * Archived events matching the filter, file by file, through the manifest's index: a file whose
 * type, time range or ids cannot match is not opened. Each file read is checked against its
 * checksum. An event listed in two files (archived, restored, archived again) comes once.
 */
export async function* queryArchive(options: {dir: string; filter?: ArchiveFilter; limit?: number; signal?: AbortSignal; scan?: ArchiveScan}): AsyncGenerator<ArchivedEvent> {
  const {dir, filter = {}, signal} = options
  const manifest = openArchive(dir)
  const scan = options.scan ?? {filesRead: 0, filesSkipped: 0}
  const typeMatch = filter.types?.length ? compileTypeGlobs(filter.types) : null
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  const seen = new Set<string>()
  const idWanted = [filter.aggregateId, filter.userId].filter((id): id is string => id !== undefined).map(idHashes)
  let emitted = 0
  for (const entry of manifest.files) {
    if (emitted >= limit || signal?.aborted) return
    if (manifest.abandoned.has(entry.file)) continue
    const outside =
      (typeMatch && !(entry.types ?? [entry.type]).some(typeMatch)) ||
      (filter.from !== undefined && Date.parse(entry.last) < filter.from) ||
      (filter.to !== undefined && Date.parse(entry.first) >= filter.to) ||
      idWanted.some((hashes) => !mayHold(entry.ids, hashes))
    if (outside) {
      scan.filesSkipped++
      continue
    }
    scan.filesRead++
    const check = await checkFile(fromManifestPath(dir, entry.file), entry.count)
    const parsed = 'error' in check ? check : check.sha256 !== entry.sha256 ? {error: 'its checksum differs from the manifest'} : parseRecords(check.lines)
    if ('error' in parsed) {
      throw new UserError(`The archive file ${entry.file} cannot be read: ${parsed.error}`, {
        code: 'ARCHIVE_CORRUPT',
        hint: '`tektree archive verify` checks every file; restore a damaged one from a backup.',
        exitCode: 1,
        details: {file: entry.file},
      })
    }
    for (const record of parsed.records) {
      const {event} = record
      if (seen.has(event.event_id)) continue
      if (typeMatch && !typeMatch(event.event_type)) continue
      const ts = Date.parse(event.timestamp)
      if (filter.from !== undefined && !(ts >= filter.from)) continue
      if (filter.to !== undefined && !(ts < filter.to)) continue
      if (filter.aggregateId !== undefined && event.metadata?.aggregate_id !== filter.aggregateId) continue
      if (filter.userId !== undefined && !idsOf(event).has(filter.userId)) continue
      seen.add(event.event_id)
      yield {file: entry.file, record}
      if (++emitted >= limit) return
    }
  }
}

// ------------------------------------------------------------------------------------ restore

export interface RestoreResult {
  dir: string
  /** Archived events that matched. */
  read: number
  /** Put back into the store (as published: the bus does not see them again). */
  inserted: number
  /** Already in the store, the same: left as they are. */
  duplicates: number
  /** In the store under the same id with other content: left as they are. */
  conflicts: string[]
  files: number
  dry_run: boolean
  interrupted: boolean
}

const RESTORE_BATCH = 500

/**
 * Archived events back into the store, by the query's filters (or all). Idempotent: restoring
 * again finds them all already there. A stopped archive run is completed first, so that it cannot
 * later remove what this restores.
 */
export async function restoreArchive(options: {store: Store; catalog: Catalog; dir: string; filter?: ArchiveFilter; dryRun?: boolean; signal?: AbortSignal}): Promise<RestoreResult> {
  const {store, dir, signal} = options
  openArchive(dir)
  const result: RestoreResult = {dir, read: 0, inserted: 0, duplicates: 0, conflicts: [], files: 0, dry_run: Boolean(options.dryRun), interrupted: false}
  const release = options.dryRun ? () => undefined : lockArchive(dir)
  try {
    if (!options.dryRun) await recover(dir, store, readManifest(dir), categoryOf(options.catalog))
    const files = new Set<string>()
    let batch: StoredEventRecord[] = []
    const flush = async () => {
      if (batch.length === 0) return
      const done = await store.events.restore(batch)
      result.inserted += done.inserted
      result.duplicates += done.duplicates.length
      result.conflicts.push(...done.conflicts)
      batch = []
    }
    for await (const {file, record} of queryArchive({dir, filter: options.filter, signal})) {
      files.add(file)
      result.read++
      if (options.dryRun) continue
      batch.push(record)
      if (batch.length >= RESTORE_BATCH) await flush()
    }
    await flush()
    result.files = files.size
    result.interrupted = Boolean(signal?.aborted)
  } finally {
    release()
  }
  return result
}

// ------------------------------------------------------------------------------------ verify

export interface VerifyProblem {
  file: string
  problem: string
}

export interface VerifyResult {
  dir: string
  files: number
  events: number
  bytes: number
  /** Listed files whose events a stopped run has not yet removed from the store (the next run does). */
  pending: number
  /** The pid of a run holding the folder now (its unlisted and temp files are not counted as problems), or null. */
  running: number | null
  problems: VerifyProblem[]
  ok: boolean
}

/** Every listed file against its manifest line (present, size, sha256, readable gzip, count, lines), and no file unlisted. */
export async function verifyArchive(dir: string): Promise<VerifyResult> {
  const manifest = openArchive(dir)
  const result: VerifyResult = {dir, files: 0, events: 0, bytes: 0, pending: 0, running: null, problems: [], ok: true}
  const problem = (file: string, text: string) => result.problems.push({file, problem: text})
  if (manifest.tornBytes > 0) problem('manifest.ndjson', 'its last line is unfinished (a run was stopped while writing it); `tektree archive run` repairs it')
  const listed = new Set<string>()
  for (const entry of manifest.files) {
    listed.add(entry.file)
    if (manifest.abandoned.has(entry.file)) continue
    result.files++
    if (!manifest.deleted.has(entry.file)) result.pending++
    const path = fromManifestPath(dir, entry.file)
    const size = fileSize(path)
    if (size === null) {
      problem(entry.file, 'missing')
      continue
    }
    result.bytes += size
    const bytes = readFileSync(path)
    const hash = sha256(bytes)
    if (hash !== entry.sha256) problem(entry.file, `checksum mismatch: sha256 ${hash.slice(0, 12)}…, the manifest says ${entry.sha256.slice(0, 12)}…${size !== entry.bytes ? ` (${size} bytes, the manifest says ${entry.bytes})` : ''}`)
    const read = await readLines(bytes)
    if ('error' in read) {
      problem(entry.file, read.error)
      continue
    }
    if (read.lines.length !== entry.count) problem(entry.file, `holds ${read.lines.length} event(s), the manifest says ${entry.count}`)
    const parsed = parseRecords(read.lines)
    if ('error' in parsed) problem(entry.file, parsed.error)
    result.events += read.lines.length
  }
  // A run under way has a file between its rename and its manifest line, and a temp file: not problems.
  result.running = lockHolder(dir)
  const {archives, temps} = listFiles(dir)
  if (result.running === null) {
    for (const file of archives) if (!listed.has(file)) problem(file, 'not in the manifest (a run was stopped before listing it); `tektree archive run` checks and lists it')
    for (const file of temps) problem(file, 'a temp file a stopped run left; `tektree archive run` removes it')
  }
  result.ok = result.problems.length === 0
  return result
}
