export { MAX_LEARNED_PER_LIST, objectOwnership } from './policy.js'
export { ObjectOwnershipConfig } from './schema.js'
