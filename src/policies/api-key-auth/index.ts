export { apiKeyAuth, MAX_PRESENTED_KEY_LENGTH } from './policy.js'
export { ApiKeyAuthConfig } from './schema.js'
