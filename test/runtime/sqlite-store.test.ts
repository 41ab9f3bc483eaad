import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {storeContract} from '../contracts/store.contract.js'
import {createSqliteStore} from '../../src/adapters/sqlite/index.js'

storeContract('SqliteStore (file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tektree-sqlite-'))
  return {store: await createSqliteStore({path: join(dir, 'store.db')}), cleanup: () => rm(dir, {recursive: true, force: true})}
})

storeContract('SqliteStore (:memory:)', async () => ({store: await createSqliteStore({path: ':memory:'})}))
