import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {loadCatalogFromText} from '../../src/catalog/load.js'
import type {Catalog} from '../../src/catalog/types.js'

export const FIXTURES = fileURLToPath(new URL('../fixtures/catalogs/', import.meta.url))
export const fixture = (name: string): string => path.join(FIXTURES, name)

/** A one-channel AsyncAPI 3 catalog built in memory, for diff cases. */
export function catalogOf(
  events: Array<{type: string; version?: string; payload: Record<string, unknown>; consumers?: string[]; aliases?: string[]}>,
  info: {version?: string} = {},
): Promise<Catalog> {
  const messages: Record<string, unknown> = {}
  for (const e of events) {
    messages[e.type] = {
      name: e.type,
      payload: e.payload,
      'x-tektree': {
        version: e.version ?? '1.0.0',
        domain: 'test',
        producer: 'producer-svc',
        aliases: e.aliases ?? [],
        consumers: (e.consumers ?? ['gamification']).map((service) => ({service, effects: []})),
      },
    }
  }
  const doc = {
    asyncapi: '3.0.0',
    info: {title: 'diff test', version: info.version ?? '1.0.0'},
    'x-tektree': {'topic-prefix': 't', partitions: 2, retention: {}},
    channels: {'t.test': {address: 't.test', messages}},
  }
  return loadCatalogFromText(JSON.stringify(doc), path.join(FIXTURES, 'in-memory.json'))
}
