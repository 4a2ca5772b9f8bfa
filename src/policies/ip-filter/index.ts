export { ipFilter } from './policy.js'
export { IpFilterConfig } from './schema.js'
