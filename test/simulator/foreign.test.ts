/**
 * A catalog without x-tektree: every type is generated from its JSON Schema, and the events validate.
 */
import {randomUUID} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {createPayloadGenerator} from '../../src/catalog/example.js'
import {loadCatalogFromText} from '../../src/catalog/load.js'
import {createValidator} from '../../src/catalog/validate.js'
import {createForeignSource} from '../../src/simulator/foreign.js'

const FOREIGN = `
asyncapi: 3.0.0
info: {title: Shop, version: 1.0.0}
channels:
  orders:
    address: shop.orders
    messages:
      OrderPlaced:
        name: order.placed
        payload:
          type: object
          required: [order_id, amount_cents, currency]
          additionalProperties: false
          properties:
            order_id: {type: string, format: uuid}
            amount_cents: {type: integer, minimum: 1}
            currency: {enum: [EUR, USD]}
      OrderShipped:
        name: order.shipped
        payload:
          type: object
          required: [order_id, carrier]
          properties:
            order_id: {type: string, format: uuid}
            carrier: {type: string, minLength: 2, maxLength: 20}
`

describe('foreign catalogs', () => {
  it('generates every type from its schema, valid, deterministic under a seed', async () => {
    const catalog = await loadCatalogFromText(FOREIGN, '/tmp/shop.asyncapi.yaml')
    expect(catalog.tektree).toBe(false)
    const validator = createValidator(catalog)
    const source = createForeignSource({catalog, seed: 4, generatorFor: createPayloadGenerator})
    const drafts = source.next(300)
    expect(new Set(drafts.map((d) => d.type))).toEqual(new Set(catalog.events.map((e) => e.type)))
    for (const d of drafts) {
      const def = catalog.get(d.type)!
      const result = validator.validate({
        event_id: d.eventId, event_type: d.type, event_version: def.version, timestamp: new Date().toISOString(),
        source_service: 'shop', payload: d.payload, trace_id: randomUUID(), correlation_id: d.correlationId,
        causation_id: null, producer_id: 'test', metadata: {},
      })
      expect(result.ok, JSON.stringify(result)).toBe(true)
    }
    const again = createForeignSource({catalog, seed: 4, generatorFor: createPayloadGenerator}).next(300)
    expect(again).toEqual(drafts)
    expect(Object.values(source.counts()).reduce((a, b) => a + b, 0)).toBe(300)
  })
})
