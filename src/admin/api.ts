/**
 * The admin API: authenticated JSON endpoints under `/v1/` on the admin listener (the unauthenticated
 * /healthz, /readyz and /metrics stay in `gateway/server.ts`). It is made of modules, each a set of
 * routes built once from the store and the config: revocations today; alerts, bans and the audit
 * trail add theirs to {@link ADMIN_MODULES}.
 *
 * Order of checks for a request: API off (no `admin.token`) → 404; credentials → 401; route →
 * 404 / 405 with Allow; body (routes that take one) → 413 / 415 / 400; then the handler.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { AuditLog } from '../audit/log.js'
import type { AdminConfig, GatewayConfig } from '../config/schema.js'
import type { AlertList } from '../detect/alerts.js'
import type { Telemetry } from '../dashboard/telemetry.js'
import type { Inventory } from '../inventory/inventory.js'
import { GatewayError } from '../gateway/errors.js'
import type { Store } from '../stores/types.js'
import { type AdminWrite, recordAdminWrite } from './audit.js'
import { createAdminAuth } from './auth.js'
import {
  declaredTooLarge,
  hasBody,
  MAX_ADMIN_BODY_BYTES,
  readJsonBody,
  requireJson,
  sendJson,
  sendProblem,
} from './http.js'
import { alertsModule } from './alerts.js'
import { auditStatusModule } from './audit-status.js'
import { configModule } from './config.js'
import { bansModule } from './bans.js'
import { inventoryModule } from './inventory.js'
import { revocationsModule } from './revocations.js'
import { type AdminMethod, type AdminRequest, type AdminRoute, AdminRouter } from './router.js'

/** The admin API's path prefix: every path under it is the API's (and needs the token). */
export const ADMIN_API_PREFIX = '/v1'

/** The actor of every request authenticated with the configured token. */
export const ADMIN_TOKEN_ACTOR = 'admin token'

/** What a module is built with. */
export interface AdminModuleContext {
  store: Store
  logger: Logger
  /** ms since the epoch (a fake clock in tests). */
  now: () => number
  config: AdminConfig
  /** The detectors' recent alerts; undefined when detection is off. */
  alerts: AlertList | undefined
  /** The audit log (GET /v1/audit/status); undefined when it is off. */
  audit?: AuditLog | undefined
  /** The config serving now and where its secrets came from (GET /v1/config). */
  effectiveConfig?: (() => EffectiveConfig) | undefined
  /** The API inventory (GET /v1/inventory…); undefined when it is off. */
  inventory?: Inventory | undefined
  /** This gateway's live traffic data (GET /v1/traffic, /v1/rate-limit/top); undefined when off. */
  telemetry?: Telemetry | undefined
  /** Records a state change (see audit.ts); call it for every write, failed ones too. */
  recordWrite(req: AdminRequest, write: Omit<AdminWrite, 'actor' | 'requestId'>): void
}

/** The config serving now (after the last applied reload). */
export interface EffectiveConfig {
  config: GatewayConfig
  /** Paths whose values came from `${env:}` / `${file:}` (the loader's secretPaths). */
  secretPaths: ReadonlySet<string>
  /** When it was loaded (ms). */
  loadedAt: number
}

/** A part of the admin API: its routes, and what to release when the listener closes. */
export interface AdminModule {
  routes: AdminRoute[]
  close?(): void
}

export type AdminModuleFactory = (ctx: AdminModuleContext) => AdminModule

/** The modules the admin API is made of, in route order. */
export const ADMIN_MODULES: readonly AdminModuleFactory[] = [
  revocationsModule,
  bansModule,
  alertsModule,
  auditStatusModule,
  configModule,
  inventoryModule,
]

export interface AdminApi {
  /** False when no `admin.token` is configured: every /v1/ path answers 404. */
  readonly enabled: boolean
  readonly router: AdminRouter
  /** Answers a request whose path is under {@link ADMIN_API_PREFIX}. */
  handle(req: IncomingMessage, res: ServerResponse): void
  /**
   * Answers a request already authenticated another way (the dashboard's session): `path` (with
   * its query) is the admin API path to run, `actor` who is calling (logs, audit trail).
   */
  handleAs(req: IncomingMessage, res: ServerResponse, url: string, actor: string): void
  /** Releases the modules (mirrors, timers). Idempotent. */
  close(): void
}

export interface AdminApiOptions {
  config: AdminConfig
  store: Store
  logger: Logger
  now?: () => number
  /** The detectors' recent alerts (GET /v1/alerts); undefined when detection is off. */
  alerts?: AlertList | undefined
  audit?: AuditLog | undefined
  effectiveConfig?: (() => EffectiveConfig) | undefined
  inventory?: Inventory | undefined
  telemetry?: Telemetry | undefined
  /** Default: {@link ADMIN_MODULES}. */
  modules?: readonly AdminModuleFactory[]
}

/** True for `/v1` and every path under `/v1/`. */
export function isAdminApiPath(path: string): boolean {
  return path === ADMIN_API_PREFIX || path.startsWith(`${ADMIN_API_PREFIX}/`)
}

/** At most one warning per this interval about failed authentication (the rest are counted). */
const AUTH_WARN_EVERY_MS = 5000

const CHALLENGE = 'Bearer realm="portcullis-admin"'

/**
 * Builds the admin API. Without `config.token` nothing is built and every request gets 404.
 *
 * @example
 * const api = createAdminApi({ config: config.admin, store, logger })
 * if (isAdminApiPath(path)) api.handle(req, res)
 */
export function createAdminApi(opts: AdminApiOptions): AdminApi {
  const logger = opts.logger.child({ component: 'admin-api' })
  const router = new AdminRouter()
  const token = opts.config.token
  if (token === undefined) {
    return {
      enabled: false,
      router,
      handle(req, res) {
        sendProblem(req, res, new GatewayError('GW_ERR_ROUTE_NOT_FOUND'), randomUUID(), hasBody(req))
      },
      handleAs(req, res) {
        sendProblem(req, res, new GatewayError('GW_ERR_ROUTE_NOT_FOUND'), randomUUID(), hasBody(req))
      },
      close() {},
    }
  }
  const authenticate = createAdminAuth(token)
  const now = opts.now ?? Date.now
  const modules: AdminModule[] = []
  const ctx: AdminModuleContext = {
    store: opts.store,
    logger,
    now,
    config: opts.config,
    alerts: opts.alerts,
    audit: opts.audit,
    effectiveConfig: opts.effectiveConfig,
    inventory: opts.inventory,
    telemetry: opts.telemetry,
    recordWrite: (req, w) => recordAdminWrite(logger, { ...w, actor: req.actor, requestId: req.id }),
  }
  try {
    for (const make of opts.modules ?? ADMIN_MODULES) {
      const m = make(ctx)
      modules.push(m)
      for (const r of m.routes) router.add(r)
    }
  } catch (err) {
    for (const m of modules) m.close?.()
    throw err
  }

  let lastAuthWarn = Number.NEGATIVE_INFINITY
  let authSuppressed = 0
  const authFailed = (req: IncomingMessage, id: string, result: 'missing' | 'invalid') => {
    const t = now()
    if (result === 'missing' || t - lastAuthWarn < AUTH_WARN_EVERY_MS) {
      if (result === 'invalid') authSuppressed++
      logger.debug({ requestId: id, result }, 'admin API: unauthenticated request')
      return
    }
    logger.warn(
      { requestId: id, remote: req.socket.remoteAddress, suppressedSinceLast: authSuppressed },
      'admin API: request with a wrong bearer token refused',
    )
    lastAuthWarn = t
    authSuppressed = 0
  }

  const run = async (
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    url: string,
    actor: string | undefined,
  ): Promise<number> => {
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const auth = actor !== undefined ? 'ok' : authenticate(req)
    if (auth !== 'ok') {
      authFailed(req, id, auth)
      const challenge = auth === 'invalid' ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE
      throw new GatewayError(auth === 'missing' ? 'GW_ERR_AUTH_MISSING' : 'GW_ERR_AUTH_INVALID', {
        headers: { 'www-authenticate': challenge },
      })
    }
    const m = router.match(req.method ?? 'GET', path)
    if (m.kind === 'none') throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND')
    if (m.kind === 'method') {
      throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { headers: { allow: m.allow.join(', ') } })
    }
    if (m.kind === 'bad-param') {
      throw new GatewayError('GW_ERR_VALIDATION', {
        detail: `${m.name}: not valid percent-encoding`,
        extensions: { field: m.name },
      })
    }
    let body: unknown
    if (m.route.body) {
      requireJson(req)
      body = await readJsonBody(req)
    } else {
      // A body where none is expected is not read (Node drains it); a large one is refused.
      const big = declaredTooLarge(req, MAX_ADMIN_BODY_BYTES)
      if (big) throw big
    }
    const request: AdminRequest = {
      id,
      method: m.route.method as AdminMethod,
      path,
      params: m.params,
      query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
      body,
      actor: actor ?? ADMIN_TOKEN_ACTOR,
      raw: req,
    }
    const out = await m.route.handler(request)
    // An unread body (on a route that takes none) is not drained: the connection closes instead.
    const headers: Record<string, string> = { 'x-request-id': id, ...out.headers }
    if (!m.route.body && hasBody(req)) headers.connection = 'close'
    sendJson(req, res, out.status, out.body, headers)
    return out.status
  }

  let closed = false
  const dispatch = (req: IncomingMessage, res: ServerResponse, url: string, actor: string | undefined) => {
    const id = randomUUID()
    const started = performance.now()
    const pending = hasBody(req)
    run(req, res, id, url, actor).then(
      (status) =>
        logger.debug(
          { requestId: id, method: req.method, status, ms: Math.round(performance.now() - started) },
          'admin API request',
        ),
      (err: unknown) => {
        // Whether the body was read: only a route with a body reads it, and only when it got there.
        const error = sendProblem(req, res, err, id, pending && !req.complete)
        if (error.code === 'GW_ERR_INTERNAL') {
          logger.error({ requestId: id, err }, 'admin API: handler failed')
        } else {
          logger.debug(
            { requestId: id, method: req.method, status: error.status, code: error.code },
            'admin API request',
          )
        }
      },
    )
  }
  return {
    enabled: true,
    router,
    handle(req, res) {
      dispatch(req, res, req.url ?? '/', undefined)
    },
    handleAs(req, res, url, actor) {
      dispatch(req, res, url, actor)
    },
    close() {
      if (closed) return
      closed = true
      for (const m of modules) m.close?.()
    },
  }
}
