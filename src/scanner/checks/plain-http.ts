/** API8: the target is served over plain http on a non-loopback host. */
import type { Check } from '../types.js'
import { finding, isLoopbackHost } from './probe.js'

export const plainHttp: Check = {
  id: 'plain-http',
  title: 'API served over plain HTTP',
  owasp: 'API8:2023',
  severity: 'info',
  description: 'Reports a target URL with the http scheme on a host that is not loopback.',
  why:
    'Over plain HTTP every token, password and answer can be read and changed by anyone on the path ' +
    '(Wi-Fi, proxies, ISPs).',
  fix: 'Serve the API over HTTPS only, redirect or refuse http, and send Strict-Transport-Security.',
  fixExample:
    '# terminate TLS in front of the API (Portcullis listeners can serve TLS)\nStrict-Transport-Security: max-age=31536000',
  async run(ctx) {
    if (ctx.target.protocol !== 'http:' || isLoopbackHost(ctx.target.hostname)) return []
    return [
      finding(this, {
        summary: `The scan target ${ctx.target.origin} is plain HTTP on a non-loopback host.`,
        evidence: [],
      }),
    ]
  },
}
