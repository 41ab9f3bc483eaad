/**
 * JSON Schema (draft-07) of the TekTree envelope: seed 000's base schema, causation_id (seed 003),
 * aggregate_id/sequence in metadata (seed 004), and no raw IP (metadata.ip is always "redacted").
 * The payload is checked separately, against the event type's schema.
 */
import type {JsonSchema} from './types.js'

export const UUID_V4_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$'
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
export const SEMVER_PATTERN = '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?$'
/** UTC only: a 'Z' offset, optional fraction. */
export const UTC_TIMESTAMP_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?Z$'

export const envelopeSchema: JsonSchema = {
  $id: 'https://tektree.dev/schemas/envelope.json',
  title: 'TekTree event envelope',
  type: 'object',
  additionalProperties: false,
  required: [
    'event_id',
    'event_type',
    'event_version',
    'timestamp',
    'source_service',
    'payload',
    'trace_id',
    'correlation_id',
    'causation_id',
    'producer_id',
    'metadata',
  ],
  properties: {
    event_id: {type: 'string', pattern: UUID_V4_PATTERN, description: 'UUID v4; consumers deduplicate by it.'},
    event_type: {type: 'string', minLength: 1, description: 'Dot notation {domain}.{aggregate}.{action}.'},
    event_version: {type: 'string', pattern: SEMVER_PATTERN},
    timestamp: {type: 'string', pattern: UTC_TIMESTAMP_PATTERN, format: 'date-time'},
    source_service: {type: 'string', minLength: 1},
    payload: {type: 'object'},
    trace_id: {type: 'string', minLength: 1},
    correlation_id: {type: 'string', minLength: 1},
    causation_id: {anyOf: [{type: 'string', pattern: UUID_PATTERN}, {type: 'null'}]},
    producer_id: {type: 'string', minLength: 1},
    metadata: {
      type: 'object',
      properties: {
        ip: {const: 'redacted', description: 'No raw PII: an IP address is never carried.'},
        aggregate_id: {type: 'string', minLength: 1},
        aggregate_type: {type: 'string', minLength: 1},
        sequence: {type: 'integer', minimum: 0},
      },
    },
  },
}
