/** A ScanReport with hostile target content, for the report renderers' tests. */
import type { CheckInfo, ScanReport } from '../../src/scanner/types.js'

/** What a hostile target puts in its responses: script tags, a textarea breakout, ANSI, controls. */
export const HOSTILE_BODY =
  '<script>window.__pwned = 1</script></textarea></pre><img src=x onerror="window.__pwned = 2">' +
  '\x1b[31mRED\x1b[0m ]]> & "quotes" \'single\' \u0000\u0007 \ud800 \u202e'

export const CHECKS: CheckInfo[] = [
  {
    id: 'bola',
    title: 'Broken object level authorization',
    owasp: 'API1:2023',
    severity: 'high',
    description: 'Reads other users\u2019 objects.',
    why: 'Attackers swap ids.',
    fix: 'Check ownership on every object access.',
    fixExample: 'if (order.owner !== user.id) throw forbidden()',
  },
  {
    id: 'verbose-errors',
    title: 'Verbose <errors>',
    owasp: 'API8:2023',
    severity: 'medium',
    description: 'Stack traces in responses.',
    why: 'They reveal internals.',
    fix: 'Answer generic problems.',
    fixExample: 'res.status(500).json({ title: "Internal error" })',
  },
  {
    id: 'security-headers',
    title: 'Missing security headers',
    owasp: 'API8:2023',
    severity: 'low',
    description: 'Security headers absent.',
    why: 'Browsers need them.',
    fix: 'Set them.',
    fixExample: 'X-Content-Type-Options: nosniff',
  },
  {
    id: 'ssrf',
    title: 'Server side request forgery',
    owasp: 'API7:2023',
    severity: 'high',
    description: 'URL fields fetched.',
    why: 'Internal network reachable.',
    fix: 'Allow-list hosts.',
    fixExample: 'allow: [images.example.com]',
  },
]

export function sampleReport(): ScanReport {
  return {
    tool: { name: 'portcullis', version: '0.1.0' },
    target: 'http://127.0.0.1:8080/api',
    spec: 'examples/demo/open api.yaml',
    startedAt: '2026-11-29T15:00:00.000Z',
    finishedAt: '2026-11-29T15:00:12.500Z',
    durationMs: 12500,
    safe: true,
    identities: ['alice', 'bob'],
    checks: CHECKS,
    findings: [
      {
        checkId: 'security-headers',
        title: 'Missing X-Content-Type-Options',
        severity: 'low',
        owasp: 'API8:2023',
        summary: 'Responses lack X-Content-Type-Options.',
        evidence: [],
      },
      {
        checkId: 'verbose-errors',
        title: 'Stack trace in a 500 <b>answer</b>',
        severity: 'medium',
        owasp: 'API8:2023',
        operation: { method: 'GET', path: '/orders/{id}', operationId: 'getOrder' },
        summary: `The error body carries a stack trace: ${HOSTILE_BODY}`,
        evidence: [
          {
            note: 'a quote in the id gives a stack trace </textarea>',
            exchanges: [
              {
                request: {
                  method: 'GET',
                  url: "http://127.0.0.1:8080/api/orders/1'",
                  headers: { authorization: 'Bearer ***' },
                },
                response: {
                  status: 500,
                  headers: { 'content-type': 'text/html', 'x-evil': '<script>window.__pwned=3</script>' },
                  body: HOSTILE_BODY,
                  durationMs: 3.4,
                },
              },
            ],
          },
        ],
      },
      {
        checkId: 'bola',
        title: "Bob reads alice's order",
        severity: 'high',
        owasp: 'API1:2023',
        operation: { method: 'GET', path: '/orders/{id}', operationId: 'getOrder' },
        identity: 'bob',
        summary: "bob's token read alice's order 1.",
        evidence: [
          {
            note: "bob's token read alice's order 1",
            exchanges: [
              {
                request: { method: 'GET', url: 'http://127.0.0.1:8080/api/orders/1', headers: {} },
                response: { status: 200, headers: {}, body: '{"id":1,"owner":"alice"}', durationMs: 2 },
              },
              {
                request: { method: 'GET', url: 'http://127.0.0.1:8080/api/orders/2', headers: {} },
                error: 'timeout',
              },
            ],
          },
        ],
      },
    ],
    skipped: [{ checkId: 'ssrf', reason: 'no URL-valued field <in> the spec' }],
    stats: { requests: 120, errors: 1 },
  }
}
