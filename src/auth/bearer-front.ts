/**
 * The front of a policy that checks opaque bearer tokens at a remote endpoint (oauth2-introspection,
 * userinfo-auth): reading the token from its header (RFC 6750 through the shared parser, size
 * first), the three answers (401 missing with the challenge, 401 invalid, the refusal's audit
 * record without the token) and the throttled outage warning. One copy instead of one per policy.
 */
import type { Logger } from 'pino'
import { type AuditEmitter, requestFields } from '../audit/event.js'
import { GatewayError } from '../gateway/errors.js'
import type { RequestContext } from '../gateway/pipeline/context.js'
import { compileTokenExtractor, TOKEN_MISSING, TOKEN_TOO_LARGE } from './token.js'
import { throttledWarning } from './verdict-cache.js'

const VISIBLE_ASCII = /^[\x21-\x7e]+$/
const WARN_EVERY_MS = 5000

export interface BearerFrontOptions {
  /** The policy id, in audit records. */
  method: string
  /** The request header carrying the token (lower case); `authorization` means `Bearer …`. */
  header: string
  maxTokenBytes: number
  realm: string
  audit: AuditEmitter
  logger: Logger
  now: () => number
  /** The warning logged (at most every 5 s) while the endpoint fails. */
  outageMessage: string
}

export interface BearerFront {
  /** `Bearer realm="…"`: the challenge of a missing token. */
  challenge: string
  /** The token, undefined when the request carries none; a 401 (and an audit record) for a malformed or oversized one. */
  extract(ctx: RequestContext): string | undefined
  missing(): GatewayError
  invalid(detail?: string): GatewayError
  /** The audit record of a presented token that was refused (never the token; the reason only). */
  refused(ctx: RequestContext, reason: string, code?: string): void
  /** The endpoint failed: a throttled warning. */
  outage(reason: string, ctx: RequestContext): void
}

export function bearerFront(o: BearerFrontOptions): BearerFront {
  const extractor = compileTokenExtractor({
    header: o.header,
    scheme: o.header === 'authorization' ? 'Bearer' : '',
    maxBytes: o.maxTokenBytes,
  })
  const realm = `realm="${o.realm}"`
  const challenge = `Bearer ${realm}`
  const challengeInvalid = `Bearer ${realm}, error="invalid_token"`
  const warn = throttledWarning(o.logger, o.now, WARN_EVERY_MS, o.outageMessage)
  const invalid = (detail = 'the access token is not valid') =>
    new GatewayError('GW_ERR_AUTH_INVALID', { detail, headers: { 'www-authenticate': challengeInvalid } })
  const refused = (ctx: RequestContext, reason: string, code = 'GW_ERR_AUTH_INVALID') =>
    o.audit.emit({
      type: 'auth.failure',
      ...requestFields(ctx),
      decision: code === 'GW_ERR_AUTH_UNAVAILABLE' ? 'error' : 'deny',
      code,
      reason,
      data: { method: o.method },
    })
  return {
    challenge,
    extract(ctx) {
      const r = extractor(ctx.req)
      if (r === TOKEN_MISSING) return undefined
      if (r === TOKEN_TOO_LARGE) {
        refused(ctx, 'token too large')
        throw invalid(`the access token is longer than ${o.maxTokenBytes} bytes`)
      }
      if (typeof r !== 'string' || !VISIBLE_ASCII.test(r)) {
        refused(ctx, 'malformed')
        throw invalid()
      }
      return r
    },
    missing: () =>
      new GatewayError('GW_ERR_AUTH_MISSING', {
        detail: 'a bearer token is required',
        headers: { 'www-authenticate': challenge },
      }),
    invalid,
    refused,
    outage: (reason, ctx) => warn({ reason, requestId: ctx.id, route: ctx.routeName }),
  }
}
