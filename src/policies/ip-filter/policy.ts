import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import { definePolicy, PolicyConfigError } from '../../gateway/pipeline/policy.js'
import { CidrSet, cidrListProblems } from '../../util/cidr.js'
import { IpFilterConfig } from './schema.js'

/**
 * Per-route client address filtering: CIDR allow and deny lists matched against the client
 * address the gateway trusts (`ctx.clientIp`: the socket's peer, or, behind a proxy listed in
 * `proxy.trustedProxies`, the right-most untrusted X-Forwarded-For entry). Ranges are compared
 * numerically (node:net BlockList through src/util/cidr.ts), so `::ffff:10.0.0.1` is `10.0.0.1`.
 */
export const ipFilter = definePolicy({
  id: 'ip-filter',
  priority: 10_600, // before bans (10500): a static list costs one BlockList check
  description:
    'Allows or refuses clients by address: CIDR allow and deny lists (IPv4 and IPv6) per route, on the client address after `proxy.trustedProxies`; refused clients get 403 GW_ERR_IP_NOT_ALLOWED.',
  schema: IpFilterConfig,
  checkByBuilding: true,
  create(config, { audit, routeName }) {
    const problems = [...cidrListProblems('allow', config.allow), ...cidrListProblems('deny', config.deny)]
    if (problems.length > 0) throw new PolicyConfigError('ip-filter', routeName, problems)
    const allow = config.allow.length > 0 ? CidrSet.from(config.allow) : undefined
    const deny = CidrSet.from(config.deny)
    return {
      onRequest(ctx) {
        const ip = ctx.clientIp
        const denied = deny.has(ip)
          ? 'deny-list'
          : allow !== undefined && !allow.has(ip)
            ? 'not-allowed'
            : undefined
        if (denied === undefined) return
        audit.emit({
          type: 'ip-filter.deny',
          ...requestFields(ctx),
          decision: 'deny',
          code: 'GW_ERR_IP_NOT_ALLOWED',
          reason: denied,
        })
        throw new GatewayError('GW_ERR_IP_NOT_ALLOWED')
      },
    }
  },
})
