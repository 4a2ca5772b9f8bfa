export { ban, banPrincipal } from './policy.js'
export { BanConfig } from './schema.js'
