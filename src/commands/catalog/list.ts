import {makeTable} from '../../catalog/render.js'
import {BaseCommand, catalogFlag} from '../../cli/base.js'
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
    if (!this.jsonEnabled()) {
      const table = makeTable(['type', 'version', 'producer', 'consumers', 'retention'])
      for (const e of events) {
        const type = e.aliases.length > 0 ? `${e.type}\n  (alias ${e.aliases.join(', ')})` : e.type
        table.push([type, e.version, e.producer ?? '-', e.consumers.join(', ') || '-', e.retention ? `${e.retention.category} (${e.retention.period})` : '-'])
      }
      this.log(`${catalog.title} ${catalog.version} (AsyncAPI ${catalog.asyncapi}${catalog.tektree ? '' : ', no x-tektree'}): ${events.length} event types`)
      this.log(table.toString())
      for (const p of problems) this.log(`skipped ${p.type} [${p.code}]: ${p.message}`)
    }
    return {catalog: {source: catalog.source, title: catalog.title, version: catalog.version, asyncapi: catalog.asyncapi, tektree: catalog.tektree}, events, problems}
  }
}
