import { defineRule, documentsRateLimit, perOperation } from './util.js'

export const authFlowNoRateLimit = defineRule({
  id: 'auth-flow-no-rate-limit',
  title: 'Login, token or reset flow with no documented rate limit',
  category: 'API2',
  severity: 'medium',
  why: 'Login, token, registration, password reset and one-time-code operations are where credential stuffing and brute force happen. If the contract documents no limit (no 429 response, no RateLimit headers), the implementation usually has none either, and nobody will notice it is missing.',
  before: `paths:
  /login:
    post:
      security: []
      responses:
        "200": { description: Logged in }
        "401": { description: Wrong credentials }`,
  after: `paths:
  /login:
    post:
      security: []
      responses:
        "200": { description: Logged in }
        "401": { description: Wrong credentials }
        "429":
          description: Too many attempts
          headers:
            Retry-After: { schema: { type: integer } }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      o.authFlow && o.op.method !== 'DELETE' && (o.write || o.anonymous) && !documentsRateLimit(o)
        ? `${o.label} is an authentication flow with no documented rate limit (429)`
        : undefined,
    ),
})
