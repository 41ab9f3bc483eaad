/**
 * The archive folder on disk: gzip NDJSON files, the manifest that lists them (checksum, count and
 * the index query reads), durable writes and the lock that keeps two runs apart.
 *
 * Layout under the folder:
 *   manifest.ndjson                                   one JSON line per step, appended, fsynced
 *   <domain>/<type>/<first>_<count>_<hash>.ndjson.gz  one archived event per line
 *   *.tmp                                             a file being written (never listed)
 *   .lock                                             the pid of the run holding the folder
 *
 * Manifest lines: {"kind":"file",...} lists a file once it is renamed into place and verified; the
 * events it holds leave the store only after that line is durable, and {"kind":"deleted","file"}
 * follows once they have. {"kind":"abandoned","file"} retires a listed file whose events were never
 * removed (its file went missing before they were): they stay in the store.
 */
import {createHash} from 'node:crypto'
import {closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync} from 'node:fs'
import {dirname, join, relative, sep} from 'node:path'
import {promisify} from 'node:util'
import {gunzip as gunzipCb, gzip as gzipCb} from 'node:zlib'
import {isAlive} from '../../embedded/discovery.js'
import type {StoredEventRecord} from '../../core/ports.js'
import type {IdFilter} from './id-filter.js'
import {UserError} from '../../errors.js'

const gzip = promisify(gzipCb)
const gunzip = promisify(gunzipCb)

export const MANIFEST = 'manifest.ndjson'
export const LOCK = '.lock'
export const ARCHIVE_SUFFIX = '.ndjson.gz'

/** One archive file as the manifest lists it: checksum and count, and the index query skips by. */
export interface ArchiveFileEntry {
  kind: 'file'
  /** Path relative to the archive folder, with "/" separators. */
  file: string
  sha256: string
  bytes: number
  /** Events (lines) in the file. */
  count: number
  /** The type archived (its catalog name), and every event_type in the file (an alias too). */
  type: string
  types: string[]
  domain: string
  /** The retention category it was archived under. */
  category: string
  /** Earliest and latest envelope timestamp in the file. */
  first: string
  last: string
  /** Every aggregate id and payload id (user_id, author_id, ...) of its events, as a Bloom filter: what query skips by. */
  ids: IdFilter
  /** When the file was written (wall clock), and the date retention was applied as of. */
  archived_at: string
  as_of: string
}

export type ManifestLine =
  | ArchiveFileEntry
  | {kind: 'deleted'; file: string; removed: number; at: string}
  | {kind: 'abandoned'; file: string; reason: string; at: string}

export interface Manifest {
  /** Listed files, in the order they were listed. */
  files: ArchiveFileEntry[]
  /** Files whose events have left the store. */
  deleted: Set<string>
  abandoned: Set<string>
  /** Bytes of an unfinished last line (a run stopped while appending it), 0 when none. */
  tornBytes: number
  /** Byte length of the complete lines. */
  goodBytes: number
}

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST)
}

/** The manifest as it is on disk; an unfinished last line is reported, not read. */
export function readManifest(dir: string): Manifest {
  const path = manifestPath(dir)
  const manifest: Manifest = {files: [], deleted: new Set(), abandoned: new Set(), tornBytes: 0, goodBytes: 0}
  if (!existsSync(path)) return manifest
  const text = readFileSync(path)
  const end = text.lastIndexOf(0x0a) + 1
  manifest.goodBytes = end
  manifest.tornBytes = text.length - end
  const lines = text.subarray(0, end).toString('utf8').split('\n')
  for (const [i, line] of lines.entries()) {
    if (line === '') continue
    let parsed: ManifestLine
    try {
      parsed = JSON.parse(line) as ManifestLine
    } catch {
      throw new UserError(`The archive manifest ${path} has a damaged line ${i + 1}`, {
        code: 'ARCHIVE_CORRUPT',
        hint: 'Restore the manifest from a backup; `tektree archive verify` lists what else is wrong.',
        details: {path, line: i + 1},
      })
    }
    if (parsed.kind === 'file') manifest.files.push(parsed)
    else if (parsed.kind === 'deleted') manifest.deleted.add(parsed.file)
    else if (parsed.kind === 'abandoned') manifest.abandoned.add(parsed.file)
  }
  return manifest
}

/** Cuts an unfinished last line off (only under the lock: it is what a killed run left). */
export function truncateTorn(dir: string, manifest: Manifest): void {
  if (manifest.tornBytes === 0) return
  const fd = openSync(manifestPath(dir), 'r+')
  try {
    ftruncateSync(fd, manifest.goodBytes)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  manifest.tornBytes = 0
}

/** An empty manifest where there is none: after a first run, the folder is an archive (of nothing yet). */
export function ensureManifest(dir: string): void {
  const path = manifestPath(dir)
  if (existsSync(path)) return
  writeFileSync(path, '', {flag: 'a'})
  fsyncDir(dir)
}

/** Appends one line and fsyncs: when this returns, the line survives a crash. */
export function appendManifest(dir: string, line: ManifestLine): void {
  const path = manifestPath(dir)
  const created = !existsSync(path)
  const fd = openSync(path, 'a')
  try {
    writeSync(fd, `${JSON.stringify(line)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  if (created) fsyncDir(dir)
}

/** Makes a rename or a new file in `dir` durable (the directory entry itself). */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** One line per record: what restore reads back (JSON.stringify keeps the store's bytes of the envelope). */
export function recordLines(records: readonly StoredEventRecord[]): string[] {
  return records.map((r) => JSON.stringify({event: r.event, published_at: r.published_at, handled: r.handled}))
}

export async function compress(lines: readonly string[]): Promise<Buffer> {
  return gzip(Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8'))
}

/** The lines of a gzip NDJSON file; a message saying what is wrong when it cannot be read. */
export async function readLines(bytes: Uint8Array): Promise<{lines: string[]} | {error: string}> {
  let text: string
  try {
    text = (await gunzip(bytes)).toString('utf8')
  } catch (error) {
    return {error: `not a readable gzip file (${(error as Error).message})`}
  }
  if (text !== '' && !text.endsWith('\n')) return {error: 'its last line is cut short'}
  return {lines: text === '' ? [] : text.slice(0, -1).split('\n')}
}

/** Parses archived lines; a message naming the first bad line otherwise. */
export function parseRecords(lines: readonly string[]): {records: StoredEventRecord[]} | {error: string} {
  const records: StoredEventRecord[] = []
  for (const [i, line] of lines.entries()) {
    try {
      const record = JSON.parse(line) as StoredEventRecord
      if (typeof record?.event?.event_id !== 'string' || typeof record.event.event_type !== 'string' || !Array.isArray(record.handled)) throw new Error('not an archived event')
      records.push(record)
    } catch (error) {
      return {error: `line ${i + 1} is not an archived event (${(error as Error).message})`}
    }
  }
  return {records}
}

/**
 * Writes `bytes` to `file` durably: a temp file beside it, fsynced, renamed into place, the folder
 * fsynced. `beforeRename` runs between (tests inject a crash there).
 */
export function writeDurably(file: string, bytes: Uint8Array, beforeRename?: () => void): void {
  mkdirSync(dirname(file), {recursive: true})
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, bytes)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  beforeRename?.()
  renameSync(tmp, file)
  fsyncDir(dirname(file))
}

/** Every archive file and temp file under the folder, as manifest paths ("/" separators). */
export function listFiles(dir: string): {archives: string[]; temps: string[]} {
  const archives: string[] = []
  const temps: string[] = []
  const walk = (at: string) => {
    for (const entry of readdirSync(at, {withFileTypes: true})) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.tmp')) temps.push(toManifestPath(dir, path))
      else if (entry.name.endsWith(ARCHIVE_SUFFIX)) archives.push(toManifestPath(dir, path))
    }
  }
  if (existsSync(dir)) walk(dir)
  return {archives: archives.sort(), temps: temps.sort()}
}

export function toManifestPath(dir: string, path: string): string {
  return relative(dir, path).split(sep).join('/')
}

export function fromManifestPath(dir: string, file: string): string {
  return join(dir, ...file.split('/'))
}

export function removeFile(path: string): void {
  rmSync(path, {force: true})
}

export function fileSize(path: string): number | null {
  try {
    return statSync(path).size
  } catch {
    return null
  }
}

/** The pid of a live run holding the folder, or null. */
export function lockHolder(dir: string): number | null {
  let text: string
  try {
    text = readFileSync(join(dir, LOCK), 'utf8')
  } catch {
    return null
  }
  const pid = Number(text.trim())
  return isAlive(pid) ? pid : null
}

/**
 * Holds the folder for one run (run, restore): the lock file names this process; a lock whose
 * process is gone (kill -9) is taken over. Returns the release function.
 */
export function lockArchive(dir: string): () => void {
  mkdirSync(dir, {recursive: true})
  const path = join(dir, LOCK)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, String(process.pid), {flag: 'wx'})
      return () => removeFile(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = Number(readFileSync(path, 'utf8').trim())
    if (holder !== process.pid && isAlive(holder)) {
      throw new UserError(`Another archive run (pid ${holder}) holds ${dir}`, {
        code: 'ARCHIVE_LOCKED',
        hint: 'Let it finish, or stop it; a run that was killed leaves a lock the next run takes over.',
        exitCode: 1,
        details: {dir, pid: holder},
      })
    }
    removeFile(path)
  }
  throw new UserError(`Could not take the lock of ${dir}`, {code: 'ARCHIVE_LOCKED', exitCode: 1, details: {dir}})
}
