export { overloadShedding } from './policy.js'
export { OverloadSheddingConfig } from './schema.js'
