/**
 * The dashboard on the admin listener, under /ui:
 *
 *   GET  /ui                  the page (a shell: the bundled script renders everything)
 *   GET  /ui/assets/app.js    the script, GET /ui/assets/app.css the styles (bundled at build time)
 *   POST /ui/login            { token } → sets the session cookie, answers { csrf }
 *   GET  /ui/session          { csrf } for a valid session, else 401
 *   POST /ui/logout           ends the session
 *   ANY  /ui/api/v1/…         the admin API (src/admin), authenticated by the session
 *   GET  /ui/api/live         server-sent events: this gateway's requests as they finish (redacted)
 *
 * Sign-in takes the admin token once; the session is a random 256-bit id in an HttpOnly,
 * SameSite=Strict cookie scoped to /ui (kept as its SHA-256 here; 8 h at most, 1 h idle; at most
 * {@link MAX_SESSIONS}). Every change (any method but GET/HEAD) must carry the session's CSRF token
 * in `X-CSRF-Token` and, when the browser sends them, an `Origin` equal to the listener's own and
 * `Sec-Fetch-Site: same-origin`; sign-in checks the same headers. Failed sign-ins are limited per
 * client address. Every answer carries a strict Content-Security-Policy (scripts and styles from
 * this origin only, no inline code, requests to this origin only, no framing).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { AdminApi } from '../admin/api.js'
import { createTokenCheck } from '../admin/auth.js'
import { readJsonBody } from '../admin/http.js'
import { APP_CSS, APP_CSS_SHA256, APP_JS, APP_JS_SHA256 } from './assets.generated.js'
import type { Telemetry } from './telemetry.js'

export const DASHBOARD_PREFIX = '/ui'
export const SESSION_COOKIE = 'pcl_ui'
export const MAX_SESSIONS = 64
const SESSION_MAX_MS = 8 * 3600_000
const SESSION_IDLE_MS = 3600_000
/** Failed sign-ins per client address per minute before 429. */
const MAX_FAILED_LOGINS = 10
const MAX_LOGIN_SOURCES = 1000
const MAX_LIVE_BUFFER = 256 * 1024

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Portcullis dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/app.css">
<script src="/ui/assets/app.js" defer></script>
</head>
<body><div id="app"></div></body>
</html>
`

interface Session {
  csrf: string
  created: number
  lastSeen: number
}

export function isDashboardPath(path: string): boolean {
  return path === DASHBOARD_PREFIX || path.startsWith(`${DASHBOARD_PREFIX}/`)
}

export interface DashboardOptions {
  api: AdminApi
  /** The admin token (`admin.token`): the sign-in secret. */
  token: string
  logger: Logger
  telemetry?: Telemetry | undefined
  now?: () => number
}

export interface Dashboard {
  handle(req: IncomingMessage, res: ServerResponse): void
  /** Ends the live streams and forgets the sessions. */
  close(): void
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url')

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headers.cookie
  if (raw === undefined) return undefined
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(sha(a))
  const y = Buffer.from(sha(b))
  return timingSafeEqual(x, y) && a.length === b.length
}

/**
 * @example
 * const dashboard = createDashboard({ api, token: config.admin.token, logger, telemetry })
 * if (isDashboardPath(path)) dashboard.handle(req, res)
 */
export function createDashboard(o: DashboardOptions): Dashboard {
  const logger = o.logger.child({ component: 'dashboard' })
  const now = o.now ?? Date.now
  const checkToken = createTokenCheck(o.token)
  const sessions = new Map<string, Session>()
  const failed = new Map<string, { count: number; since: number }>()
  const streams = new Set<ServerResponse>()

  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: string,
    type: string,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...extra,
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  const json = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ) => send(req, res, status, JSON.stringify(body), 'application/json; charset=utf-8', extra)
  const problem = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    title: string,
    extra: Record<string, string> = {},
  ) => json(req, res, status, { status, title }, extra)

  const session = (req: IncomingMessage): Session | undefined => {
    const v = cookieValue(req, SESSION_COOKIE)
    if (v === undefined || !/^[A-Za-z0-9_-]{43}$/.test(v)) return undefined
    const key = sha(v)
    const s = sessions.get(key)
    if (s === undefined) return undefined
    const t = now()
    if (t - s.created > SESSION_MAX_MS || t - s.lastSeen > SESSION_IDLE_MS) {
      sessions.delete(key)
      return undefined
    }
    s.lastSeen = t
    return s
  }

  /** The origin this listener is reached at, from the Host header the browser sent. */
  const ownOrigin = (req: IncomingMessage) =>
    `${(req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'}://${req.headers.host ?? ''}`

  /** Cross-site signals: a foreign Origin, or Sec-Fetch-Site other than same-origin. */
  const crossSite = (req: IncomingMessage): string | undefined => {
    const origin = req.headers.origin
    if (origin !== undefined && origin !== ownOrigin(req)) return 'foreign origin'
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return `sec-fetch-site ${site}`
    return undefined
  }

  const login = async (req: IncomingMessage, res: ServerResponse) => {
    const who = req.socket.remoteAddress ?? ''
    const t = now()
    const f = failed.get(who)
    if (f !== undefined && t - f.since < 60_000 && f.count >= MAX_FAILED_LOGINS) {
      problem(req, res, 429, 'Too many failed sign-ins', { 'retry-after': '60' })
      return
    }
    const cross = crossSite(req)
    if (cross !== undefined) {
      logger.warn({ remote: who, why: cross }, 'dashboard: cross-site sign-in refused')
      problem(req, res, 403, 'Cross-site request refused')
      return
    }
    const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
    if (ct !== 'application/json') {
      problem(req, res, 415, 'Send application/json', { connection: 'close' })
      return
    }
    let body: unknown
    try {
      body = await readJsonBody(req, 4096)
    } catch {
      problem(req, res, 400, 'Bad request', { connection: 'close' })
      return
    }
    const token = (body as { token?: unknown } | null)?.token
    if (typeof token !== 'string' || !checkToken(token)) {
      const cur = f !== undefined && t - f.since < 60_000 ? f : { count: 0, since: t }
      cur.count++
      failed.set(who, cur)
      if (failed.size > MAX_LOGIN_SOURCES) failed.delete(failed.keys().next().value as string)
      logger.warn({ remote: who }, 'dashboard: sign-in with a wrong token')
      problem(req, res, 401, 'Invalid token')
      return
    }
    failed.delete(who)
    const id = randomBytes(32).toString('base64url')
    const s: Session = { csrf: randomBytes(32).toString('base64url'), created: t, lastSeen: t }
    sessions.set(sha(id), s)
    while (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string)
    logger.info({ remote: who }, 'dashboard: signed in')
    const secure = (req.socket as { encrypted?: boolean }).encrypted ? '; Secure' : ''
    json(
      req,
      res,
      200,
      { csrf: s.csrf },
      {
        'set-cookie': `${SESSION_COOKIE}=${id}; Path=${DASHBOARD_PREFIX}; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MAX_MS / 1000}${secure}`,
      },
    )
  }

  /** A change must come from this page: the CSRF token, and no cross-site signal. */
  const changeAllowed = (req: IncomingMessage, s: Session): string | undefined => {
    const cross = crossSite(req)
    if (cross !== undefined) return cross
    const presented = req.headers['x-csrf-token']
    if (typeof presented !== 'string' || !safeEqual(presented, s.csrf)) return 'missing or wrong CSRF token'
    return undefined
  }

  const liveStream = (res: ServerResponse) => {
    const tel = o.telemetry
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.write(': connected\n\n')
    if (tel === undefined) {
      res.end()
      return
    }
    let dropped = 0
    const unsubscribe = tel.subscribe((r) => {
      // A slow reader loses events instead of growing a buffer.
      if (res.writableLength > MAX_LIVE_BUFFER) {
        dropped++
        return
      }
      res.write(`data: ${JSON.stringify(r)}\n\n`)
    })
    if (unsubscribe === undefined) {
      res.end(': too many live viewers\n\n')
      return
    }
    streams.add(res)
    const beat = setInterval(
      () => res.write(`: keep-alive${dropped ? ` (dropped ${dropped})` : ''}\n\n`),
      15_000,
    )
    beat.unref()
    res.on('close', () => {
      clearInterval(beat)
      unsubscribe()
      streams.delete(res)
    })
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'
    const read = method === 'GET' || method === 'HEAD'
    if (path === '/ui' || path === '/ui/') {
      if (!read) {
        problem(req, res, 405, 'Method not allowed', { allow: 'GET, HEAD' })
        return
      }
      send(req, res, 200, PAGE, 'text/html; charset=utf-8')
      return
    }
    if (path === '/ui/assets/app.js' || path === '/ui/assets/app.css') {
      if (!read) {
        problem(req, res, 405, 'Method not allowed', { allow: 'GET, HEAD' })
        return
      }
      const js = path.endsWith('.js')
      const etag = `"${js ? APP_JS_SHA256 : APP_CSS_SHA256}"`
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ...SECURITY_HEADERS, etag })
        res.end()
        return
      }
      send(
        req,
        res,
        200,
        js ? APP_JS : APP_CSS,
        js ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8',
        {
          etag,
          'cache-control': 'no-cache',
        },
      )
      return
    }
    if (path === '/ui/login') {
      if (method !== 'POST') {
        problem(req, res, 405, 'Method not allowed', { allow: 'POST' })
        return
      }
      login(req, res).catch((err: unknown) => {
        logger.error({ err }, 'dashboard: sign-in failed')
        if (!res.headersSent) problem(req, res, 500, 'Internal error')
      })
      return
    }
    const s = session(req)
    if (path === '/ui/session') {
      if (!read) {
        problem(req, res, 405, 'Method not allowed', { allow: 'GET, HEAD' })
        return
      }
      if (s === undefined) problem(req, res, 401, 'Sign in')
      else json(req, res, 200, { csrf: s.csrf })
      return
    }
    if (s === undefined) {
      // An unread body is not drained: the connection closes after the answer.
      problem(req, res, 401, 'Sign in', read ? {} : { connection: 'close' })
      return
    }
    if (!read) {
      const why = changeAllowed(req, s)
      if (why !== undefined) {
        logger.warn({ remote: req.socket.remoteAddress, path, why }, 'dashboard: change refused (CSRF)')
        problem(req, res, 403, 'Cross-site request refused', { connection: 'close' })
        return
      }
    }
    if (path === '/ui/logout') {
      if (method !== 'POST') {
        problem(req, res, 405, 'Method not allowed', { allow: 'POST' })
        return
      }
      const v = cookieValue(req, SESSION_COOKIE)
      if (v !== undefined) sessions.delete(sha(v))
      json(
        req,
        res,
        200,
        { ok: true },
        {
          'set-cookie': `${SESSION_COOKIE}=; Path=${DASHBOARD_PREFIX}; HttpOnly; SameSite=Strict; Max-Age=0`,
        },
      )
      return
    }
    if (path === '/ui/api/live') {
      if (!read) {
        problem(req, res, 405, 'Method not allowed', { allow: 'GET' })
        return
      }
      liveStream(res)
      return
    }
    if (path.startsWith('/ui/api/v1/') || path === '/ui/api/v1') {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
      o.api.handleAs(req, res, url.slice('/ui/api'.length), 'dashboard session')
      return
    }
    problem(req, res, 404, 'Not found')
  }

  return {
    handle,
    close() {
      for (const r of streams) r.destroy()
      streams.clear()
      sessions.clear()
    },
  }
}
