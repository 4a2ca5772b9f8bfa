/**
 * The package's programmatic entry: run a Portcullis gateway inside a Node.js process
 * (docs/embedding.md).
 *
 * @example
 * import { createGateway } from 'portcullis'
 *
 * const gw = await createGateway('portcullis.yaml')
 * const { urls } = await gw.listen()
 * process.once('SIGTERM', () => void gw.close())
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { resolve } from 'node:path'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { ConfigError } from './cli/command.js'
import { formatProblem } from './config/load.js'
import { loadGatewayConfig } from './config/policy-checks.js'
import type { GatewayConfig } from './config/schema.js'
import type { InjectRequest, InjectResponse } from './gateway/gateway.js'
import { openGateway } from './gateway/serve.js'

export { ConfigError }
export type { GatewayConfig, InjectRequest, InjectResponse }

/** Every field optional, all the way down: the schema's defaults fill in what is left out. */
export type DeepPartial<T> = T extends readonly (infer U)[]
  ? DeepPartial<U>[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T

/**
 * A config written as an object rather than a file: the same document as `portcullis.yaml`
 * (docs/config.md), validated the same way (defaults filled in, every problem reported at once).
 * Durations take the schema's unit-named form here (`shutdown: { drainTimeoutMs: 5000 }`), which
 * a config file refuses as the old form (it writes `drainTimeout: 5s`; docs/embedding.md).
 */
export type GatewayConfigInput = DeepPartial<GatewayConfig>

export interface CreateGatewayOptions {
  /**
   * The gateway's own log (a pino logger). Default: JSON lines on stderr at `log.level`. The
   * access log follows `accessLog` in the config (stdout by default).
   */
  logger?: Logger
  /** What `${env:NAME}` in the config reads (default: process.env). */
  env?: NodeJS.ProcessEnv
  /**
   * For a config object: the directory that relative paths in it (specs, key files, audit
   * directory) are resolved against. Default: the current directory. Ignored for a file, whose
   * own directory is used.
   */
  baseDir?: string
}

/** Where a listening gateway answers. */
export interface ListenResult {
  /** One URL per configured listener, in config order (e.g. `http://127.0.0.1:8080`). */
  urls: string[]
  /** The admin listener (/healthz, /readyz, /metrics, the admin API), when enabled. */
  adminUrl: string | undefined
}

/** A gateway running inside this process. */
export interface EmbeddedGateway {
  /**
   * Starts the configured listeners and the admin listener. Before (and without) it, `inject`
   * and `handle` serve requests in-process. Calling it again returns the same addresses.
   */
  listen(): Promise<ListenResult>
  /**
   * Handles one request in-process, without a socket: the whole pipeline runs, upstream calls
   * included (as fastify's `inject`).
   */
  inject(request: InjectRequest): Promise<InjectResponse>
  /**
   * A request listener for a server of your own (`http.createServer(gw.handle)`). The gateway's
   * listeners add what this cannot: Node's strict parser settings, the problem answers for
   * malformed requests, header size and timeout limits (docs/embedding.md); prefer `listen()`.
   */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void
  /**
   * Loads the config again and swaps it in atomically; resolves false (and keeps the running
   * config) when it is invalid. A gateway made from a file re-reads the file and takes no
   * argument; one made from an object takes the new object (or re-validates the old one).
   */
  reload(config?: GatewayConfigInput): Promise<boolean>
  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish within
   * `shutdown.drainTimeoutMs`, close upstream connections, the store and the audit log.
   */
  close(): Promise<void>
  /** The config serving now, defaults filled in (frozen). */
  readonly config: GatewayConfig
  /** The prom-client registry behind `/metrics`, to merge into your own. */
  readonly metrics: Registry
}

/** The document a config object becomes (JSON is YAML; functions and undefined are dropped). */
function documentOf(config: GatewayConfigInput): string {
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new TypeError('createGateway: the config must be a file path or an object')
  return JSON.stringify(config)
}

/**
 * Creates a gateway from a config file (YAML or JSON) or a config object. Validation is the same
 * as `portcullis config check` and `serve`; an invalid config rejects with a `ConfigError` whose
 * `problems` list every problem (`file:line:col path: message`). The store, the audit log, the
 * detectors and the upstream pools are set up; nothing listens until `listen()`.
 *
 * @example
 * const gw = await createGateway({
 *   listeners: [{ name: 'public', host: '127.0.0.1', port: 8080 }],
 *   upstreams: { api: { targets: [{ url: 'http://127.0.0.1:3000' }] } },
 *   routes: [{ name: 'api', upstream: 'api' }],
 * })
 * const r = await gw.inject({ url: '/users/1' })
 * await gw.close()
 */
export async function createGateway(
  config: string | GatewayConfigInput,
  options: CreateGatewayOptions = {},
): Promise<EmbeddedGateway> {
  const fromFile = typeof config === 'string'
  const file = fromFile ? resolve(config) : resolve(options.baseDir ?? process.cwd(), '(config object)')
  const running = await openGateway(file, {
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.env ? { env: options.env } : {}),
    // A config object keeps the schema's unit-named durations (`timeoutMs: 5000`); a file may not.
    ...(fromFile ? {} : { configText: documentOf(config), programmatic: true }),
  })
  const { gateway } = running
  let listened: ListenResult | undefined
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const secure = (req.socket as TLSSocket).encrypted === true
    gateway.handle(req, res, { name: 'embedded', secure, maxHeaderCount: 100 })
  }
  return {
    async listen() {
      await running.listen()
      listened ??= { urls: running.listeners.map((l) => l.url), adminUrl: running.admin?.url }
      return listened
    },
    inject: (request) => gateway.inject(request),
    handle,
    reload(next) {
      if (next !== undefined && fromFile)
        return Promise.reject(
          new TypeError('reload(): this gateway reads its config file; change the file instead'),
        )
      return running.reload('call', next === undefined ? undefined : documentOf(next))
    },
    close: () => running.close(),
    get config() {
      return gateway.config
    },
    metrics: running.metrics.registry,
  }
}

/**
 * Validates a config (file or object) exactly as `createGateway` and `portcullis config check`
 * do, without building anything. Resolves the problems, formatted `file:line:col path: message`
 * (empty when the config is valid), and the warnings.
 */
export async function checkConfig(
  config: string | GatewayConfigInput,
  options: Pick<CreateGatewayOptions, 'env' | 'baseDir'> = {},
): Promise<{ errors: string[]; warnings: string[] }> {
  const fromFile = typeof config === 'string'
  const file = fromFile ? resolve(config) : resolve(options.baseDir ?? process.cwd(), '(config object)')
  const r = await loadGatewayConfig(file, {
    ...(options.env ? { env: options.env } : {}),
    ...(fromFile ? {} : { text: documentOf(config), programmatic: true }),
  })
  return { errors: r.errors.map(formatProblem), warnings: r.warnings.map(formatProblem) }
}
