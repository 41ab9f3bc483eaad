/** The SQLite adapter (better-sqlite3): the embedded runtime's Store, one file shared by every process. */
export {createSqliteStore, SqliteStore, SQLITE_SCHEMA_VERSION, type SqliteStoreOptions} from './store.js'
