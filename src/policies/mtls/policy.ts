import type { TLSSocket } from 'node:tls'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, logRefusal } from '../../gateway/pipeline/policy.js'
import { MtlsConfig } from './schema.js'

const kPeer = Symbol('portcullis.mtls.peer')
type PeerSocket = TLSSocket & { [kPeer]?: Map<string, Principal | 'unverified' | 'absent'> }

function sanEntries(san: string | undefined, type: string): string[] {
  if (!san) return []
  const out: string[] = []
  for (const part of san.split(', ')) {
    const colon = part.indexOf(':')
    if (colon !== -1 && part.slice(0, colon) === type) out.push(part.slice(colon + 1))
  }
  return out
}

/**
 * Client-certificate authentication. The certificate is verified by the TLS listener against
 * `listeners[].tls.clientAuth.ca`; this policy requires a verified one on its routes and turns it
 * into the principal. The result is kept per connection (a certificate cannot change on one).
 */
export const mtls = definePolicy({
  id: 'mtls',
  priority: 8100,
  authenticates: true,
  description:
    'Requires a client certificate verified by the listener (mutual TLS) and makes it the principal (subject CN or a SAN).',
  schema: MtlsConfig,
  create(config, deps) {
    const { audit } = deps
    const refusal = logRefusal(deps)
    const allowed = config.allowedPrincipals.length > 0 ? new Set(config.allowedPrincipals) : undefined
    const from = config.principalFrom
    const forward = config.forwardHeader
    const identify = (socket: TLSSocket): Principal | 'unverified' | 'absent' => {
      const cert = socket.getPeerCertificate(false)
      if (!cert || Object.keys(cert).length === 0) return 'absent'
      if (!socket.authorized) {
        refusal(
          'mtls:unverified',
          { reason: String(socket.authorizationError) },
          'client certificate not verified',
        )
        return 'unverified'
      }
      const cn = cert.subject?.CN
      const subjectCn = Array.isArray(cn) ? cn[0] : cn
      const id =
        from === 'subject-cn'
          ? subjectCn
          : sanEntries(
              cert.subjectaltname,
              from === 'san-dns' ? 'DNS' : from === 'san-uri' ? 'URI' : 'email',
            )[0]
      if (id === undefined || id === '') return 'unverified'
      return {
        id,
        type: 'client-certificate',
        scopes: [],
        roles: [],
        claims: {
          subject: cert.subject,
          issuer: cert.issuer,
          serialNumber: cert.serialNumber,
          fingerprint256: cert.fingerprint256,
          subjectAltName: cert.subjectaltname,
          validTo: cert.valid_to,
        },
        authMethod: 'mtls',
      }
    }
    const authenticate = (ctx: RequestContext): Principal | undefined => {
      const socket = ctx.req.socket as PeerSocket
      if (!ctx.secure || typeof socket.getPeerCertificate !== 'function') return undefined
      // The same connection may serve routes with different principalFrom settings.
      let cache = socket[kPeer]
      if (cache === undefined) {
        cache = new Map()
        socket[kPeer] = cache
      }
      let who = cache.get(from)
      if (who === undefined) {
        who = identify(socket)
        cache.set(from, who)
      }
      if (who === 'absent') return undefined
      if (who === 'unverified') {
        audit.emit({
          type: 'auth.failure',
          ...requestFields(ctx),
          decision: 'deny',
          code: 'GW_ERR_AUTH_INVALID',
          reason: 'client certificate not verified or without an identity',
          data: { method: 'mtls' },
        })
        throw new GatewayError('GW_ERR_AUTH_INVALID')
      }
      if (allowed && !allowed.has(who.id)) throw new GatewayError('GW_ERR_FORBIDDEN')
      if (forward !== false) ctx.setUpstreamHeader(forward, who.id)
      return who
    }
    return {
      authenticate,
      // A client must never be able to send the identity header itself.
      ...(forward !== false ? { stripRequestHeaders: [forward] } : {}),
      onRequest(ctx) {
        const who = authenticate(ctx)
        if (who === undefined) {
          throw new GatewayError('GW_ERR_AUTH_MISSING', { detail: 'a client certificate is required' })
        }
        ctx.principal = who
      },
    }
  },
})
