import type { PolicyDefinition } from '../gateway/pipeline/policy.js'
import { apiKeyAuth } from './api-key-auth/index.js'
import { authorize } from './authorize/index.js'
import { ban, banPrincipal } from './ban/index.js'
import { bruteForceLockout } from './brute-force-lockout/index.js'
import { ipFilter } from './ip-filter/index.js'
import { cors } from './cors/index.js'
import { jwtAuth } from './jwt-auth/index.js'
import { leakGuard } from './leak-guard/index.js'
import { mtls } from './mtls/index.js'
import { objectOwnership } from './object-ownership/index.js'
import { oauth2Introspection } from './oauth2-introspection/index.js'
import { openApiValidation } from './openapi-validation/index.js'
import { overloadShedding } from './overload-shedding/index.js'
import { propertyFilter } from './property-filter/index.js'
import { rateLimit } from './rate-limit/index.js'
import { requestSizeLimit } from './request-size-limit/index.js'
import { ssrfGuard } from './ssrf-guard/index.js'
import { securityHeaders } from './security-headers/index.js'
import { userinfoAuth } from './userinfo-auth/index.js'

/** Every built-in policy, by id. New policies register here. */
export const BUILTIN_POLICIES: readonly PolicyDefinition[] = [
  ipFilter,
  cors,
  requestSizeLimit,
  securityHeaders,
  mtls,
  bruteForceLockout,
  apiKeyAuth,
  jwtAuth,
  oauth2Introspection,
  userinfoAuth,
  authorize,
  propertyFilter,
  leakGuard,
  objectOwnership,
  openApiValidation,
  ssrfGuard,
  rateLimit,
  overloadShedding,
  ban,
  banPrincipal,
]

export function policyById(id: string): PolicyDefinition | undefined {
  return BUILTIN_POLICIES.find((p) => p.id === id)
}
