import { requestFields } from '../../audit/event.js'
import { BANS_MAP, CidrBans, localBans } from '../../detect/bans.js'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps, type PolicyInstance } from '../../gateway/pipeline/policy.js'
import { acquireMapMirror } from '../../stores/mirror.js'
import { BanConfig } from './schema.js'

/** True when the credential's `amr` claim (RFC 8176) lists `mfa`. */
function hasMfa(claims: Readonly<Record<string, unknown>>): boolean {
  const amr = claims.amr
  return Array.isArray(amr) && amr.includes('mfa')
}

/**
 * One ban check: `kind` selects the key (`ip:<client IP>` or `principal:<id>`). The ban list is the
 * replicated map `bans` (a local copy, synced every 250 ms) plus this process's own recent writes:
 * one or two Map lookups per request, no store round trip.
 *
 * Fails open when the store has never answered (an empty copy): bans are a reaction to an attack
 * already seen, and refusing every request while the store is down would be an outage.
 */
function banCheck(kind: 'ip' | 'principal', { store, logger, now, audit }: PolicyDeps): PolicyInstance {
  const local = localBans(store)
  let cidr: CidrBans | undefined
  const mirror = acquireMapMirror(store, BANS_MAP, { logger, onChange: () => cidr?.invalidate() })
  // Network bans (`cidr:<network>/<bits>`): one BlockList check per request while there are any.
  if (kind === 'ip') cidr = new CidrBans(() => mirror.entries(), local, now)
  const deny = (ctx: RequestContext, key: string): never => {
    audit.emit({
      type: 'ban.hit',
      ...requestFields(ctx),
      decision: 'deny',
      code: 'GW_ERR_BANNED',
      data: { subject: key },
    })
    throw new GatewayError('GW_ERR_BANNED')
  }
  const banned = (key: string): boolean => {
    if (local.size > 0) {
      const t = local.get(key)
      if (t !== undefined) {
        if (t > now()) return true
        local.delete(key)
      }
    }
    return mirror.size > 0 && mirror.has(key)
  }
  const stepUp = (ctx: RequestContext, key: string): never => {
    audit.emit({
      type: 'step-up.demanded',
      ...requestFields(ctx),
      decision: 'deny',
      code: 'GW_ERR_STEP_UP_REQUIRED',
      data: { subject: key },
    })
    throw new GatewayError('GW_ERR_STEP_UP_REQUIRED', {
      detail: 'this principal must authenticate again with a second factor',
      headers: {
        'www-authenticate':
          'Bearer realm="portcullis", error="insufficient_user_authentication", error_description="multi-factor authentication required"',
      },
    })
  }
  return {
    onRequest(ctx) {
      if (kind === 'ip') {
        const key = `ip:${ctx.clientIp}`
        if (banned(key)) deny(ctx, key)
        if (cidr?.matches(ctx.clientIp)) deny(ctx, `cidr:${ctx.clientIp}`)
        return
      }
      const p = ctx.principal
      if (p === undefined) return
      const key = `principal:${p.id}`
      if (banned(key)) deny(ctx, key)
      const su = `step-up:${p.id}`
      if (banned(su) && !hasMfa(p.claims)) stepUp(ctx, su)
    },
    close() {
      mirror.close()
    },
  }
}

/**
 * IP bans (issue 7): a client IP in the ban list (or in a banned network, `cidr:` entries) is refused with 403 GW_ERR_BANNED before any other
 * policy runs (only overload shedding comes first). On by default: it costs a Map lookup.
 */
export const ban = definePolicy({
  id: 'ban',
  priority: 10_500, // after overload-shedding (11000), before every other policy
  defaultEnabled: true,
  description:
    'Refuses client IPs in the ban list (the replicated map `bans`, written by the admin API and the detectors) with 403 GW_ERR_BANNED, before every other policy but overload-shedding.',
  schema: BanConfig,
  create(_config, deps) {
    return banCheck('ip', deps)
  },
})

/**
 * Principal bans: runs right after authentication (the principal is only known then), before rate
 * limits and validation. On by default: a Map lookup on authenticated requests.
 */
export const banPrincipal = definePolicy({
  id: 'ban-principal',
  priority: 7850, // after authentication (7900–8100), before rate-limit (7000)
  defaultEnabled: true,
  description:
    'Refuses authenticated principals in the ban list (`principal:<id>` entries of the replicated map `bans`) with 403 GW_ERR_BANNED, right after authentication.',
  schema: BanConfig,
  create(_config, deps) {
    return banCheck('principal', deps)
  },
})
