/**
 * The Bus contract against RedisBus on the integration tier's redis-server. Each test gets its own
 * key prefix (deleted afterwards) and a 1 s session timeout so takeover tests stay short.
 */
import {describe, inject} from 'vitest'
import {Redis} from 'ioredis'
import {busContract} from '../contracts/bus.contract.js'
import {uniqueName} from '../contracts/helpers.js'
import {createRedisBus} from '../../src/runtime/redis/bus.js'
import {deleteKeys} from '../../src/runtime/redis/connection.js'

const redisUrl = inject('redisUrl')

describe.skipIf(!redisUrl)(`RedisBus (${redisUrl ? 'redis-server' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  busContract(
    'RedisBus',
    async () => {
      const prefix = uniqueName('t')
      const bus = await createRedisBus({url: redisUrl!, prefix, sessionTimeoutMs: 1_000})
      return {
        bus,
        cleanup: async () => {
          const admin = new Redis(redisUrl!, {lazyConnect: true, maxRetriesPerRequest: 1})
          try {
            await admin.connect()
            await deleteKeys(admin, `${prefix}:*`)
          } finally {
            admin.disconnect()
          }
        },
      }
    },
    {visibilityTimeoutMs: 400},
  )
})
