/** API8: security headers an API should send (nosniff, framing, HSTS on https, no-store on authenticated answers). */
import type { Check } from '../types.js'
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
    if (!sample) throw new SkipCheck('no GET operation answered')
    const h = sample.res.headers
    const missing: string[] = []
    if (h['x-content-type-options']?.trim().toLowerCase() !== 'nosniff')
      missing.push('X-Content-Type-Options: nosniff')
    const csp = h['content-security-policy'] ?? ''
    if (h['x-frame-options'] === undefined && !/frame-ancestors/i.test(csp))
      missing.push("X-Frame-Options (or CSP frame-ancestors 'none')")
    if (ctx.target.protocol === 'https:' && h['strict-transport-security'] === undefined)
      missing.push('Strict-Transport-Security')
    const authenticated = sample.identity !== undefined && is2xx(sample.res.status)
    const cc = (h['cache-control'] ?? '').toLowerCase()
    if (authenticated && !/no-store|private/.test(cc))
      missing.push('Cache-Control: no-store (authenticated data)')
    if (missing.length === 0) return []
    return [
      finding(this, {
        operation: opOf(sample.op),
        summary: `${sample.op.method} ${sample.op.path} answered without ${missing.join(', ')}.`,
        evidence: [{ note: `headers missing: ${missing.join(', ')}`, exchanges: [sample.res.exchange] }],
      }),
    ]
  },
}
