/**
 * The catalog model every part of tektree reads: loaded from an AsyncAPI 3 document
 * (fixtures/catalog/tektree.asyncapi.yaml by default, or any --catalog FILE).
 * The `x-tektree` extensions that carry what AsyncAPI has no field for are documented in that file.
 */
export type JsonSchema = Record<string, unknown>

export interface ConsumerEffect {
  /** Machine-readable action, e.g. "award_xp", "index", "notify", "create_subscription". */
  action: string
  /** The seed's bullet line, e.g. "Award +2 XP to content author". */
  description: string
  /** Action parameters as data, e.g. {amount: 2, target: "content_author_id"}. */
  params: Record<string, unknown>
}

export interface CatalogConsumer {
  /** Service name: gamification, payment, notification, search, cache, analytics, realtime, email, user. */
  service: string
  effects: ConsumerEffect[]
}

export interface RetentionPolicy {
  /** Category from seed 000's retention table: user, knowledge, gamification, payment, social, realtime, notification. */
  category: string
  /** null = indefinite. */
  maxAgeMs: number | null
  storage: string
}

export interface CatalogEvent {
  /** Canonical type (seed 000 wins where 000 and 001 disagree). */
  type: string
  /** Other names accepted on input (seed 001's names). */
  aliases: string[]
  version: string
  domain: string
  summary: string
  /** Producing service; null for a foreign catalog without x-tektree. */
  producer: string | null
  consumers: CatalogConsumer[]
  retention: RetentionPolicy | null
  /** Payload field holding the aggregate id; null when unknown (then the event id is the key). */
  partitionKey: string | null
  /** Bus topic the event travels on. */
  topic: string
  /** Fully dereferenced JSON Schema of the payload. */
  payloadSchema: JsonSchema
  /** Where in the document the message was defined (for messages that name it). */
  pointer: string
}

/**
 * A message the catalog defines but tektree cannot use (Avro/protobuf payload, recursive or remote
 * $ref). The rest of the catalog loads; using this type fails with this code and message.
 */
export interface CatalogProblem {
  type: string
  pointer: string
  /** UNSUPPORTED_SCHEMA_FORMAT, REF_CYCLE, REMOTE_REF or UNSUPPORTED_PAYLOAD. */
  code: string
  message: string
  hint?: string
}

export interface Catalog {
  /** Absolute path of the document, or "-" for stdin. */
  source: string
  title: string
  version: string
  asyncapi: string
  /** True when the document carries TekTree's x-tektree extensions (services can run on it). */
  tektree: boolean
  events: CatalogEvent[]
  /** Messages left out of `events` and why (additive; absent = none). */
  problems?: CatalogProblem[]
  /** Looks a type up by canonical name or alias. */
  get(typeOrAlias: string): CatalogEvent | undefined
  /** Topics with partition counts and retention, for Bus.ensureTopics. */
  topics(): import('../core/ports.js').TopicSpec[]
}
