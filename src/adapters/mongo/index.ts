/** The MongoDB adapters (official driver 7): the Store. */
export {createMongoStore, MongoStore, toMongoUpdate, type MongoStoreOptions, type MongoStoreTarget} from './store.js'
