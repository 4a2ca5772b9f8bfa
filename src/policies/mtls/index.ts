export { mtls } from './policy.js'
export { MtlsConfig } from './schema.js'
