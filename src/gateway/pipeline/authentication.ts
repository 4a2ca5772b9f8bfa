/**
 * Combining authentication policies on a route: `anyOf` (the first credential the request carries
 * decides) or `allOf` (every listed method must authenticate). Without `authentication:`, each
 * configured authentication policy enforces its own credential, which is `allOf` too.
 */
import { GatewayError } from '../errors.js'
import type { Principal, RequestContext } from './context.js'
import type { PolicyInstance } from './policy.js'

export interface Authenticator {
  id: string
  instance: PolicyInstance & Required<Pick<PolicyInstance, 'authenticate'>>
}

function challenges(list: readonly Authenticator[]): Record<string, string> | undefined {
  const c = list.map((a) => a.instance.challenge).filter((x): x is string => typeof x === 'string')
  return c.length > 0 ? { 'www-authenticate': c.join(', ') } : undefined
}

/**
 * anyOf: methods are tried in the listed order; the first whose credential is present decides.
 * A credential that is present but invalid is refused at once: it never falls through to the next
 * method (that would let an attacker pick the weakest check).
 */
export function anyOfHook(list: readonly Authenticator[]): (ctx: RequestContext) => Promise<void> {
  const headers = challenges(list)
  return async (ctx) => {
    for (const a of list) {
      const r = a.instance.authenticate(ctx)
      const p = r instanceof Promise ? await r : r
      if (p !== undefined) {
        ctx.principal = p
        return
      }
    }
    throw new GatewayError('GW_ERR_AUTH_MISSING', { ...(headers ? { headers } : {}) })
  }
}

/** allOf: every method must authenticate; the first is the principal, the rest are kept in state. */
export function allOfHook(list: readonly Authenticator[]): (ctx: RequestContext) => Promise<void> {
  const headers = challenges(list)
  return async (ctx) => {
    const found: Principal[] = []
    for (const a of list) {
      const r = a.instance.authenticate(ctx)
      const p = r instanceof Promise ? await r : r
      if (p === undefined) throw new GatewayError('GW_ERR_AUTH_MISSING', { ...(headers ? { headers } : {}) })
      found.push(p)
    }
    ctx.principal = found[0]
    ctx.state.principals = found
  }
}
