export { requestSizeLimit } from './policy.js'
export { RequestSizeLimitConfig } from './schema.js'
