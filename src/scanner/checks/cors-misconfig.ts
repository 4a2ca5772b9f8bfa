/** API8: CORS that lets any web page read authenticated answers (reflected Origin or `null` with credentials). */
import type { Check, Finding } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, opOf, requiredQuery, sampleResponse } from './probe.js'

const EVIL = 'https://evil.portcullis-scan.invalid'

export const corsMisconfig: Check = {
  id: 'cors-misconfig',
  title: 'Permissive CORS',
  owasp: 'API8:2023',
  severity: 'high',
  description:
    'Sends requests (and a preflight) with a foreign Origin and with Origin: null, and checks whether the ' +
    'API allows them, with credentials.',
  why:
    'When the API reflects any Origin with Access-Control-Allow-Credentials: true, any web page a user ' +
    "visits can call the API with the user's cookies and read the answers: the user's data and CSRF tokens.",
  fix:
    'Allow an explicit list of trusted origins, never reflect the Origin header, never allow `null`, and ' +
    'allow credentials only for those listed origins.',
  fixExample:
    "const ALLOWED = new Set(['https://app.example.com'])\n" +
    "if (ALLOWED.has(req.headers.origin)) res.setHeader('Access-Control-Allow-Origin', req.headers.origin)",
  async run(ctx) {
    const sample = await sampleResponse(ctx)
    if (!sample) throw new SkipCheck('no GET operation answered')
    const { op, path, identity } = sample
    const query = requiredQuery(ctx, op)
    const findings: Finding[] = []
    for (const origin of [EVIL, 'null']) {
      const res = await ctx.send(identity, { method: 'GET', path, query, headers: { origin } })
      const acao = res.headers['access-control-allow-origin']
      const creds = res.headers['access-control-allow-credentials']?.trim().toLowerCase() === 'true'
      let pre = undefined as typeof res | undefined
      if (acao === undefined) {
        pre = await ctx.send(undefined, {
          method: 'OPTIONS',
          path,
          query,
          headers: {
            origin,
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'authorization',
          },
        })
      }
      const seen = pre ?? res
      const allowed = seen.headers['access-control-allow-origin']
      const withCreds = pre
        ? pre.headers['access-control-allow-credentials']?.trim().toLowerCase() === 'true'
        : creds
      if (allowed === undefined) continue
      const reflected = allowed === origin
      if (reflected && withCreds) {
        findings.push(
          finding(this, {
            title:
              origin === 'null'
                ? 'CORS allows Origin null with credentials'
                : 'CORS reflects any Origin with credentials',
            severity: 'high',
            operation: opOf(op),
            summary: `The API answered Origin: ${origin} with Access-Control-Allow-Origin: ${allowed} and Access-Control-Allow-Credentials: true: ${origin === 'null' ? 'sandboxed iframes and local files' : 'any web site'} can read authenticated answers.`,
            evidence: [{ note: `Origin: ${origin} allowed with credentials`, exchanges: [seen.exchange] }],
          }),
        )
        break
      }
      if (allowed === '*' && withCreds) {
        findings.push(
          finding(this, {
            title: 'CORS wildcard with credentials',
            severity: 'medium',
            operation: opOf(op),
            summary:
              'The API sends Access-Control-Allow-Origin: * together with Access-Control-Allow-Credentials: true; browsers refuse that pair, and it shows the CORS policy is not thought through.',
            evidence: [{ note: 'wildcard origin with credentials', exchanges: [seen.exchange] }],
          }),
        )
        break
      }
      if (reflected && origin !== 'null') {
        findings.push(
          finding(this, {
            title: 'CORS reflects any Origin',
            severity: 'low',
            operation: opOf(op),
            summary: `The API reflects a foreign Origin (${origin}) without credentials: any site can read its unauthenticated answers.`,
            evidence: [{ note: 'foreign Origin reflected', exchanges: [seen.exchange] }],
          }),
        )
        break
      }
    }
    return findings
  },
}
