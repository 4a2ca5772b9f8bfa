/**
 * API8: error answers that carry stack traces or database errors, provoked with malformed JSON
 * bodies and ill-typed path and query values.
 */
import type { Operation } from '../../openapi/index.js'
import type { Check, Finding, ScanRequest, ScanResponse } from '../types.js'
import { concretePath, finding, firstUser, opOf, requiredQuery } from './probe.js'
import { matchSignature, type Signature, SQL_ERRORS, STACK_TRACES } from './signatures.js'

const MAX_PROBES = 20
const BAD_VALUE = 'pcl\'"]}{%'

export const verboseErrors: Check = {
  id: 'verbose-errors',
  title: 'Verbose error messages',
  owasp: 'API8:2023',
  severity: 'medium',
  description:
    'Provokes errors (malformed JSON, ill-typed path and query values) and looks for stack traces and ' +
    'database error messages in the answers.',
  why:
    'Stack traces and SQL errors reveal file paths, libraries and versions, queries and table names: a map ' +
    'for the next attack, and often the confirmation an injection needs.',
  fix:
    'Catch errors at the edge and answer a generic problem (status, title, a request id); log the details ' +
    'server-side only. Validate inputs before they reach the database.',
  fixExample:
    "app.use((err, req, res, next) => {\n  log.error({ err, id: req.id })\n  res.status(500).json({ title: 'Internal error', instance: req.id })\n})",
  async run(ctx) {
    const user = firstUser(ctx)
    const probes: { op: (typeof ctx.operations)[number]; req: ScanRequest; what: string }[] = []
    for (const op of ctx.operations) {
      if (op.method === 'POST' && op.requestBody) {
        const path = concretePath(ctx, op, user)
        if (path)
          probes.push({
            op,
            what: 'a malformed JSON body',
            req: {
              method: 'POST',
              path,
              query: requiredQuery(ctx, op),
              body: '{"pcl": [',
              headers: { 'content-type': 'application/json' },
            },
          })
      }
      if (op.method === 'GET' && op.path.includes('{')) {
        const path = op.path.replace(/\{[^{}/]+\}/g, encodeURIComponent(BAD_VALUE))
        probes.push({
          op,
          what: 'an ill-typed path parameter',
          req: { method: 'GET', path, query: requiredQuery(ctx, op) },
        })
      }
      const q = op.method === 'GET' ? op.parameters.find((p) => p.in === 'query') : undefined
      if (q) {
        const path = concretePath(ctx, op, user)
        if (path)
          probes.push({
            op,
            what: `an ill-typed query parameter "${q.name}"`,
            req: { method: 'GET', path, query: { ...requiredQuery(ctx, op), [q.name]: BAD_VALUE } },
          })
      }
    }
    // One finding per kind of leak (stack trace, database error), listing every operation that leaks it.
    const hits = new Map<
      string,
      { sig: Signature; items: { op: Operation; what: string; res: ScanResponse }[] }
    >()
    const seen = new Set<string>()
    for (const p of probes.slice(0, MAX_PROBES)) {
      const key = `${p.op.method} ${p.op.path}`
      if (seen.has(key)) continue
      const res = await ctx.send(user, p.req)
      if (res.status < 400) continue
      const sig = matchSignature(res.text, STACK_TRACES) ?? matchSignature(res.text, SQL_ERRORS)
      if (!sig) continue
      seen.add(key)
      const kind = sig.kind === 'sql' ? 'sql' : 'stack'
      const entry = hits.get(kind) ?? { sig, items: [] }
      entry.items.push({ op: p.op, what: p.what, res })
      hits.set(kind, entry)
    }
    const findings: Finding[] = []
    for (const { sig, items } of hits.values()) {
      const first = items[0] as (typeof items)[number]
      const ops = items.map((i) => `${i.op.method} ${i.op.path}`)
      findings.push(
        finding(this, {
          title: sig.kind === 'sql' ? 'Database error in an answer' : 'Stack trace in an answer',
          operation: opOf(first.op),
          ...(user ? { identity: user } : {}),
          summary:
            `${ops.length === 1 ? ops[0] : `${ops.length} operations (${ops.join(', ')})`} answered ` +
            `${first.res.status} with a ${sig.label} to ${first.what}${ops.length > 1 ? ' and similar input' : ''}.`,
          evidence: items.slice(0, 5).map((i) => ({
            note: `${i.op.method} ${i.op.path}, ${i.what}: ${i.res.status} with a ${sig.label}`,
            exchanges: [i.res.exchange],
          })),
        }),
      )
    }
    return findings
  },
}
