/** API8: security headers an API should send (nosniff, framing, HSTS on https, no-store on authenticated answers). */
import type { Check, Exchange } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, is2xx, opOf, sampleResponse } from './probe.js'

export const securityHeaders: Check = {
  id: 'security-headers',
  title: 'Missing security headers',
  owasp: 'API8:2023',
  severity: 'low',
  description:
    'Checks an authenticated answer for X-Content-Type-Options: nosniff, framing protection ' +
    '(X-Frame-Options or CSP frame-ancestors), Strict-Transport-Security on https, and Cache-Control ' +
    'no-store/private on authenticated data.',
  why:
    'Without them browsers may sniff JSON as HTML (XSS), frame the API (clickjacking), downgrade to http, ' +
    'or caches may keep one user’s data and serve it to another.',
  fix: 'Send the headers on every answer, errors included — in the framework, or in front of it with a gateway.',
  fixExample:
    "X-Content-Type-Options: nosniff\nX-Frame-Options: DENY\nContent-Security-Policy: frame-ancestors 'none'\n" +
    'Strict-Transport-Security: max-age=31536000; includeSubDomains\nCache-Control: no-store\n' +
    '# Portcullis (config top level, every route): policies: { security-headers: {} }',
  async run(ctx) {
    const sample = await sampleResponse(ctx)
    // Every authenticated 2xx answer of a documented operation the scan saw, the sample included.
    const seen = (ctx.observed?.() ?? []).filter((a) => a.authenticated && is2xx(a.status) && a.operation)
    const answers =
      seen.length > 0
        ? seen
        : sample
          ? [
              {
                headers: sample.res.headers,
                exchange: sample.res.exchange,
                operation: `${sample.op.method} ${sample.op.path}`,
                authenticated: sample.identity !== undefined,
                status: sample.res.status,
              },
            ]
          : []
    if (answers.length === 0) throw new SkipCheck('no GET operation answered')
    const missingAt = new Map<string, { op: string; exchange: Exchange }>()
    let affected = 0
    for (const a of answers) {
      const missing = missingHeaders(
        a.headers,
        ctx.target.protocol === 'https:',
        a.authenticated && is2xx(a.status),
      )
      if (missing.length > 0) affected++
      for (const m of missing)
        if (!missingAt.has(m)) missingAt.set(m, { op: a.operation ?? '', exchange: a.exchange })
    }
    if (missingAt.size === 0) return []
    const first = [...missingAt.values()][0] as { op: string; exchange: Exchange }
    const op =
      sample && `${sample.op.method} ${sample.op.path}` === first.op
        ? sample.op
        : ctx.operations.find((o) => `${o.method} ${o.path}` === first.op)
    const missing = [...missingAt.keys()]
    return [
      finding(this, {
        ...(op ? { operation: opOf(op) } : {}),
        summary: `${affected} of ${answers.length} authenticated answers lacked security headers: ${missing.join(', ')} (first seen on ${first.op}).`,
        evidence: [...missingAt]
          .slice(0, 3)
          .map(([m, x]) => ({ note: `${x.op}: no ${m}`, exchanges: [x.exchange] })),
      }),
    ]
  },
}

/** The security headers an answer lacks. */
export function missingHeaders(h: Record<string, string>, https: boolean, authenticated: boolean): string[] {
  const missing: string[] = []
  if (h['x-content-type-options']?.trim().toLowerCase() !== 'nosniff')
    missing.push('X-Content-Type-Options: nosniff')
  const csp = h['content-security-policy'] ?? ''
  if (h['x-frame-options'] === undefined && !/frame-ancestors/i.test(csp))
    missing.push("X-Frame-Options (or CSP frame-ancestors 'none')")
  if (https && h['strict-transport-security'] === undefined) missing.push('Strict-Transport-Security')
  const cc = (h['cache-control'] ?? '').toLowerCase()
  if (authenticated && !/no-store|private/.test(cc))
    missing.push('Cache-Control: no-store (authenticated data)')
  return missing
}
