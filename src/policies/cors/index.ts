export { cors } from './policy.js'
export { CorsConfig } from './schema.js'
