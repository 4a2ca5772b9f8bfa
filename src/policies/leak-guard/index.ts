export { leakGuard } from './policy.js'
export { LeakGuardConfig } from './schema.js'
