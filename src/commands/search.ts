import {Args, Flags} from '@oclif/core'
import {BaseCommand, runtimeFlags, UserError} from '../cli/base.js'
import {createStyle, wrap} from '../cli/style.js'
import {openRuntimeFromFlags} from '../cli/runtime-flags.js'
import {printable} from '../core/redact.js'
import type {SearchHit} from '../services/search/index.js'

export default class Search extends BaseCommand<typeof Search> {
  static override summary = "Query the search service's index of questions, insights, discussions, resources, areas and users."
  static override description = `Matches the query's words against the indexed titles, tags and text (what the search service built from the events), best first.

The index is empty until the services have handled some events: the examples find what \`tektree demo engagement\` and \`tektree demo achievement\` index.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> "consumer groups"',
    '<%= config.bin %> <%= command.id %> idempotent --kind question --limit 5',
    '<%= config.bin %> <%= command.id %> redis --json',
  ]
  static override args = {
    query: Args.string({description: 'Words to look for.', required: true, ignoreStdin: true}),
  }
  static override flags = {
    kind: Flags.string({summary: 'Only this kind of document.', options: ['question', 'insight', 'discussion', 'resource', 'area', 'user']}),
    limit: Flags.integer({summary: 'Most results.', default: 10, min: 1, max: 1000}),
    ...runtimeFlags,
  }

  public async run(): Promise<{query: string; hits: SearchHit[]; indexed: number}> {
    const {searchDocuments, tokenize, DOCUMENTS} = await import('../services/search/index.js')
    if (tokenize(this.args.query).length === 0) {
      throw new UserError(`"${this.args.query}" has no words to search for`, {code: 'EMPTY_QUERY', hint: 'Use words of two or more letters.', exitCode: 2})
    }
    const runtime = await openRuntimeFromFlags(this.flags)
    try {
      const indexed = await runtime.store.projections.count(DOCUMENTS)
      const hits = await searchDocuments(runtime.store.projections, this.args.query, {limit: this.flags.limit, kind: this.flags.kind})
      if (!this.jsonEnabled()) {
        const style = createStyle()
        const say = (text: string) => {
          for (const line of wrap(text, style.width)) this.log(line)
        }
        if (indexed === 0) {
          say('The search index is empty: run the services on some events first (tektree simulate, or tektree services with tektree publish).')
        } else if (hits.length === 0) {
          say(`No match for "${this.args.query}" among ${indexed} indexed documents.`)
        } else {
          // One block per hit: a title beside a 36-character id leaves the title no room at 80.
          const pad = Math.max(...hits.map((h) => h.kind.length)) + 2
          for (const hit of hits) {
            // Titles and ids come from the events' payloads (anyone's content): control characters escaped.
            for (const line of wrap(printable(hit.title || '(no title)'), style.width, ' '.repeat(pad), style.bold(printable(hit.kind).padEnd(pad)))) this.log(line)
            for (const line of wrap(printable(`${hit.id}  score ${hit.score}, matched: ${hit.matched.join(' ')}`), style.width, ' '.repeat(pad + 2), ' '.repeat(pad))) this.log(style.dim(line))
          }
        }
      }
      return {query: this.args.query, hits, indexed}
    } finally {
      await runtime.close()
    }
  }
}
