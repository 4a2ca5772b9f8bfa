export { oauth2Introspection } from './policy.js'
export { OAuth2IntrospectionConfig } from './schema.js'
