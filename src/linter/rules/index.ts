/** Every built-in rule, by OWASP API Top 10 item, then spec hygiene. Generated list: one file per rule. */
import type { Rule } from '../types.js'
import { bolaNumericId } from './bola-numeric-id.js'
import { identityHeaderParameter } from './identity-header-parameter.js'
import { numericIdReference } from './numeric-id-reference.js'
import { apikeyInCookie } from './apikey-in-cookie.js'
import { apikeyInQuery } from './apikey-in-query.js'
import { authFlowNoRateLimit } from './auth-flow-no-rate-limit.js'
import { authUrlNotHttps } from './auth-url-not-https.js'
import { credentialInUrl } from './credential-in-url.js'
import { httpBasicAuth } from './http-basic-auth.js'
import { httpDigestAuth } from './http-digest-auth.js'
import { missing401Response } from './missing-401-response.js'
import { oauthImplicitFlow } from './oauth-implicit-flow.js'
import { oauthPasswordFlow } from './oauth-password-flow.js'
import { operationNoSecurity } from './operation-no-security.js'
import { securityOptionalAnonymous } from './security-optional-anonymous.js'
import { securitySchemeUndefined } from './security-scheme-undefined.js'
import { tokenWithoutExpiry } from './token-without-expiry.js'
import { writeOperationPublic } from './write-operation-public.js'
import { massAssignmentServerFields } from './mass-assignment-server-fields.js'
import { passwordNotWriteOnly } from './password-not-write-only.js'
import { piiInUrl } from './pii-in-url.js'
import { privilegeFieldWritable } from './privilege-field-writable.js'
import { requestSchemaOpen } from './request-schema-open.js'
import { responseNoSchema } from './response-no-schema.js'
import { responseSchemaOpen } from './response-schema-open.js'
import { responseSensitiveProperty } from './response-sensitive-property.js'
import { arrayUnbounded } from './array-unbounded.js'
import { listResponseUnpaginated } from './list-response-unpaginated.js'
import { missing429Response } from './missing-429-response.js'
import { numberUnbounded } from './number-unbounded.js'
import { objectUnboundedMap } from './object-unbounded-map.js'
import { pageSizeUnbounded } from './page-size-unbounded.js'
import { patternRedos } from './pattern-redos.js'
import { stringUnbounded } from './string-unbounded.js'
import { uploadUnbounded } from './upload-unbounded.js'
import { adminOperationPublic } from './admin-operation-public.js'
import { adminSharesUserAccess } from './admin-shares-user-access.js'
import { missing403Response } from './missing-403-response.js'
import { mutationViaGet } from './mutation-via-get.js'
import { oauthNoScopes } from './oauth-no-scopes.js'
import { pathAmbiguousDuplicate } from './path-ambiguous-duplicate.js'
import { privilegeParameter } from './privilege-parameter.js'
import { scopeUndeclared } from './scope-undeclared.js'
import { writeWithReadScope } from './write-with-read-scope.js'
import { businessFlowNoRateLimit } from './business-flow-no-rate-limit.js'
import { callbackUrlSsrf } from './callback-url-ssrf.js'
import { openRedirectParameter } from './open-redirect-parameter.js'
import { ssrfUrlInput } from './ssrf-url-input.js'
import { debugEndpoint } from './debug-endpoint.js'
import { debugParameter } from './debug-parameter.js'
import { errorExposesInternals } from './error-exposes-internals.js'
import { exampleCredentials } from './example-credentials.js'
import { getWithBody } from './get-with-body.js'
import { pathIdUnconstrained } from './path-id-unconstrained.js'
import { requestBodyNoSchema } from './request-body-no-schema.js'
import { serverInternalAddress } from './server-internal-address.js'
import { serverNotHttps } from './server-not-https.js'
import { serverVariableUnrestricted } from './server-variable-unrestricted.js'
import { traceOperation } from './trace-operation.js'
import { wildcardRequestMedia } from './wildcard-request-media.js'
import { xmlRequestBody } from './xml-request-body.js'
import { deprecatedWithoutSunset } from './deprecated-without-sunset.js'
import { infoContactMissing } from './info-contact-missing.js'
import { multipleApiVersions } from './multiple-api-versions.js'
import { serverMissing } from './server-missing.js'
import { callbackUnauthenticated } from './callback-unauthenticated.js'
import { externalRefInsecure } from './external-ref-insecure.js'
import { operationIdMissing } from './operation-id-missing.js'
import { parameterNoSchema } from './parameter-no-schema.js'
import { schemaTypeMissing } from './schema-type-missing.js'
import { securitySchemeUnused } from './security-scheme-unused.js'

export const RULES: readonly Rule[] = [
  bolaNumericId,
  identityHeaderParameter,
  numericIdReference,
  apikeyInCookie,
  apikeyInQuery,
  authFlowNoRateLimit,
  authUrlNotHttps,
  credentialInUrl,
  httpBasicAuth,
  httpDigestAuth,
  missing401Response,
  oauthImplicitFlow,
  oauthPasswordFlow,
  operationNoSecurity,
  securityOptionalAnonymous,
  securitySchemeUndefined,
  tokenWithoutExpiry,
  writeOperationPublic,
  massAssignmentServerFields,
  passwordNotWriteOnly,
  piiInUrl,
  privilegeFieldWritable,
  requestSchemaOpen,
  responseNoSchema,
  responseSchemaOpen,
  responseSensitiveProperty,
  arrayUnbounded,
  listResponseUnpaginated,
  missing429Response,
  numberUnbounded,
  objectUnboundedMap,
  pageSizeUnbounded,
  patternRedos,
  stringUnbounded,
  uploadUnbounded,
  adminOperationPublic,
  adminSharesUserAccess,
  missing403Response,
  mutationViaGet,
  oauthNoScopes,
  pathAmbiguousDuplicate,
  privilegeParameter,
  scopeUndeclared,
  writeWithReadScope,
  businessFlowNoRateLimit,
  callbackUrlSsrf,
  openRedirectParameter,
  ssrfUrlInput,
  debugEndpoint,
  debugParameter,
  errorExposesInternals,
  exampleCredentials,
  getWithBody,
  pathIdUnconstrained,
  requestBodyNoSchema,
  serverInternalAddress,
  serverNotHttps,
  serverVariableUnrestricted,
  traceOperation,
  wildcardRequestMedia,
  xmlRequestBody,
  deprecatedWithoutSunset,
  infoContactMissing,
  multipleApiVersions,
  serverMissing,
  callbackUnauthenticated,
  externalRefInsecure,
  operationIdMissing,
  parameterNoSchema,
  schemaTypeMissing,
  securitySchemeUnused,
]
