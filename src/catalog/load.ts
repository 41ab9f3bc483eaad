/**
 * Loads an AsyncAPI 3.x document (YAML or JSON; a file or "-" for stdin) into the Catalog model.
 *
 * - Local and relative-file $refs are dereferenced; allOf/oneOf stay as JSON Schema.
 * - Remote (http/https) $refs are never fetched (tektree runs offline): REMOTE_REF.
 * - A message tektree cannot use (a non-JSON-Schema payload such as Avro or protobuf, a recursive
 *   payload schema, a remote $ref inside it) does NOT fail the whole document: it is left out of
 *   `events` and listed in `catalog.problems`; using that type (`requireEvent`, the validator,
 *   `catalog show`) fails with the problem's code. A third-party catalog stays usable for the rest.
 * - A document without x-tektree loads too: type = message name (or its key), topic = channel address.
 */
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import $RefParser from '@apidevtools/json-schema-ref-parser'
import {UserError} from '../errors.js'
import {closest} from '../core/suggest.js'
import {valueTooDeep} from '../core/limits.js'
import type {TopicSpec} from '../core/ports.js'
import {retentionMs} from './duration.js'
import type {Catalog, CatalogConsumer, CatalogEvent, CatalogProblem, JsonSchema, RetentionPolicy} from './types.js'

type Obj = Record<string, unknown>

const REMOTE_SENTINEL = 'x-tektree-remote-ref'

/** The TekTree catalog shipped with tektree; resolved from this file so it works from src/ and dist/. */
export function defaultCatalogPath(): string {
  return fileURLToPath(new URL('../../fixtures/catalog/tektree.asyncapi.yaml', import.meta.url))
}

export interface LoadOptions {
  /** Where "-" reads from (default process.stdin). */
  stdin?: NodeJS.ReadableStream
}

export async function loadCatalog(file?: string, options: LoadOptions = {}): Promise<Catalog> {
  const source = file === '-' ? '-' : path.resolve(file ?? defaultCatalogPath())
  if (source === '-') return loadCatalogFromText(await readAll(options.stdin ?? process.stdin), '-')
  // Checked before any parser recurses into it (missing files are reported below).
  const raw = await readFile(source, 'utf8').catch(() => null)
  if (raw !== null && mayNestDeeper(raw, MAX_CATALOG_DEPTH)) throw tooDeep(source)
  let doc: unknown
  try {
    // json-schema-ref-parser's reader (js-yaml, JSON schema) is several times faster than `yaml` on a
    // large catalog and is what reads referenced files anyway; `yaml` is only used to place an error.
    doc = await $RefParser.parse(source, {resolve: {http: false}} as any)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ((error as {ioErrorCode?: string}).ioErrorCode)
    const message = String((error as Error).message ?? '')
    if (code === 'ENOENT' || code === 'ENOTDIR' || /ENOENT|no such file/i.test(message)) {
      throw new UserError(`Catalog not found: ${source}`, {
        code: 'CATALOG_NOT_FOUND',
        details: {path: source},
        hint: file ? 'Check the path given to --catalog (or TEKTREE_CATALOG).' : 'The TekTree catalog is missing from this installation of tektree; reinstall it or pass --catalog FILE.',
      })
    }
    if (code === 'EISDIR' || /EISDIR|is a directory/i.test(message)) throw new UserError(`Catalog path is a directory: ${source}`, {code: 'CATALOG_NOT_FOUND', details: {path: source}})
    let text: string
    try {
      text = await readFile(source, 'utf8')
    } catch {
      throw error
    }
    return loadCatalogFromText(text, source) // throws CATALOG_PARSE_ERROR with line and column
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return loadCatalogFromText(await readFile(source, 'utf8'), source)
  // The catalog shipped with tektree is checked against the meta-schema by its tests, not here:
  // ajv is the slowest import of all, and `catalog list` should start at once.
  return loadDocument(doc as Obj, source, {trusted: file === undefined})
}

/** The same as loadCatalog for a document already in memory; `source` names it in messages and resolves relative $refs. */
export async function loadCatalogFromText(text: string, source: string): Promise<Catalog> {
  return loadDocument(await parseText(text, source), source)
}

/** Deeper than any real catalog, and shallow enough for every recursive step below (dereferencing, ajv). */
const MAX_CATALOG_DEPTH = 256

/** The YAML parser recurses: a document nested thousands deep overflows the stack while being read. */
function tooDeepToRead(error: unknown, source: string): unknown {
  if (!(error instanceof RangeError) || !/call stack/i.test(error.message)) return error
  return tooDeep(source)
}

const tooDeep = (source: string) =>
  new UserError(`Cannot parse the catalog ${source}: it is nested too deeply to read`, {
    code: 'CATALOG_PARSE_ERROR',
    details: {path: source},
    hint: `A catalog nests a few dozen levels at most; this one goes deeper than ${MAX_CATALOG_DEPTH}.`,
  })

/**
 * Whether the text may nest deeper than `limit` before any parser recurses into it: flow brackets
 * ([ and {) still open, block sequence dashes on one line ("- - - 1"), or an indentation of more
 * than `limit` spaces. An over-estimate (brackets inside strings count too) of what would overflow
 * the parsers' stacks; a stack overflow is not something to count on catching.
 */
export function mayNestDeeper(text: string, limit: number): boolean {
  let open = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x5b || c === 0x7b) {
      if (++open > limit) return true
    } else if ((c === 0x5d || c === 0x7d) && open > 0) open--
  }
  let dashes = 0
  let indent = 0
  let lineStart = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x0a) {
      lineStart = true
      indent = 0
      dashes = 0
    } else if (c === 0x20 && lineStart) {
      if (++indent > limit) return true
    } else if (c === 0x2d && (text.charCodeAt(i + 1) === 0x20 || text.charCodeAt(i + 1) === 0x0a)) {
      if (++dashes > limit) return true
      lineStart = false
    } else if (c !== 0x20) {
      lineStart = false
      if (dashes > 0 && c !== 0x2d) dashes = 0
    }
  }
  return false
}

async function loadDocument(doc: Obj, source: string, options: {trusted?: boolean} = {}): Promise<Catalog> {
  checkAsyncApi(doc, source)
  const deep = valueTooDeep(doc, MAX_CATALOG_DEPTH)
  if (deep) {
    throw new UserError(`${source} is nested more than ${MAX_CATALOG_DEPTH} levels deep at ${deep.path.length > 80 ? `${deep.path.slice(0, 60)}...` : deep.path}`, {
      code: 'CATALOG_INVALID',
      details: {path: source, at: deep.path, limit: MAX_CATALOG_DEPTH},
    })
  }
  // The $ref resolver would throw on such a key (encodeURIComponent) after starting file reads it
  // then never awaits: they would fail later as unhandled rejections (found by the fuzz pass).
  const broken = brokenKey(doc)
  if (broken !== null) {
    throw new UserError(`${source} has a key that is not valid text (a lone UTF-16 surrogate) at ${broken.length > 80 ? `${broken.slice(0, 60)}...` : broken}`, {
      code: 'CATALOG_INVALID',
      details: {path: source, at: broken},
      hint: 'Fix or remove that key: keys must be whole characters (a damaged copy or a stray \\uD800-\\uDFFF escape leaves half of one).',
    })
  }
  const remoteRefs = replaceRemoteRefs(doc)
  const pointers = messagePointers(doc)
  const circular: string[] = []
  const base = source === '-' ? path.join(process.cwd(), 'stdin.yaml') : source
  let deref: Obj
  try {
    deref = (await $RefParser.dereference(base, doc as any, {
      resolve: {
        http: false,
        // Remote refs inside referenced files: refuse rather than reach the network.
        remote: {
          order: 0,
          canRead: /^https?:\/\//i,
          read(file: {url: string}) {
            throw new UserError(`Remote $ref "${file.url}" is not supported: tektree does not fetch schemas over the network.`, {
              code: 'REMOTE_REF',
              details: {ref: file.url},
              hint: 'Download the schema next to the catalog and refer to it by a relative path.',
            })
          },
        },
      } as any,
      dereference: {circular: 'ignore', onCircular: (p: string) => circular.push(p)},
    })) as Obj
  } catch (error) {
    throw refError(error, source)
  }
  const schemaError = options.trusted ? () => null : await schemaChecker()
  return buildCatalog(deref, source, pointers, circular, remoteRefs, schemaError)
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** The path of the first object key holding a lone surrogate, else null (iterative: depth is bounded before). */
function brokenKey(doc: unknown): string | null {
  const stack: Array<{value: unknown; path: string}> = [{value: doc, path: '#'}]
  const seen = new Set<object>()
  while (stack.length > 0) {
    const {value, path: at} = stack.pop()!
    if (value === null || typeof value !== 'object' || seen.has(value)) continue
    seen.add(value)
    for (const [key, child] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return JSON.stringify(`${at}/${key}`).slice(1, -1)
      if (child !== null && typeof child === 'object') stack.push({value: child, path: `${at}/${key}`})
    }
  }
  return null
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * YAML 1.2 is a superset of JSON, so one parser gives line and column for both. `yaml` is imported
 * here, not at the top: the usual path (a file) never needs it, and `catalog list` starts faster.
 */
async function parseText(text: string, source: string): Promise<Obj> {
  if (mayNestDeeper(text, MAX_CATALOG_DEPTH)) throw tooDeep(source)
  const {parseDocument} = await import('yaml')
  let parsed: ReturnType<typeof parseDocument>
  try {
    parsed = parseDocument(text, {prettyErrors: true, uniqueKeys: true})
  } catch (error) {
    throw tooDeepToRead(error, source)
  }
  if (parsed.errors.length > 0) {
    const first = parsed.errors[0]
    const pos = first.linePos?.[0]
    const where = pos ? `${source === '-' ? '<stdin>' : source}:${pos.line}:${pos.col}` : source
    const raw = first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
    // The parser recurses: it reports its own stack overflow as an error at the deepest point.
    const reason = /call stack/i.test(raw) ? 'nested too deeply to read' : raw
    throw new UserError(`Cannot parse the catalog at ${where}: ${reason}`, {
      code: 'CATALOG_PARSE_ERROR',
      details: {path: source, line: pos?.line ?? null, column: pos?.col ?? null},
    })
  }
  let value: unknown
  try {
    value = parsed.toJS({maxAliasCount: 1000})
  } catch (error) {
    // The parser accepts an alias whose anchor comes later (or too many aliases) and only building
    // the value finds out: a ReferenceError, the document's fault, not tektree's.
    if (error instanceof ReferenceError) {
      throw new UserError(`Cannot parse the catalog ${source}: ${error.message.split('\n')[0]}`, {code: 'CATALOG_PARSE_ERROR', details: {path: source}})
    }
    throw tooDeepToRead(error, source)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UserError(`${source} is not an AsyncAPI document: found ${value === null ? 'an empty document' : Array.isArray(value) ? 'a list' : `a ${typeof value}`}.`, {
      code: 'CATALOG_INVALID',
      details: {path: source},
    })
  }
  return value as Obj
}

function checkAsyncApi(doc: Obj, source: string): void {
  const version = doc.asyncapi
  if (typeof version === 'string' && /^3\.\d+\.\d+/.test(version)) return
  const found =
    version !== undefined
      ? `asyncapi: ${JSON.stringify(version)}`
      : typeof doc.openapi === 'string'
        ? `an OpenAPI ${doc.openapi} document`
        : typeof doc.swagger === 'string'
          ? `a Swagger ${doc.swagger} document`
          : `no "asyncapi" field (top-level keys: ${Object.keys(doc).slice(0, 6).join(', ') || 'none'})`
  throw new UserError(`${source} is not an AsyncAPI 3.x document: found ${found}.`, {
    code: 'CATALOG_INVALID',
    details: {path: source, asyncapi: version ?? null},
    hint: typeof version === 'string' && version.startsWith('2.') ? 'Convert it first: `npx @asyncapi/cli convert FILE --target-version=3.0.0`.' : undefined,
  })
}

/** Swaps every remote $ref in the main document for a marker, so only the messages using one fail. */
function replaceRemoteRefs(doc: Obj): Map<Obj, string> {
  const found = new Map<Obj, string>()
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return
    if (Array.isArray(node)) {
      for (const item of node) walk(item)
      return
    }
    const obj = node as Obj
    if (typeof obj.$ref === 'string' && /^https?:\/\//i.test(obj.$ref)) {
      const ref = obj.$ref
      delete obj.$ref
      obj[REMOTE_SENTINEL] = ref
      found.set(obj, ref)
      return
    }
    for (const key of Object.keys(obj)) walk(obj[key])
  }
  walk(doc)
  return found
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~')
}

/** Where each channel's messages are defined, read before dereferencing erases the $refs. */
function messagePointers(doc: Obj): Map<string, string> {
  const pointers = new Map<string, string>()
  const channels = asObj(doc.channels)
  for (const [channelKey, channel] of Object.entries(channels)) {
    const messages = asObj(asObj(channel).messages)
    for (const [messageKey, message] of Object.entries(messages)) {
      const ref = asObj(message).$ref
      const own = `#/channels/${escapePointer(channelKey)}/messages/${escapePointer(messageKey)}`
      pointers.set(own, typeof ref === 'string' && ref.startsWith('#') ? ref : own)
    }
  }
  return pointers
}

function refError(error: unknown, source: string): unknown {
  if (error instanceof UserError) return error
  const err = error as Error & {source?: string; path?: string; code?: string}
  const message = String(err?.message ?? error)
  const remote = /(https?:\/\/[^\s"']+)/i.exec(message)
  if (remote) {
    return new UserError(`Remote $ref "${remote[1]}" is not supported: tektree does not fetch schemas over the network.`, {
      code: 'REMOTE_REF',
      details: {ref: remote[1], path: source},
      hint: 'Download the schema next to the catalog and refer to it by a relative path.',
    })
  }
  if (err?.name === 'ResolverError' || err?.name === 'MissingPointerError' || err?.name === 'ParserError' || err?.name === 'InvalidPointerError') {
    return new UserError(`Cannot resolve a $ref in ${source}: ${message}`, {code: 'REF_NOT_FOUND', details: {path: source}, cause: error})
  }
  const deep = tooDeepToRead(error, source)
  if (deep !== error) return deep
  // The resolver trips over some malformed documents with a TypeError (a $ref through null, a $ref
  // that is not a string) or a URIError (a key holding a lone surrogate): still a fault of the
  // document, which is all it was working on.
  if (error instanceof TypeError || error instanceof URIError) {
    return new UserError(`Cannot resolve the $refs of ${source}: a $ref is malformed or leads through a value that is not an object (${message})`, {
      code: 'REF_INVALID',
      details: {path: source},
      hint: 'Each $ref must be a string such as "#/components/schemas/Name", pointing into objects that exist.',
      cause: error,
    })
  }
  return error
}

function asObj(value: unknown): Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Obj) : {}
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

/** JSON Schema flavours AsyncAPI 3 allows for payloads (the AsyncAPI schema is a JSON Schema superset). */
function isJsonSchemaFormat(format: string): boolean {
  const f = format.toLowerCase().replace(/\s+/g, '')
  return f.startsWith('application/vnd.aai.asyncapi') || f.startsWith('application/schema+json') || f.startsWith('application/schema+yaml')
}

interface RawEvent {
  type: string
  pointer: string
  topic: string
  message: Obj
  partitions?: number
  /** The $refs of a message that only refers (in the end) back to itself. */
  cycle?: string[]
}

function buildCatalog(doc: Obj, source: string, pointers: Map<string, string>, circular: string[], remoteRefs: Map<Obj, string>, schemaError: SchemaCheck): Catalog {
  const info = asObj(doc.info)
  const docExt = doc['x-tektree'] === undefined ? null : asObj(doc['x-tektree'])
  const tektree = docExt !== null
  const retentionTable = asObj(docExt?.retention)
  const defaultPartitions = positiveInt(docExt?.partitions) ?? 1

  // Channel messages first (they carry the topic), then component messages no channel names.
  const raws: RawEvent[] = []
  const seenPointers = new Set<string>()
  for (const [channelKey, channelValue] of Object.entries(asObj(doc.channels))) {
    const channel = asObj(follow(doc, channelValue))
    const topic = asString(channel.address) ?? channelKey
    const partitions = positiveInt(asObj(asObj(channel.bindings).kafka).partitions) ?? positiveInt(asObj(channel['x-tektree']).partitions)
    for (const [messageKey, messageValue] of Object.entries(asObj(channel.messages))) {
      const own = `#/channels/${escapePointer(channelKey)}/messages/${escapePointer(messageKey)}`
      const pointer = pointers.get(own) ?? own
      seenPointers.add(pointer)
      const followed = followRefs(doc, messageValue, own)
      const message = asObj(followed.value)
      const componentKey = pointer.startsWith('#/components/messages/') ? unescapePointer(pointer.slice('#/components/messages/'.length)) : undefined
      const type = asString(message.name) ?? componentKey ?? asString(messageKey) ?? topic
      raws.push({type, pointer, topic, message, partitions, ...(followed.cycle ? {cycle: followed.cycle} : {})})
    }
  }
  for (const [key, value] of Object.entries(asObj(asObj(doc.components).messages))) {
    const pointer = `#/components/messages/${escapePointer(key)}`
    if (seenPointers.has(pointer)) continue
    const followed = followRefs(doc, value, pointer)
    const message = asObj(followed.value)
    const ext = asObj(message['x-tektree'])
    const domain = asString(ext.domain)
    // A message on no channel is only an event when x-tektree says where it travels.
    if (!tektree || !domain) continue
    const prefix = asString(docExt?.['topic-prefix'])
    raws.push({type: asString(message.name) ?? key, pointer, topic: prefix ? `${prefix}.${domain}` : domain, message, ...(followed.cycle ? {cycle: followed.cycle} : {})})
  }

  const events: CatalogEvent[] = []
  const problems: CatalogProblem[] = []
  const byName = new Map<string, CatalogEvent>()
  const problemTypes = new Set<string>()
  for (const raw of raws) {
    if (byName.has(raw.type) || problemTypes.has(raw.type)) continue // the same message on two channels: first wins
    const result = toEvent(raw, {info, docExt, retentionTable, source, circular, remoteRefs, partitions: raw.partitions ?? defaultPartitions, schemaError})
    if ('problem' in result) {
      problems.push(result.problem)
      problemTypes.add(raw.type)
      continue
    }
    events.push(result.event)
    byName.set(result.event.type, result.event)
  }
  for (const event of events) {
    for (const alias of event.aliases) if (!byName.has(alias)) byName.set(alias, event)
  }
  const partitionsByTopic = new Map<string, number>()
  for (const raw of raws) if (!partitionsByTopic.has(raw.topic)) partitionsByTopic.set(raw.topic, raw.partitions ?? defaultPartitions)

  return {
    source,
    title: asString(info.title) ?? (source === '-' ? '<stdin>' : path.basename(source)),
    version: asString(info.version) ?? '0.0.0',
    asyncapi: String(doc.asyncapi),
    tektree,
    events,
    problems,
    get: (typeOrAlias: string) => byName.get(typeOrAlias),
    topics: () => topicSpecs(events, partitionsByTopic),
  }
}

/**
 * Dereferencing with circular: 'ignore' leaves a $ref in place on every path that leads into a cycle
 * (the channel's message ref included); follow local ones so the message itself is still read.
 */
function follow(doc: Obj, value: unknown): unknown {
  return followRefs(doc, value).value
}

/**
 * Follows a chain of local $refs to what it names. `cycle` is the chain when it comes back to a ref
 * already followed (a message or channel that is, in the end, only a reference to itself).
 */
function followRefs(doc: Obj, value: unknown, start?: string): {value: unknown; cycle: string[] | null} {
  let current = value
  const chain: string[] = start ? [start] : []
  for (let hops = 0; hops < 64; hops++) {
    const ref = asObj(current).$ref
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return {value: current, cycle: null}
    if (chain.includes(ref)) return {value: current, cycle: [...chain, ref]}
    chain.push(ref)
    let target: unknown = doc
    for (const token of ref.slice(2).split('/')) target = asObj(target)[unescapePointer(decodeToken(token))]
    if (target === undefined) return {value: current, cycle: null}
    current = target
  }
  return {value: current, cycle: chain}
}

/** A JSON pointer token as written in a URI fragment; a stray '%' is taken literally. */
function decodeToken(token: string): string {
  try {
    return decodeURIComponent(token)
  } catch {
    return token
  }
}

/** Envelopes carry a semver: "1.0" reads as 1.0.0, "v2" as 2.0.0, anything else as 0.0.0. */
function semver(version: string | undefined): string {
  if (!version) return '0.0.0'
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?$/.exec(version.trim())
  return match ? `${match[1]}.${match[2] ?? 0}.${match[3] ?? 0}${match[4] ?? ''}` : '0.0.0'
}

function positiveInt(value: unknown): number | undefined {
  const n = Number(value)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

interface BuildContext {
  info: Obj
  docExt: Obj | null
  retentionTable: Obj
  source: string
  circular: string[]
  remoteRefs: Map<Obj, string>
  partitions: number
  schemaError: SchemaCheck
}

function toEvent(raw: RawEvent, ctx: BuildContext): {event: CatalogEvent} | {problem: CatalogProblem} {
  const {message, type, pointer} = raw
  const problem = (code: string, text: string, hint?: string) => ({problem: {type, pointer, code, message: text, ...(hint ? {hint} : {})}})
  if (raw.cycle) {
    return problem(
      'REF_CYCLE',
      `Message "${type}" is a $ref cycle with no message in it: ${raw.cycle.join(' -> ')}.`,
      'Point the $ref at a message with a payload (usually #/components/messages/NAME holding the message itself).',
    )
  }

  let payload: unknown = message.payload
  const payloadObj = asObj(payload)
  const format = asString(payloadObj.schemaFormat) ?? asString(message.schemaFormat)
  if (format && !isJsonSchemaFormat(format)) {
    return problem(
      'UNSUPPORTED_SCHEMA_FORMAT',
      `Message "${type}" has a payload in ${format}; tektree validates and generates JSON Schema payloads only.`,
      'Describe the payload with a JSON Schema (AsyncAPI schema) to use this event with tektree.',
    )
  }
  if (asString(payloadObj.schemaFormat) && 'schema' in payloadObj) payload = payloadObj.schema
  if (payload === undefined || payload === null) payload = {type: 'object'}
  if (typeof payload !== 'object' || Array.isArray(payload)) return problem('UNSUPPORTED_PAYLOAD', `Message "${type}" has a payload that is not a schema object.`)

  const leftover = findLeftover(payload as Obj, ctx.remoteRefs)
  if (leftover?.kind === 'remote') {
    return problem('REMOTE_REF', `Message "${type}" uses the remote $ref "${leftover.ref}"; tektree does not fetch schemas over the network.`, 'Download the schema next to the catalog and refer to it by a relative path.')
  }
  if (leftover?.kind === 'ref') {
    const target = leftover.ref
    const at = ctx.circular.find((p) => p.includes(target.startsWith('#') ? `${target}/` : target)) ?? ctx.circular.find((p) => p.endsWith(leftover.ref))
    return problem(
      'REF_CYCLE',
      `Message "${type}" has a recursive payload schema: $ref "${target}" refers back to itself${at ? ` (at ${at.replace(/^.*#/, '#')})` : ''}. tektree needs a finite payload schema.`,
      'Bound the recursion (e.g. a fixed depth of nested objects) or type the recursive field as a plain object.',
    )
  }
  const schema = payload as JsonSchema
  const invalid = ctx.schemaError(schema)
  if (invalid) {
    return problem('INVALID_SCHEMA', `Message "${type}" has a payload that is not a valid JSON Schema: ${invalid}.`, 'Fix the schema (draft-07 / the AsyncAPI schema object); e.g. allOf takes a list of schemas, required a list of names.')
  }
  const declared = schema.type
  if (declared !== undefined && declared !== 'object' && !(Array.isArray(declared) && declared.includes('object'))) {
    return problem('UNSUPPORTED_PAYLOAD', `Message "${type}" has a payload of type ${JSON.stringify(declared)}; a TekTree envelope carries an object payload.`)
  }

  const ext = message['x-tektree'] === undefined ? null : asObj(message['x-tektree'])
  let retention: RetentionPolicy | null = null
  const category = asString(ext?.retention)
  if (category) {
    const entry = ctx.retentionTable[category]
    if (entry === undefined) {
      throw new UserError(`Message "${type}" names retention category "${category}", which x-tektree.retention does not define (it has: ${Object.keys(ctx.retentionTable).join(', ') || 'none'}).`, {
        code: 'CATALOG_INVALID',
        details: {path: ctx.source, pointer},
      })
    }
    const policy = asObj(entry)
    const maxAgeMs = retentionMs(policy.period)
    if (maxAgeMs === undefined) {
      throw new UserError(`Retention category "${category}" has period ${JSON.stringify(policy.period)}, which is neither "indefinite" nor an ISO-8601 duration such as P7D.`, {
        code: 'CATALOG_INVALID',
        details: {path: ctx.source, category},
      })
    }
    retention = {category, maxAgeMs, storage: asString(policy.storage) ?? 'event-store'}
  }

  const consumers: CatalogConsumer[] = Array.isArray(ext?.consumers)
    ? (ext!.consumers as unknown[]).map((c) => {
        const consumer = asObj(c)
        return {
          service: String(consumer.service ?? ''),
          effects: (Array.isArray(consumer.effects) ? consumer.effects : []).map((e) => {
            const effect = asObj(e)
            return {action: String(effect.action ?? ''), description: String(effect.description ?? ''), params: asObj(effect.params)}
          }),
        }
      })
    : []

  return {
    event: {
      type,
      aliases: Array.isArray(ext?.aliases) ? (ext!.aliases as unknown[]).map(String).filter((a) => a !== type) : [],
      version: semver(asString(ext?.version) ?? asString(ctx.info.version)),
      domain: asString(ext?.domain) ?? type.split(/[./]/)[0],
      summary: asString(message.summary) ?? asString(message.title) ?? asString(message.description) ?? '',
      producer: asString(ext?.producer) ?? null,
      consumers,
      retention,
      partitionKey: asString(ext?.['partition-key']) ?? null,
      topic: raw.topic,
      payloadSchema: schema,
      pointer,
    },
  }
}

/** Where a payload schema is not a usable JSON Schema, or null. */
type SchemaCheck = (schema: JsonSchema) => string | null

/**
 * Where a payload schema breaks the JSON Schema meta-schema (allOf that is not a list, a type that is
 * no type name...), or a pattern does not compile. Checked at load, so the validator and the example
 * generator only ever see well-formed schemas.
 */
async function schemaChecker(): Promise<SchemaCheck> {
  const {createAjv, toJsonPath} = await import('./validate.js')
  const ajv = createAjv()
  return (schema) => {
    let ok: boolean
    try {
      ok = ajv.validateSchema(schema) as boolean
    } catch (error) {
      return (error as Error).message
    }
    if (ok) return badPattern(schema)
    const first = ajv.errors?.[0]
    return first ? `${toJsonPath('$', first.instancePath)} ${first.message ?? 'is invalid'}` : 'it does not match the meta-schema'
  }
}

/** The meta-schema does not check that a pattern compiles; ajv (unicode mode) and the generator need it to. */
function badPattern(schema: JsonSchema): string | null {
  const seen = new Set<object>()
  const stack: Array<{node: unknown; path: string}> = [{node: schema, path: '$'}]
  while (stack.length > 0) {
    const {node, path} = stack.pop()!
    if (node === null || typeof node !== 'object' || seen.has(node)) continue
    seen.add(node)
    const obj = node as Obj
    const patterns = [
      ...(typeof obj.pattern === 'string' ? [obj.pattern] : []),
      ...(obj.patternProperties && typeof obj.patternProperties === 'object' ? Object.keys(obj.patternProperties) : []),
    ]
    for (const pattern of patterns) {
      try {
        // V8 compiles a regular expression on first use: "too large" only shows then.
        new RegExp(pattern, 'u').test('')
      } catch (error) {
        return `${path}.pattern is not a valid regular expression: ${(error as Error).message.slice(0, 200)}`
      }
    }
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'const' || key === 'enum' || key === 'examples' || key === 'example' || key === 'default') continue
      stack.push({node: value, path: Array.isArray(node) ? `${path}[${key}]` : `${path}.${key}`})
    }
  }
  return null
}

/** A $ref still present after dereferencing is a cycle (circular: 'ignore' leaves them); the marker is a remote ref. */
function findLeftover(root: Obj, remoteRefs: Map<Obj, string>): {kind: 'ref' | 'remote'; ref: string} | null {
  const visited = new Set<object>()
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (node === null || typeof node !== 'object' || visited.has(node)) continue
    visited.add(node)
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item)
      continue
    }
    const obj = node as Obj
    if (typeof obj[REMOTE_SENTINEL] === 'string') return {kind: 'remote', ref: remoteRefs.get(obj) ?? String(obj[REMOTE_SENTINEL])}
    if (typeof obj.$ref === 'string') return {kind: 'ref', ref: obj.$ref}
    for (const key of Object.keys(obj)) {
      // const/enum/examples/default hold data, not schemas: a "$ref" key there is a value.
      if (key === 'const' || key === 'enum' || key === 'examples' || key === 'example' || key === 'default') continue
      stack.push(obj[key])
    }
  }
  return null
}

function topicSpecs(events: CatalogEvent[], partitionsByTopic: Map<string, number>): TopicSpec[] {
  const specs = new Map<string, {partitions: number; maxAgeMs: number | null | undefined}>()
  for (const event of events) {
    const spec = specs.get(event.topic) ?? {partitions: partitionsByTopic.get(event.topic) ?? 1, maxAgeMs: undefined}
    // The longest retention of the topic's events wins (indefinite beats any period), so no event is trimmed early.
    const age = event.retention ? event.retention.maxAgeMs : null
    spec.maxAgeMs = spec.maxAgeMs === undefined ? age : spec.maxAgeMs === null || age === null ? null : Math.max(spec.maxAgeMs, age)
    specs.set(event.topic, spec)
  }
  return [...specs].map(([name, spec]) => ({name, partitions: spec.partitions, ...(typeof spec.maxAgeMs === 'number' ? {retention: {maxAgeMs: spec.maxAgeMs}} : {})}))
}

/** The closest known names (types and aliases) to a misspelt one, best first. */
export function suggestTypes(catalog: Catalog, name: string, limit = 3): string[] {
  const names = new Set<string>()
  for (const event of catalog.events) {
    names.add(event.type)
    for (const alias of event.aliases) names.add(alias)
  }
  return closest(name, names, {limit, substrings: true, maxDistance: Math.max(3, Math.floor(name.length / 3))})
}

/** The event for a type or alias, or a UserError: the problem it has, or the closest names. */
export function requireEvent(catalog: Catalog, typeOrAlias: string): CatalogEvent {
  const event = catalog.get(typeOrAlias)
  if (event) return event
  const problem = catalog.problems?.find((p) => p.type === typeOrAlias)
  if (problem) throw new UserError(problem.message, {code: problem.code, hint: problem.hint, details: {type: problem.type, pointer: problem.pointer}})
  const suggestions = suggestTypes(catalog, typeOrAlias)
  throw new UserError(`Unknown event type "${typeOrAlias}" in ${catalog.title}.`, {
    code: 'UNKNOWN_EVENT_TYPE',
    details: {type: typeOrAlias, suggestions},
    hint: suggestions.length > 0 ? `Did you mean: ${suggestions.join(', ')}?` : 'List the types with `tektree catalog list`.',
  })
}
