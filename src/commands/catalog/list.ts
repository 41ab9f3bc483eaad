import {BaseCommand, catalogFlag} from '../../cli/base.js'
import {columns, createStyle, truncate, visibleWidth, wrap, type Style} from '../../cli/style.js'
import {formatPeriod} from '../../catalog/duration.js'
import {loadCatalog} from '../../catalog/load.js'
import type {CatalogProblem} from '../../catalog/types.js'

export interface CatalogListEntry {
  type: string
  version: string
  aliases: string[]
  domain: string
  topic: string
  producer: string | null
  consumers: string[]
  retention: {category: string; period: string; storage: string} | null
  partitionKey: string | null
}

export interface CatalogListResult {
  catalog: {source: string; title: string; version: string; asyncapi: string; tektree: boolean}
  events: CatalogListEntry[]
  problems: CatalogProblem[]
}

export default class CatalogList extends BaseCommand<typeof CatalogList> {
  static override summary = 'List the event types of the catalog: version, producer, consumers, retention.'
  static override description = `Reads the TekTree catalog (or the AsyncAPI 3 document given with --catalog) and prints one row per event type. Aliases are shown under their canonical type.

Messages tektree cannot use (an Avro or protobuf payload, a recursive or remote $ref) are listed after the table with the reason; the rest of the catalog stays usable.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --catalog ./streetlights.asyncapi.yaml',
  ]

  static override flags = {catalog: catalogFlag}

  public async run(): Promise<CatalogListResult> {
    const catalog = await loadCatalog(this.flags.catalog)
    const events: CatalogListEntry[] = catalog.events.map((e) => ({
      type: e.type,
      version: e.version,
      aliases: e.aliases,
      domain: e.domain,
      topic: e.topic,
      producer: e.producer,
      consumers: e.consumers.map((c) => c.service),
      retention: e.retention ? {category: e.retention.category, period: formatPeriod(e.retention.maxAgeMs), storage: e.retention.storage} : null,
      partitionKey: e.partitionKey,
    }))
    const problems = catalog.problems ?? []
    const result: CatalogListResult = {
      catalog: {source: catalog.source, title: catalog.title, version: catalog.version, asyncapi: catalog.asyncapi, tektree: catalog.tektree},
      events,
      problems,
    }
    if (!this.jsonEnabled()) for (const line of renderCatalogList(result, createStyle())) this.log(line)
    return result
  }
}

/**
 * One row per type with its consumers when the width allows; otherwise the consumers go on an
 * indented line under their type (as aliases always do), so no line is wider than the terminal (or
 * 80 columns when not a terminal).
 */
export function renderCatalogList(result: CatalogListResult, style: Style): string[] {
  const {catalog, events, problems} = result
  // The retention category is the type's domain in TekTree's catalog: name it only when it is not.
  const retention = (e: CatalogListEntry) => (e.retention ? (e.retention.category === e.domain ? e.retention.period : `${e.retention.category} ${e.retention.period}`) : '-')
  const head = ['type', 'version', 'producer', 'retention']
  const base = (e: CatalogListEntry) => [e.type, e.version, e.producer ?? '-', retention(e)]
  const lines = wrap(`${catalog.title} ${catalog.version} (AsyncAPI ${catalog.asyncapi}${catalog.tektree ? '' : ', no x-tektree'}): ${events.length} event types`, style.width, '  ')
  const wide = columns([[...head, 'consumers'], ...events.map((e) => [...base(e), e.consumers.join(', ') || '-'])])
  const fits = wide.every((l) => visibleWidth(l) <= style.width)
  const table = fits ? wide : columns([head, ...events.map(base)]).map((l) => truncate(l, style.width))
  lines.push(style.bold(table[0]))
  events.forEach((e, i) => {
    lines.push(table[i + 1])
    if (e.aliases.length > 0) lines.push(...wrap(`alias ${e.aliases.join(', ')}`, style.width, '    ', '  ').map(style.dim))
    if (!fits) lines.push(...wrap(`consumed by ${e.consumers.join(', ') || 'no service'}`, style.width, '    ', '  ').map(style.dim))
  })
  for (const p of problems) lines.push(...wrap(`skipped ${p.type} [${p.code}]: ${p.message}`, style.width, '  '))
  return lines
}
