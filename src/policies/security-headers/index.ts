export { securityHeaders } from './policy.js'
export { SecurityHeadersConfig } from './schema.js'
