import { requestFields } from '../../audit/event.js'
import { BANS_MAP, localBans } from '../../detect/bans.js'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps, type PolicyInstance } from '../../gateway/pipeline/policy.js'
import { acquireMapMirror, type MapMirror } from '../../stores/mirror.js'
import { CidrSet, parseCidr } from '../../util/cidr.js'
import { BanConfig } from './schema.js'

/** True when the credential's `amr` claim (RFC 8176) lists `mfa`. */
function hasMfa(claims: Readonly<Record<string, unknown>>): boolean {
  const amr = claims.amr
  return Array.isArray(amr) && amr.includes('mfa')
}

/**
 * The range bans (`ip:<network>/<prefix>` entries) of the ban list as one CIDR set, rebuilt from
 * the mirror when it changes or when one of its ranges expires; a lookup is one BlockList check
 * (none while no range is banned).
 */
class RangeBans {
  private set = CidrSet.empty
  private nextExpiry = Number.POSITIVE_INFINITY
  private dirty = true

  constructor(
    private readonly mirror: () => MapMirror,
    private readonly now: () => number,
  ) {}

  changed(): void {
    this.dirty = true
  }

  /** The banned range `ip` lies in (its ban key), or undefined. */
  find(ip: string): string | undefined {
    const t = this.now()
    if (this.dirty || t >= this.nextExpiry) this.rebuild(t)
    if (this.set.size === 0 || !this.set.has(ip)) return undefined
    // A hit (rare): name the range for the audit event.
    for (const r of this.each) if (r.set.has(ip)) return r.key
    return 'ip:range'
  }

  private each: { key: string; set: CidrSet }[] = []

  private rebuild(t: number): void {
    this.dirty = false
    const ranges: string[] = []
    const each: { key: string; set: CidrSet }[] = []
    let next = Number.POSITIVE_INFINITY
    for (const [key, e] of this.mirror().entries()) {
      if (!key.startsWith('ip:') || !key.includes('/')) continue
      if (e.expiresAt !== undefined && e.expiresAt <= t) continue
      const range = key.slice(3)
      if (parseCidr(range) === undefined) continue
      ranges.push(range)
      each.push({ key, set: CidrSet.from([range]) })
      if (e.expiresAt !== undefined && e.expiresAt < next) next = e.expiresAt
    }
    this.set = ranges.length > 0 ? CidrSet.from(ranges) : CidrSet.empty
    this.each = each
    this.nextExpiry = next > t ? next : t + 1000
  }
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
  const ranges: RangeBans | undefined = kind === 'ip' ? new RangeBans(() => mirror, now) : undefined
  const mirror = acquireMapMirror(store, BANS_MAP, { logger, onChange: () => ranges?.changed() })
  const local = localBans(store)
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
        const range = ranges?.find(ctx.clientIp)
        if (range !== undefined) deny(ctx, range)
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
 * IP bans (issue 7): a client IP in the ban list, or in a range of it (`ip:203.0.113.0/24`), is refused with 403 GW_ERR_BANNED before any other
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
