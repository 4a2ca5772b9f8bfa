/** OpenAPI loading, `$ref` resolution, path matching and schema compilation (gateway, scanner, linter). */
export {
  DEFAULT_SPEC_LIMITS,
  type DocumentOptions,
  isRemoteFile,
  type Location,
  SpecDocuments,
  type SpecLimits,
} from './documents.js'
export { formatProblem, SpecError, type SpecProblem } from './errors.js'
export {
  type Encoding,
  HTTP_METHODS,
  type LoadOptions,
  loadOpenApi,
  type MediaType,
  type OpenApiSpec,
  type Operation,
  type Parameter,
  type RequestBody,
  type Response,
} from './load.js'
export { type MatchResult, PathMatcher, type PathMatch } from './matcher.js'
export { type CompiledSchema, SchemaCompiler, type SchemaVariant } from './schema.js'
export { fetchRemoteRefs, type RemoteFetchOptions } from './remote.js'
