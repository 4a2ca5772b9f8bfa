/** API2: a bearer token or API key accepted in a URL query parameter. */
import type { Check } from '../types.js'
import { SkipCheck } from '../types.js'
import { acceptedLike, authProbe, finding, opOf } from './probe.js'

const QUERY_NAMES = ['access_token', 'token', 'jwt', 'api_key', 'apikey', 'key', 'auth']

export const tokenInUrl: Check = {
  id: 'token-in-url',
  title: 'Credential accepted in the URL',
  owasp: 'API2:2023',
  severity: 'medium',
  description:
    "Moves the identity's token (or API key) from its header into common query parameters " +
    '(access_token, token, api_key, …) and reports when the API accepts it there.',
  why:
    'URLs end up in access logs, proxy logs, browser history and Referer headers; a token accepted in ' +
    'the query string leaks through all of them and can be replayed by whoever reads those logs.',
  fix:
    'Accept credentials only in the Authorization header (or a dedicated header for API keys); reject ' +
    'requests that carry them in the query string.',
  fixExample:
    "if (req.query.access_token || req.query.token) return res.status(400).json({ title: 'credentials in URL' })\n" +
    "const token = req.headers.authorization?.replace(/^Bearer /, '')",
  async run(ctx) {
    if (!ctx.credentials) throw new SkipCheck('the engine does not expose credentials')
    const probe = await authProbe(ctx)
    if (!probe) throw new SkipCheck('no operation that answers 2xx with credentials and 401/403 without')
    const creds = await ctx.credentials(probe.identity)
    const auth = creds?.headers.authorization
    let value: string | undefined
    const names = [...QUERY_NAMES]
    if (auth && /^bearer\s+/i.test(auth)) value = auth.replace(/^bearer\s+/i, '')
    else {
      // An API key or session token in a header of its own (X-Api-Key, X-Session, …).
      const header =
        creds?.credentialHeader &&
        creds.credentialHeader !== 'cookie' &&
        creds.credentialHeader !== 'authorization'
          ? creds.credentialHeader
          : Object.keys(creds?.headers ?? {}).find((k) => /api[-_]?key|token|session/i.test(k))
      if (header) {
        value = creds?.headers[header]
        // Its own name too (`?x-session=`, `?session=`).
        for (const n of [header, header.replace(/^x-/, '')]) if (!names.includes(n)) names.push(n)
      }
    }
    if (!value) throw new SkipCheck('the identity has no bearer token or credential header')
    for (const name of names) {
      const res = await ctx.send(probe.identity, {
        method: 'GET',
        path: probe.path,
        query: { ...probe.query, [name]: value },
        noAuth: true,
      })
      if (!acceptedLike(probe, res)) continue
      return [
        finding(this, {
          operation: opOf(probe.op),
          identity: probe.identity,
          summary: `${probe.identity}'s credential sent as the query parameter "${name}" (no header) was accepted: ${res.status}, where no credential gets ${probe.anonymous.status}.`,
          evidence: [
            { note: 'without credentials: refused', exchanges: [probe.anonymous.exchange] },
            { note: `credential in ?${name}= accepted`, exchanges: [res.exchange] },
          ],
        }),
      ]
    }
    return []
  },
}
