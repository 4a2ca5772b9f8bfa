export { userinfoAuth } from './policy.js'
export { UserinfoAuthConfig } from './schema.js'
