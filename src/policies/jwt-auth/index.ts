export { JwtAuth, type JwtAuthStats, jwtAuth } from './policy.js'
export { JwtAuthConfig } from './schema.js'
