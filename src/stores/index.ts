/**
 * The shared state layer for policies. See docs/stores.md. (The contract test suite lives in
 * ./contract.js and is not exported here: it imports node:test.)
 */
export {
  checkStoresConfig,
  type CreateStoreDeps,
  createStore,
  MemoryStoreConfig,
  RedisStoreConfig,
  RedisTlsConfig,
  StoresConfig,
} from './config.js'
export { createMemoryStore, MemoryStore, type MemoryStoreOptions } from './memory/memory-store.js'
export {
  acquireMapMirror,
  MIRROR_DEFAULTS,
  type MapMirror,
  type MapMirrorOptions,
  openMapMirrors,
} from './mirror.js'
export { createRedisStore, RedisStore, type RedisStoreOptions } from './redis/redis-store.js'
export {
  type CounterStore,
  type CounterValue,
  type GcraParams,
  type GcraResult,
  type GcraStore,
  isStoreError,
  type KvStore,
  type MapChange,
  type MapChanges,
  type MapEntry,
  type MapSnapshot,
  type MapStore,
  type SetStore,
  type Store,
  StoreError,
  type StoreErrorCode,
} from './types.js'
