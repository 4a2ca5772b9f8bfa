export { propertyFilter } from './policy.js'
export { PropertyFilterConfig } from './schema.js'
