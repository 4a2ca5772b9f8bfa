export { ssrfGuard } from './policy.js'
export { SsrfGuardConfig } from './schema.js'
