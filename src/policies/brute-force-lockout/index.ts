export { bruteForceLockout } from './policy.js'
export { BruteForceLockoutConfig } from './schema.js'
