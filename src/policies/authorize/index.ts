export { type AuthorizeDecision, authorize, METHOD_OVERRIDE_HEADERS } from './policy.js'
export { AuthorizeConfig } from './schema.js'
