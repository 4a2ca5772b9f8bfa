export { rateLimit } from './policy.js'
export { RateLimitConfig } from './schema.js'
