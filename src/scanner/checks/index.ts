/** Every check the scanner knows, in run order. `--checks` picks from these by id. */
import type { Check } from '../types.js'
import { bfla } from './bfla.js'
import { bola } from './bola.js'
import { businessFlowLimits } from './business-flow-limits.js'
import { excessiveDataExposure } from './excessive-data-exposure.js'
import { massAssignment } from './mass-assignment.js'
import { corsMisconfig } from './cors-misconfig.js'
import { deprecatedOperations } from './deprecated-operations.js'
import { httpMethods } from './http-methods.js'
import { injectionSignatures } from './injection-signatures.js'
import { jwtWeaknesses } from './jwt-weaknesses.js'
import { plainHttp } from './plain-http.js'
import { redos } from './redos.js'
import { resourceLimits } from './resource-limits.js'
import { securityHeaders } from './security-headers.js'
import { shadowEndpoints } from './shadow-endpoints.js'
import { ssrf } from './ssrf.js'
import { techDisclosure } from './tech-disclosure.js'
import { tokenInUrl } from './token-in-url.js'
import { unauthenticatedAccess } from './unauthenticated-access.js'
import { userEnumeration } from './user-enumeration.js'
import { verboseErrors } from './verbose-errors.js'

// Mass assignment runs last of these: it writes (and restores) the caller's own profile.
export const ALL_CHECKS: readonly Check[] = [
  bola,
  bfla,
  excessiveDataExposure,
  businessFlowLimits,
  massAssignment,
  // SCAN2's checks (API2, API7, API8, API9, injection); resource-limits last: its login burst may
  // trip a login limiter.
  unauthenticatedAccess,
  jwtWeaknesses,
  tokenInUrl,
  userEnumeration,
  ssrf,
  corsMisconfig,
  securityHeaders,
  verboseErrors,
  techDisclosure,
  httpMethods,
  plainHttp,
  shadowEndpoints,
  deprecatedOperations,
  injectionSignatures,
  // A pathological input may hang the target: after the other checks, and it backs off.
  redos,
  resourceLimits,
]
