/**
 * A real RFC 7662 token introspection endpoint for tests, on 127.0.0.1:0.
 *
 * POST /introspect (any path ending in /introspect) with an application/x-www-form-urlencoded
 * `token` (and optional `token_type_hint`). The client authenticates with HTTP Basic or
 * `client_id` + `client_secret` form fields (RFC 6749 §2.3.1); wrong credentials get 401
 * `invalid_client`. Known tokens answer their claims with `active: true` until their `exp`;
 * inactive, expired and unknown tokens answer `{"active":false}`.
 *
 * Failure modes, for everyone or per endpoint URL (query parameters):
 * `delayMs` (slow), `status` (answer that status), `malformed` (`json`: broken JSON, `array`:
 * a JSON array, `html`: a text/html page, `huge`: a 1 MiB body), and `stop()` (nothing listening).
 */
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface TokenClaims {
  active?: boolean
  scope?: string
  sub?: string
  username?: string
  client_id?: string
  /** Seconds since the epoch. */
  exp?: number
  iat?: number
  aud?: string | string[]
  iss?: string
  [member: string]: unknown
}

export interface IntrospectionCall {
  token: string | undefined
  tokenTypeHint: string | undefined
  /** How the client authenticated: 'basic', 'post', or 'none'. */
  auth: 'basic' | 'post' | 'none'
  authorized: boolean
  contentType: string | undefined
  path: string
}

export interface IntrospectionServer {
  /** http://127.0.0.1:port */
  url: string
  /** `${url}/introspect` */
  endpoint: string
  port: number
  /** Every introspection request received, in order (authorized or not). */
  calls: IntrospectionCall[]
  /** Authorized calls that asked about `token`. */
  callsFor(token: string): number
  /** Adds or replaces a token; `delayMs` delays the answers about it. */
  setToken(token: string, claims: TokenClaims, opts?: { delayMs?: number }): void
  removeToken(token: string): void
  /** Delay for every answer (ms); 0 for none. */
  delayMs: number
  /** Stops listening (connections are cut): the endpoint is "down". */
  stop(): Promise<void>
  close(): Promise<void>
}

export interface IntrospectionServerOptions {
  clientId: string
  clientSecret: string
  tokens?: Record<string, TokenClaims>
}

function formDecode(v: string): string {
  return decodeURIComponent(v.replace(/\+/g, ' '))
}

export async function startIntrospectionServer(
  opts: IntrospectionServerOptions,
): Promise<IntrospectionServer> {
  const tokens = new Map<string, { claims: TokenClaims; delayMs: number }>()
  for (const [t, c] of Object.entries(opts.tokens ?? {})) tokens.set(t, { claims: c, delayMs: 0 })
  const calls: IntrospectionCall[] = []
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const state = { delayMs: 0 }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        if (res.destroyed) return
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
          ...headers,
        })
        res.end(body)
      }
      if (req.method !== 'POST' || !u.pathname.endsWith('/introspect')) {
        send(404, '{"error":"not_found"}')
        return
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
      let auth: IntrospectionCall['auth'] = 'none'
      let id: string | undefined
      let secret: string | undefined
      const authz = req.headers.authorization
      if (authz?.toLowerCase().startsWith('basic ')) {
        auth = 'basic'
        const decoded = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8')
        const colon = decoded.indexOf(':')
        if (colon !== -1) {
          id = formDecode(decoded.slice(0, colon))
          secret = formDecode(decoded.slice(colon + 1))
        }
      } else if (form.has('client_id')) {
        auth = 'post'
        id = form.get('client_id') ?? undefined
        secret = form.get('client_secret') ?? undefined
      }
      const authorized = id === opts.clientId && secret === opts.clientSecret
      const token = form.get('token') ?? undefined
      calls.push({
        token,
        tokenTypeHint: form.get('token_type_hint') ?? undefined,
        auth,
        authorized,
        contentType: req.headers['content-type'],
        path: req.url ?? '',
      })
      if (!authorized) {
        send(401, '{"error":"invalid_client"}', { 'www-authenticate': 'Basic realm="introspection"' })
        return
      }
      const known = token === undefined ? undefined : tokens.get(token)
      const delay = Number(u.searchParams.get('delayMs') ?? 0) || known?.delayMs || state.delayMs
      const answer = () => {
        const status = Number(u.searchParams.get('status') ?? 200)
        const malformed = u.searchParams.get('malformed')
        if (status !== 200) return send(status, '{"error":"server_error"}')
        if (malformed === 'json') return send(200, '{"active": tru')
        if (malformed === 'array') return send(200, '[{"active":true}]')
        if (malformed === 'html') return send(200, '<html>login</html>', { 'content-type': 'text/html' })
        if (malformed === 'huge') return send(200, `{"active":true,"pad":"${'x'.repeat(1024 * 1024)}"}`)
        if (token === undefined) return send(400, '{"error":"invalid_request"}')
        const c = known?.claims
        const expired = c?.exp !== undefined && c.exp * 1000 <= Date.now()
        if (!c || c.active === false || expired) return send(200, '{"active":false}')
        send(200, JSON.stringify({ ...c, active: true }))
      }
      if (delay > 0) {
        const t = setTimeout(() => {
          timers.delete(t)
          answer()
        }, delay)
        timers.add(t)
      } else answer()
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.keepAliveTimeout = 30000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= new Promise<void>((r) => {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      server.close(() => r())
      for (const s of sockets) s.destroy()
    })
    return stopped
  }
  return {
    url,
    endpoint: `${url}/introspect`,
    port,
    calls,
    callsFor: (token) => calls.filter((c) => c.authorized && c.token === token).length,
    setToken: (token, claims, o = {}) => {
      tokens.set(token, { claims, delayMs: o.delayMs ?? 0 })
    },
    removeToken: (token) => {
      tokens.delete(token)
    },
    get delayMs() {
      return state.delayMs
    },
    set delayMs(ms: number) {
      state.delayMs = ms
    },
    stop,
    close: stop,
  }
}
