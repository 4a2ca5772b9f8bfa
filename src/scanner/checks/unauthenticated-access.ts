/** API2: operations the spec protects that answer 2xx without any credentials. */
import type { Check, Finding } from '../types.js'
import { concretePath, finding, is2xx, opOf, requiredQuery, requiresAuth } from './probe.js'

const MAX_OPERATIONS = 40

export const unauthenticatedAccess: Check = {
  id: 'unauthenticated-access',
  title: 'Protected operation answers without credentials',
  owasp: 'API2:2023',
  severity: 'high',
  description:
    'Calls every read operation that the OpenAPI document protects with a security requirement, without ' +
    'any credentials, and reports those that answer 2xx.',
  why:
    'An operation documented as protected but served to anyone exposes its data to every client on the ' +
    'network; it is usually a route registered outside the authentication middleware.',
  fix:
    'Enforce authentication centrally (a gateway or a global middleware that denies by default) and mark ' +
    'public operations explicitly, instead of adding authentication route by route.',
  fixExample:
    "app.use(requireAuth({ except: ['/health', '/login'] }))   // deny by default\n" +
    '# or in front of it, a Portcullis route policy: jwt-auth: { algorithms: [RS256], issuer: …, audience: … }',
  async run(ctx) {
    const findings: Finding[] = []
    const owner = ctx.identities.find((i) => !i.anonymous)?.name
    const ops = ctx.operations.filter(
      (op) => (op.method === 'GET' || op.method === 'HEAD') && requiresAuth(op),
    )
    for (const op of ops.slice(0, MAX_OPERATIONS)) {
      const path = concretePath(ctx, op, owner)
      if (!path) continue
      const res = await ctx.send(undefined, { method: op.method, path, query: requiredQuery(ctx, op) })
      if (!is2xx(res.status)) continue
      findings.push(
        finding(this, {
          operation: opOf(op),
          summary: `${op.method} ${op.path} requires ${describeSecurity(op.security)} in the spec but answered ${res.status} to a request without credentials.`,
          evidence: [{ note: 'request without any credentials answered 2xx', exchanges: [res.exchange] }],
        }),
      )
    }
    return findings
  },
}

function describeSecurity(sec: readonly Record<string, readonly string[]>[] | undefined): string {
  const names = [...new Set((sec ?? []).flatMap((r) => Object.keys(r)))]
  return names.length > 0 ? names.join(' or ') : 'credentials'
}
