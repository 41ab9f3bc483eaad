/**
 * Search: indexes questions, insights, discussions, resources, areas and user profiles into
 * search_documents, one document per item with its lowercased terms (a multikey field on MongoDB,
 * so a term lookup is an index hit). user.profile.updated carries only the changed fields: the
 * profile document is read, merged and rewritten (one user's events run in order).
 */
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ProjectionDoc, ProjectionStore} from '../../core/ports.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, str} from '../util.js'

export const DOCUMENTS = 'search_documents'
export const KINDS = ['question', 'insight', 'discussion', 'resource', 'area', 'user'] as const
export type SearchKind = (typeof KINDS)[number]

const STOP = new Set(['the', 'and', 'for', 'with', 'that', 'this', 'from', 'are', 'was', 'how', 'what', 'why', 'you', 'your', 'into', 'not', 'can'])

/** Lowercased word tokens of 2+ characters, without common stop words; shared by index and query. */
export function tokenize(...texts: Array<string | null | undefined>): string[] {
  const out = new Set<string>()
  for (const text of texts) {
    if (!text) continue
    for (const token of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (token.length >= 2 && !STOP.has(token)) out.add(token)
  }
  return [...out]
}

const ID_FIELD: Record<SearchKind, string> = {
  question: 'question_id',
  insight: 'insight_id',
  discussion: 'discussion_id',
  resource: 'resource_id',
  area: 'area_id',
  user: 'user_id',
}

export const documentId = (kind: string, id: string) => `${kind}:${id}`

export function createSearchService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'search')
  return {
    name: 'search',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      const projections = ctx.store.projections
      const payload = event.payload
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        if (effect.action !== 'index' && effect.action !== 'reindex') continue
        const kind = effect.params.document as SearchKind
        const id = str(payload, ID_FIELD[kind])
        if (!id) continue
        const docId = documentId(kind, id)
        if (kind === 'user') {
          const before = (await projections.get(DOCUMENTS, docId)) ?? ({_id: docId} as ProjectionDoc)
          const title = str(payload, 'display_name') ?? (before.title as string | undefined) ?? null
          const text = str(payload, 'bio') ?? (before.text as string | undefined) ?? null
          const tags = (payload.expertise_area_ids as string[] | undefined) ?? (before.tags as string[] | undefined) ?? []
          await projections.applyOnce(DOCUMENTS, docId, event.event_id, {
            $set: {kind, id, title, text, tags, author_id: id, area_id: null, terms: tokenize(title, text), updated_at: event.timestamp},
          })
          continue
        }
        const title = str(payload, 'title') ?? str(payload, 'name')
        const tags = Array.isArray(payload.tags) ? (payload.tags as string[]) : []
        const text = str(payload, 'slug') ?? str(payload, 'resource_type')
        await projections.applyOnce(DOCUMENTS, docId, event.event_id, {
          $set: {
            kind,
            id,
            title,
            text,
            tags,
            author_id: str(payload, 'author_id') ?? str(payload, 'creator_id'),
            area_id: str(payload, 'area_id'),
            terms: tokenize(title, text, ...tags),
            updated_at: event.timestamp,
          },
        })
      }
    },
  }
}

export interface SearchHit {
  kind: string
  id: string
  title: string | null
  score: number
  matched: string[]
}

/** Documents matching any query term, best first: matched terms, then title matches, then recency. */
export async function searchDocuments(projections: ProjectionStore, query: string, options: {limit?: number; kind?: string} = {}): Promise<SearchHit[]> {
  const terms = tokenize(query)
  const limit = options.limit ?? 10
  const hits = new Map<string, {doc: ProjectionDoc; matched: Set<string>}>()
  for (const term of terms) {
    const filter: Record<string, unknown> = {terms: term}
    if (options.kind) filter.kind = options.kind
    for (const doc of await projections.find(DOCUMENTS, filter, {limit: 1000})) {
      const hit = hits.get(doc._id) ?? {doc, matched: new Set<string>()}
      hit.matched.add(term)
      hits.set(doc._id, hit)
    }
  }
  const scored = [...hits.values()].map(({doc, matched}) => {
    const titleTerms = new Set(tokenize(doc.title as string | undefined))
    const inTitle = [...matched].filter((t) => titleTerms.has(t)).length
    return {kind: String(doc.kind), id: String(doc.id), title: (doc.title as string | null) ?? null, score: matched.size * 2 + inTitle, matched: [...matched], at: String(doc.updated_at ?? '')}
  })
  scored.sort((a, b) => b.score - a.score || b.at.localeCompare(a.at) || a.id.localeCompare(b.id))
  return scored.slice(0, limit).map(({at: _at, ...hit}) => hit)
}
