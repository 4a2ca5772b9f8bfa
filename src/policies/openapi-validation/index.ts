export { type OperationInfo, openApiValidation, operationOf } from './policy.js'
export { OpenApiValidationConfig } from './schema.js'
