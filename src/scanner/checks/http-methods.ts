/** API8: TRACE answered (cross-site tracing: the request, cookies and Authorization included, echoed back). */
import type { Check, Finding } from '../types.js'
import { finding, is2xx, sampleResponse } from './probe.js'

export const httpMethods: Check = {
  id: 'http-methods',
  title: 'TRACE method enabled',
  owasp: 'API8:2023',
  severity: 'medium',
  description: 'Sends TRACE to the API root and to a documented path and reports a 2xx answer.',
  why:
    'TRACE echoes the request, headers included: combined with another flaw it lets a script read ' +
    'credentials (cookies, Authorization) it could not read otherwise, and it is never needed in production.',
  fix: 'Refuse TRACE (and every method an operation does not document) with 405, at the server or the gateway.',
  fixExample:
    "if (req.method === 'TRACE') return res.writeHead(405).end()\n# Portcullis refuses TRACE before routing",
  async run(ctx) {
    const sample = await sampleResponse(ctx)
    const paths = [...new Set(['/', ...(sample ? [sample.path] : [])])]
    const findings: Finding[] = []
    for (const path of paths) {
      const res = await ctx.send(undefined, {
        method: 'TRACE',
        path,
        headers: { 'x-portcullis-trace': 'probe' },
      })
      if (!is2xx(res.status)) continue
      const echoed = /^TRACE\s/m.test(res.text) || /x-portcullis-trace/i.test(res.text)
      findings.push(
        finding(this, {
          ...(echoed ? {} : { severity: 'low' as const }),
          summary: `TRACE ${path} answered ${res.status}${echoed ? ' and echoed the request back' : ''}.`,
          evidence: [{ note: `TRACE ${path}: ${res.status}`, exchanges: [res.exchange] }],
        }),
      )
      break
    }
    return findings
  },
}
