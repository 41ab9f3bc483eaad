import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {hostname} from 'node:os'
import {dirname, relative} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, runtimeFlags, UserError} from '../cli/base.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {readNdjsonLines} from '../catalog/ndjson.js'
import type {Catalog} from '../catalog/types.js'
import {errorContract, type ErrorContract, type EventEnvelope} from '../core/envelope.js'
import {eventLimits, type EventLimits} from '../core/limits.js'
import type {RuntimeDescription} from '../core/runtime.js'
import type {Bus, Store} from '../core/ports.js'
import type {Publisher} from '../engine/publisher.js'

export interface PublishSummary {
  source: string
  /** Non-blank lines read. */
  read: number
  published: number
  /** Lines whose event_id the store already had with the same content (append is idempotent by event_id). */
  duplicates: number
  /** Lines whose event_id the store already had with OTHER content (EVENT_ID_CONFLICT, exit 1). */
  conflicts: number
  invalid: number
  /** Unpublished events left in the outbox after the drain (0 unless the bus failed). */
  outbox_pending: number
  runtime: RuntimeDescription
  /** With --json: the first --max-errors error contracts, each with details.line. */
  errors: ErrorContract[]
}

const count = (value: unknown): number => (Array.isArray(value) ? value.length : Number(value ?? 0))

function asContract(value: unknown): ErrorContract {
  const v = value as {error?: {code?: unknown; message?: unknown; details?: unknown}; message?: unknown}
  if (v?.error && typeof v.error === 'object' && typeof v.error.code === 'string') {
    return {error: {code: v.error.code, message: String(v.error.message ?? ''), details: {...((v.error.details as Record<string, unknown>) ?? {})}}}
  }
  return errorContract('PUBLISH_REJECTED', String(v?.message ?? v?.error ?? value))
}

export interface PublishStreamOptions {
  input: NodeJS.ReadableStream
  catalog: Catalog
  publisher: Publisher
  batchSize: number
  /** Default eventLimits(): a line over the size limit is rejected before it is parsed. */
  limits?: EventLimits
  /** A bad line, or (code EVENT_ID_CONFLICT) an event_id the store holds with other content. */
  onInvalid: (error: ErrorContract, line: number) => void | Promise<void>
  /** The ids of the events this stream appended (not duplicates, conflicts or rejected lines). */
  onAppended?: (eventIds: string[]) => void
}

/**
 * Streams NDJSON: each line is an envelope, or a draft {"event_type", "payload"[, "correlation_id",
 * "causation_id"]} whose envelope is filled in. Valid lines are published in batches of `batchSize`
 * (store.append + outbox -> relay -> bus); memory holds one batch.
 */
export async function publishNdjson(options: PublishStreamOptions): Promise<{read: number; published: number; duplicates: number; conflicts: number; invalid: number}> {
  const {publisher, onInvalid} = options
  const totals = {read: 0, published: 0, duplicates: 0, conflicts: 0, invalid: 0}
  let batch: EventEnvelope[] = []
  let lines: number[] = []

  const invalid = async (contract: ErrorContract, line: number) => {
    contract.error.details = {...contract.error.details, line}
    totals.invalid++
    const pending = onInvalid(contract, line)
    if (pending) await pending
  }

  const flush = async () => {
    if (batch.length === 0) return
    const events = batch
    const lineNumbers = lines
    batch = []
    lines = []
    const result = await publisher.publish(events)
    totals.published += count(result.accepted)
    totals.duplicates += count(result.duplicates)
    for (const rejected of result.rejected ?? []) await invalid(asContract(rejected.error), lineNumbers[rejected.index] ?? 0)
    if (options.onAppended && count(result.accepted) > 0) {
      const not = new Set<string>(result.duplicates ?? [])
      for (const {index} of [...(result.rejected ?? []), ...(result.conflicts ?? [])]) not.add(events[index].event_id)
      options.onAppended(events.map((e) => e.event_id).filter((id) => !not.has(id)))
    }
    for (const conflict of result.conflicts ?? []) {
      totals.conflicts++
      const contract = asContract(conflict.error)
      const line = lineNumbers[conflict.index] ?? 0
      contract.error.details = {...contract.error.details, line}
      const pending = onInvalid(contract, line)
      if (pending) await pending
    }
  }

  // Lines are read and checked (UTF-8, size) by the shared NDJSON reader; the validator does the rest.
  for await (const read of readNdjsonLines(options.input, options.limits ?? eventLimits())) {
    const lineNumber = read.line
    const line = read.text
    if (line !== undefined && line.trim().length === 0) continue
    totals.read++
    if (line === undefined) {
      await invalid(read.error, lineNumber)
      continue
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch (error) {
      await invalid(errorContract('INVALID_JSON', `Not JSON: ${(error as Error).message}`), lineNumber)
      continue
    }
    let candidate = parsed
    const draft = parsed as {event_id?: unknown; event_type?: unknown; payload?: unknown; correlation_id?: unknown; causation_id?: unknown}
    if (draft && typeof draft === 'object' && !Array.isArray(draft) && draft.event_id === undefined && typeof draft.event_type === 'string' && draft.payload && typeof draft.payload === 'object') {
      const definition = options.catalog.get(draft.event_type)
      if (!definition) {
        await invalid(errorContract('UNKNOWN_EVENT_TYPE', `Unknown event type "${draft.event_type}" (not in the catalog)`, {event_type: draft.event_type}), lineNumber)
        continue
      }
      try {
        candidate = publisher.draft(definition.type, draft.payload as Record<string, unknown>, {
          ...(typeof draft.correlation_id === 'string' ? {correlationId: draft.correlation_id} : {}),
          ...(typeof draft.causation_id === 'string' ? {causationId: draft.causation_id} : {}),
        })
      } catch (error) {
        await invalid(asContract((error as {toContract?: () => ErrorContract}).toContract?.() ?? error), lineNumber)
        continue
      }
    }
    // The publisher validates (envelope, payload schema, aliases); its rejections come back by index.
    batch.push(candidate as EventEnvelope)
    lines.push(lineNumber)
    if (batch.length >= options.batchSize) await flush()
  }
  await flush()
  return totals
}

export default class Publish extends BaseCommand<typeof Publish> {
  static override summary = 'Publish NDJSON events (one per line) through the store, the outbox and the bus, like `kcat -P`.'
  static override description = `Reads FILE (or stdin when FILE is "-" or absent) line by line and publishes in batches. Each line is either
  - a full envelope (event_id, event_type, event_version, timestamp, source_service, payload, trace_id, correlation_id, causation_id, producer_id, metadata), or
  - a draft: {"event_type": "...", "payload": {...}} with optional "correlation_id" and "causation_id"; tektree fills in the rest of the envelope (new event_id, timestamp, trace, producer, metadata.aggregate_id from the partition key).
Each line is validated against the catalog (envelope and payload schema; aliases accepted). Valid events are appended to the store (idempotent by event_id: a known event_id with the same content counts as a duplicate; with other content it is a conflict, EVENT_ID_CONFLICT, and is not published) and reach the bus through the outbox relay, which is drained before the command exits. Blank lines are skipped.

Each bad line prints its error contract ({"error": {"code", "message", "details"}}, the platform's error format, with details.line) on stderr; with --json, stdout gets one summary {read, published, duplicates, conflicts, invalid, errors} instead.

Runtime: --bus-url / --store-url, else the embedded runtime in .tektree: the store file, and the redis-server of \`tektree up\` (or of another command running in this directory, such as \`tektree services\`), else a redis-server started for this command, whose data stays in .tektree/redis. publish runs no service: events published while no \`tektree services\` runs wait on the bus and in the store until one does, and publish says so. With --in-process the events live only as long as this command and no consumer sees them.

Exit codes: 0 every line published (or a duplicate), 1 a line was invalid, rejected or a conflict, 2 a usage error (no such file, bad catalog, unreachable server).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> events.ndjson',
    'cat events.ndjson | <%= config.bin %> <%= command.id %>',
    `echo '{"event_type":"user.registered","payload":{"user_id":"3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61","username":"ada","email_hash":"sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8","signup_source":"web"}}' | <%= config.bin %> <%= command.id %>`,
    '<%= config.bin %> <%= command.id %> - --json --in-process < events.ndjson',
  ]

  static override args = {
    file: Args.string({description: 'NDJSON file, or "-" for stdin (the default).', required: false, ignoreStdin: true}),
  }

  static override flags = {
    'batch-size': Flags.integer({summary: 'Events per store append / bus publish.', default: 500, min: 1, max: 10_000}),
    'max-errors': Flags.integer({summary: 'With --json: how many error contracts the summary keeps.', default: 100, min: 0}),
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<PublishSummary> {
    const file = this.args.file ?? '-'
    if (file !== '-') {
      const info = await stat(file).catch(() => null)
      if (!info || !info.isFile()) throw new UserError(`No such file: ${file}`, {code: 'FILE_NOT_FOUND', details: {path: file}, hint: 'Give an NDJSON file, or "-" to read stdin.'})
    }
    const json = this.jsonEnabled()
    const [{loadCatalog}, {createPipeline}] = await Promise.all([import('../catalog/load.js'), import('../engine/pipeline.js')])
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntimeFromFlags(this.flags)
    const errors: ErrorContract[] = []
    try {
      const pipeline = createPipeline({runtime, catalog, producerId: `tektree-publish-${hostname()}-${process.pid}`})
      const {publisher} = pipeline
      if (!json && file === '-' && process.stdin.isTTY) process.stderr.write('Reading NDJSON from stdin (Ctrl+D ends)...\n')
      let totals
      const appended: string[] = []
      let left = 0
      try {
        const input = file === '-' ? process.stdin : createReadStream(file, {highWaterMark: 1 << 20})
        totals = await publishNdjson({
          input,
          catalog,
          publisher,
          batchSize: this.flags['batch-size'],
          onAppended: (ids) => appended.push(...ids),
          onInvalid: (error) => {
            if (json) {
              if (errors.length < this.flags['max-errors']) errors.push(error)
              return
            }
            process.stderr.write(`${JSON.stringify(error)}\n`)
          },
        })
      } finally {
        // Its own events on the bus, not the whole outbox: on a store shared with services, others'
        // events (derived ones, another relay's leases) come and go all the time.
        left = await untilPublished(runtime.store, appended, 30_000)
        // Reported below as events left in the outbox (exit 1); the next relay run publishes them.
        if (left > 0) process.stderr.write(`The outbox could not be drained to the bus: ${left} of this command's events are not on it after 30 s\n`)
        await pipeline.stop({drain: false})
      }
      const summary: PublishSummary = {
        source: file,
        ...totals,
        outbox_pending: left,
        runtime: runtime.describe(),
        errors,
      }
      if (!json) {
        const where = summary.runtime.bus.origin === 'in-process' ? ' (in-process: gone when this command ends)' : ` to ${summary.runtime.bus.kind} ${summary.runtime.bus.location}`
        process.stderr.write(
          `${summary.published} published${where}, ${summary.duplicates} duplicate${summary.duplicates === 1 ? '' : 's'}, ` +
            `${summary.conflicts > 0 ? `${summary.conflicts} conflict${summary.conflicts === 1 ? '' : 's'}, ` : ''}${summary.invalid} invalid of ${summary.read} lines` +
            `${summary.outbox_pending > 0 ? `; ${summary.outbox_pending} still in the outbox` : ''}\n`,
        )
      }
      const bus = summary.runtime.bus
      if (!json && summary.published > 0 && (bus.forThisCommand || !(await consumersRunning(runtime.bus)))) {
        // Nothing else was using this bus, so no service saw these events: say where they wait.
        const where = bus.dataDir ? relative(process.cwd(), dirname(bus.dataDir)) || '.' : 'the data dir'
        process.stderr.write(`No services run here: the events wait in ${where} until \`tektree services\` processes them.\n`)
      }
      if (summary.invalid > 0 || summary.conflicts > 0 || summary.outbox_pending > 0) process.exitCode = 1
      return summary
    } finally {
      await runtime.close()
    }
  }
}

/**
 * Waits up to `timeoutMs` until the bus has every event of `eventIds` (the store marks each
 * published); returns how many it still lacks. Only these are this command's to wait for and
 * report: services beside it append derived events, and other relays lease events, all the time.
 */
async function untilPublished(store: Store, eventIds: readonly string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let waiting = eventIds
  for (;;) {
    const still: string[] = []
    for (let i = 0; i < waiting.length; i += 1_000) {
      for (const record of await store.events.records(waiting.slice(i, i + 1_000))) if (record.published_at === null) still.push(record.event.event_id)
    }
    waiting = still
    if (waiting.length === 0 || Date.now() >= deadline) return waiting.length
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Whether any consumer group has a consumer running now (true when the bus cannot say: nothing is claimed then). */
async function consumersRunning(bus: Bus): Promise<boolean> {
  try {
    return (await bus.stats()).some((g) => g.consumers.some((c) => c.live))
  } catch {
    return true
  }
}
