/**
 * The Bus contract against KafkaBus on the integration tier's broker (one broker for every Kafka
 * test: each test uses its own topics and groups, uniqueName). A 1 s session timeout keeps the
 * takeover tests short (the broker's group.min.session.timeout.ms is lowered for it).
 */
import {describe, inject} from 'vitest'
import {busContract} from '../contracts/bus.contract.js'
import {brokersOf, createKafkaBus} from '../../src/adapters/kafka/bus.js'

const kafkaUrl = inject('kafkaUrl')

describe.skipIf(!kafkaUrl)(`KafkaBus (${kafkaUrl ? 'kafka broker' : `skipped: ${inject('kafkaUnavailable')}`})`, () => {
  busContract(
    'KafkaBus',
    async () => {
      const bus = await createKafkaBus({brokers: brokersOf(kafkaUrl!), sessionTimeoutMs: 1_000})
      return {bus}
    },
    {visibilityTimeoutMs: 400, sessionTimeoutMs: 1_000},
  )
})
