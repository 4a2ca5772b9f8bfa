import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import { PolicyAnswer } from '../../gateway/pipeline/answer.js'
import type { RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import { definePolicy, PolicyConfigError } from '../../gateway/pipeline/policy.js'
import { compileLinear, type LinearRegExp, LinearRegExpError } from '../../util/linear-regex.js'
import { CorsConfig } from './schema.js'

/** A serialized origin: scheme, host, optional port; no path, no userinfo. */
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/

/** Origins a pattern must not match when credentials are on: it would reflect any site. */
const PROBES = [
  'https://portcullis-probe.invalid',
  'http://portcullis-probe.invalid',
  'https://evil.example',
  'https://app.example.com.portcullis-probe.invalid',
  'https://portcullis-probeexample.com',
]

const STATE = 'cors'

/** Adds tokens to a response's Vary header (keeping what the upstream listed). */
function addVary(headers: ResponseHead['headers'], tokens: string): void {
  const v = headers.vary
  const have = (Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? v : '').trim()
  if (have === '*') return
  const list = have === '' ? [] : have.split(',').map((s) => s.trim())
  const lower = new Set(list.map((s) => s.toLowerCase()))
  for (const t of tokens.split(', ')) if (!lower.has(t.toLowerCase())) list.push(t)
  headers.vary = list.join(', ')
}

/**
 * Cross-origin resource sharing, decided by the gateway: allowed origins (exact or linear-time
 * patterns), credentials, methods, headers, max age. Preflights are answered here, before
 * authentication and validation (they carry no credentials; see gateway/preflight.ts for their
 * routing). The upstream's own `Access-Control-*` headers are replaced on every response of the
 * route; `Vary: Origin` is always sent. Never `*` or an unlisted origin with credentials.
 */
export const cors = definePolicy({
  id: 'cors',
  priority: 10_400, // after overload shedding, ip-filter and bans; before size limits and authentication
  description:
    'CORS decided by the gateway: allowed origins (exact, or linear-time patterns), credentials, methods, headers, max age; preflights answered before authentication and validation; the upstream’s own CORS headers replaced; never `*` or a reflected origin with credentials.',
  schema: CorsConfig,
  checkByBuilding: true,
  create(config, { routeName, audit }) {
    const problems: string[] = []
    const exact = new Set<string>()
    let any = false
    config.origins.forEach((o, i) => {
      const v = o.trim().toLowerCase().replace(/\/$/, '')
      if (v === '*') any = true
      else if (v === 'null')
        problems.push(
          `origins[${i}]: "null" is not allowed (sandboxed frames and local files send it: any page can)`,
        )
      else if (!ORIGIN.test(v))
        problems.push(
          `origins[${i}]: expected an origin such as https://app.example.com (scheme, host, port; no path), found "${o}"`,
        )
      else exact.add(v)
    })
    if (any && config.credentials)
      problems.push('origins: "*" cannot be combined with credentials (browsers refuse it; list the origins)')
    if (config.credentials && config.allowHeaders.includes('*'))
      problems.push('allowHeaders: "*" is no wildcard with credentials (list the headers)')
    const patterns: LinearRegExp[] = []
    config.originPatterns.forEach((p, i) => {
      let re: LinearRegExp
      try {
        re = compileLinear(`^(?:${p})$`)
      } catch (err) {
        if (!(err instanceof LinearRegExpError)) throw err
        problems.push(`originPatterns[${i}]: ${err.message}`)
        return
      }
      const hit = re.test('null') ? 'null' : config.credentials ? PROBES.find((x) => re.test(x)) : undefined
      if (hit !== undefined)
        problems.push(
          `originPatterns[${i}]: matches "${hit}", so it would allow any site${config.credentials ? ' with credentials' : ''}; anchor it to your domains`,
        )
      patterns.push(re)
    })
    if (problems.length > 0) throw new PolicyConfigError('cors', routeName, problems)

    const allowHeaders = new Set(config.allowHeaders.map((h) => h.toLowerCase()))
    const anyHeader = allowHeaders.has('*')
    const methods = new Set(config.methods)
    const methodList = config.methods.join(', ')
    const expose = config.exposeHeaders.join(', ')
    const maxAge = String(config.maxAgeSec)

    /** The Access-Control-Allow-Origin value for an origin, or undefined when it is not allowed. */
    const allowOrigin = (origin: string): string | undefined => {
      if (origin === 'null' || origin.length > 512) return undefined
      if (exact.has(origin)) return origin
      for (const re of patterns) if (re.test(origin)) return origin
      // `*` is sent literally (never the origin echoed), and only without credentials.
      return any ? '*' : undefined
    }

    function refuse(ctx: RequestContext, origin: string, why: string): never {
      audit.emit({
        type: 'cors.refused',
        ...requestFields(ctx),
        decision: 'deny',
        code: 'GW_ERR_CORS_ORIGIN',
        reason: why,
        data: { origin: origin.slice(0, 256) },
      })
      throw new GatewayError('GW_ERR_CORS_ORIGIN')
    }

    return {
      answersPreflight: true,
      onRequest(ctx) {
        const h = ctx.req.headers
        const origin = h.origin
        if (origin === undefined) return
        const requested = h['access-control-request-method']
        if (ctx.method !== 'OPTIONS' || requested === undefined) {
          if (config.refuseDisallowedOrigins && allowOrigin(origin) === undefined)
            refuse(ctx, origin, 'origin not allowed')
          return
        }
        // A preflight: answered here, never forwarded, no credentials asked for.
        ctx.state[STATE] = 'preflight'
        const acao = allowOrigin(origin)
        if (acao === undefined) refuse(ctx, origin, 'origin not allowed')
        if (!methods.has(requested)) refuse(ctx, origin, 'method not allowed')
        const asked = (h['access-control-request-headers'] ?? '')
          .split(',')
          .map((s) => s.trim().toLowerCase())
          .filter((s) => s !== '')
        if (!anyHeader)
          for (const a of asked) if (!allowHeaders.has(a)) refuse(ctx, origin, 'header not allowed')
        const headers: Record<string, string> = {
          'access-control-allow-origin': acao,
          'access-control-allow-methods': methodList,
          'access-control-max-age': maxAge,
          vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        }
        if (asked.length > 0) headers['access-control-allow-headers'] = asked.join(', ')
        if (config.credentials) headers['access-control-allow-credentials'] = 'true'
        throw new PolicyAnswer(204, headers)
      },
      onResponse(ctx, res) {
        if (ctx.state[STATE] === 'preflight' && res.status === 204) return
        const headers = res.headers
        // The upstream's own CORS headers never reach the client: this policy decides.
        for (const k of Object.keys(headers)) if (k.startsWith('access-control-')) delete headers[k]
        addVary(headers, 'Origin')
        const origin = ctx.req.headers.origin
        if (origin === undefined) return
        // A preflight refused (here, by routing or by the spec) carries no CORS headers at all.
        if (ctx.method === 'OPTIONS' && ctx.req.headers['access-control-request-method'] !== undefined) return
        const acao = allowOrigin(origin)
        if (acao === undefined) return
        headers['access-control-allow-origin'] = acao
        if (config.credentials) headers['access-control-allow-credentials'] = 'true'
        if (expose !== '') headers['access-control-expose-headers'] = expose
      },
    }
  },
})
