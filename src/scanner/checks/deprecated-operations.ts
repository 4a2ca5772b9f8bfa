/** API9: operations the spec marks deprecated that still answer 2xx. */
import type { Check, Finding } from '../types.js'
import { concretePath, finding, firstUser, is2xx, opOf, requiredQuery } from './probe.js'

export const deprecatedOperations: Check = {
  id: 'deprecated-operations',
  title: 'Deprecated operation still served',
  owasp: 'API9:2023',
  severity: 'low',
  description:
    'Calls the read operations the spec marks `deprecated: true` and reports those that still answer 2xx.',
  why:
    'Deprecated operations tend to miss the checks added to their replacements and are forgotten in ' +
    'reviews; every one still served is attack surface nobody watches.',
  fix:
    'Announce a sunset date (Deprecation and Sunset headers), watch the traffic, then remove the operation ' +
    'or answer 410 Gone.',
  fixExample: 'Deprecation: @1735689600\nSunset: Wed, 01 Jan 2026 00:00:00 GMT\n# after the date: 410 Gone',
  async run(ctx) {
    const user = firstUser(ctx)
    const findings: Finding[] = []
    for (const op of ctx.operations.filter(
      (o) => o.deprecated && (o.method === 'GET' || o.method === 'HEAD'),
    )) {
      const path = concretePath(ctx, op, user)
      if (!path) continue
      const res = await ctx.send(user, { method: op.method, path, query: requiredQuery(ctx, op) })
      if (!is2xx(res.status)) continue
      findings.push(
        finding(this, {
          operation: opOf(op),
          ...(user ? { identity: user } : {}),
          summary: `${op.method} ${op.path} is marked deprecated but still answers ${res.status}${res.headers.sunset ? ` (Sunset: ${res.headers.sunset})` : ''}.`,
          evidence: [{ note: `deprecated operation: ${res.status}`, exchanges: [res.exchange] }],
        }),
      )
    }
    return findings
  },
}
