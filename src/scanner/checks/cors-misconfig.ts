/** API8: CORS that lets any web page read authenticated answers (reflected Origin or `null` with credentials). */
import type { Check, Finding } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, opOf, requiredQuery, sampleResponse } from './probe.js'

const EVIL = 'https://evil.portcullis-scan.invalid'

/** Origins to try: a foreign one, `null`, and look-alikes of the target's own origin. */
export function originVariants(target: URL): { origin: string; kind: string; label: string }[] {
  const scheme = target.protocol.replace(':', '')
  const other = scheme === 'https' ? 'http' : 'https'
  const port = target.port ? `:${target.port}` : ''
  const h = target.hostname
  return [
    { origin: EVIL, kind: 'foreign', label: 'any Origin' },
    { origin: 'null', kind: 'null', label: 'Origin null' },
    {
      origin: `${scheme}://pcl-evil${h}${port}`,
      kind: 'suffix',
      label: 'an Origin that merely ends with its host',
    },
    {
      origin: `${scheme}://${h}.pcl-evil.invalid${port}`,
      kind: 'prefix',
      label: 'an Origin that merely starts with its host',
    },
    { origin: `${scheme}://pcl-evil.${h}${port}`, kind: 'subdomain', label: 'any subdomain as Origin' },
    { origin: `${other}://${target.host}`, kind: 'scheme', label: `its own host over ${other}` },
  ]
}

export const corsMisconfig: Check = {
  id: 'cors-misconfig',
  title: 'Permissive CORS',
  owasp: 'API8:2023',
  severity: 'high',
  description:
    'Sends requests (and a preflight) with a foreign Origin, with Origin: null, and with look-alikes of the ' +
    "target's own origin (its host as a suffix or a prefix of another host, a subdomain, the other scheme), " +
    'and checks whether the API allows them, with credentials.',
  why:
    'When the API reflects any Origin with Access-Control-Allow-Credentials: true, any web page a user ' +
    "visits can call the API with the user's cookies and read the answers: the user's data and CSRF tokens. " +
    'A check that only looks at the end or the start of the Origin (`endsWith(host)`) is the same flaw: ' +
    'attackers register evilexample.com or example.com.evil.net.',
  fix:
    'Allow an explicit list of trusted origins compared in full, never reflect the Origin header, never allow ' +
    '`null`, and allow credentials only for those listed origins.',
  fixExample:
    "const ALLOWED = new Set(['https://app.example.com'])\n" +
    "if (ALLOWED.has(req.headers.origin)) res.setHeader('Access-Control-Allow-Origin', req.headers.origin)",
  async run(ctx) {
    const sample = await sampleResponse(ctx)
    if (!sample) throw new SkipCheck('no GET operation answered')
    const { op, path, identity } = sample
    const query = requiredQuery(ctx, op)
    const findings: Finding[] = []
    for (const { origin, kind, label } of originVariants(ctx.target)) {
      const res = await ctx.send(identity, { method: 'GET', path, query, headers: { origin } })
      if (res.status === 0) continue
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
        if (pre.status === 0) continue
      }
      const seen = pre ?? res
      const allowed = seen.headers['access-control-allow-origin']
      const withCreds = pre
        ? pre.headers['access-control-allow-credentials']?.trim().toLowerCase() === 'true'
        : creds
      if (allowed === undefined) continue
      const reflected = allowed === origin
      if (reflected && withCreds) {
        // Subdomains and the other scheme need a second flaw to exploit (a taken-over subdomain,
        // an attacker on the network); an http Origin only matters for an https API.
        if (kind === 'scheme' && ctx.target.protocol !== 'https:') continue
        const weaker = kind === 'subdomain' || kind === 'scheme'
        findings.push(
          finding(this, {
            title:
              kind === 'null'
                ? 'CORS allows Origin null with credentials'
                : kind === 'foreign'
                  ? 'CORS reflects any Origin with credentials'
                  : `CORS trusts ${label} with credentials`,
            severity: weaker ? 'medium' : 'high',
            operation: opOf(op),
            summary: `The API answered Origin: ${origin} with Access-Control-Allow-Origin: ${allowed} and Access-Control-Allow-Credentials: true: ${kind === 'null' ? 'sandboxed iframes and local files' : kind === 'foreign' ? 'any web site' : `a site on ${label.replace(/^an? /, '')}`} can read authenticated answers.`,
            evidence: [{ note: `Origin: ${origin} allowed with credentials`, exchanges: [seen.exchange] }],
          }),
        )
        if (kind === 'foreign') break
        continue
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
      if (reflected && kind === 'foreign') {
        findings.push(
          finding(this, {
            title: 'CORS reflects any Origin',
            severity: 'low',
            operation: opOf(op),
            summary: `The API reflects a foreign Origin (${origin}) without credentials: any site can read its unauthenticated answers.`,
            evidence: [{ note: 'foreign Origin reflected', exchanges: [seen.exchange] }],
          }),
        )
      }
    }
    return findings
  },
}
