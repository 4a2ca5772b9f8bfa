/**
 * Runs a gateway from a config file: listeners, admin, hot reload (SIGHUP and file change) and
 * graceful shutdown. The CLI's `serve` command is a thin wrapper; tests use this in-process, and
 * the package's programmatic entry (src/index.ts, `createGateway`) is built on `openGateway`.
 */
import { type FSWatcher, watch } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { ConfigError } from '../cli/command.js'
import { formatProblem } from '../config/load.js'
import { loadGatewayConfig } from '../config/policy-checks.js'
import type { GatewayConfig } from '../config/schema.js'
import { Gateway } from './gateway.js'
import { AccessLog, createLogger, destination } from './logging.js'
import { createStore } from '../stores/config.js'
import type { AuditLog } from '../audit/log.js'
import { registerAuditMetrics } from '../audit/metrics.js'
import { openAuditLog } from '../audit/open.js'
import { RequestAudit } from '../audit/request.js'
import { DetectEngine } from '../detect/engine.js'
import { type EgressProxy, startEgressProxy } from '../egress/proxy.js'
import { noopAudit } from '../audit/event.js'
import { Telemetry } from '../dashboard/telemetry.js'
import { Inventory } from '../inventory/inventory.js'
import { inventorySpecs, trafficObserver } from '../inventory/observer.js'
import { SpecIndex } from '../inventory/spec-index.js'
import { Tracing } from '../tracing/tracing.js'
import { GatewayMetrics } from './metrics.js'
import { configHash, hashFile, restartOnlyChanged } from './restart-only.js'
import { adminForWorker, auditForWorker, withWorker } from './worker-config.js'
import { type RunningListener, reloadTls, startAdmin, startListener } from './server.js'

export interface RunningGateway {
  gateway: Gateway
  /** The egress proxy (src/egress), when `egress.enabled` (undefined until `listen`). */
  egress: EgressProxy | undefined
  /** The client-facing listeners (empty until `listen`). */
  listeners: RunningListener[]
  /** The admin listener (undefined until `listen`, or when admin is off). */
  admin: RunningListener | undefined
  logger: Logger
  metrics: GatewayMetrics
  /** OpenTelemetry tracing, when on (tests flush it). */
  tracing: Tracing | undefined
  /** The audit log (one per process, kept across reloads); undefined when off. */
  audit: AuditLog | undefined
  /**
   * Reloads the config file; resolves true when the new config is serving. `trigger` (signal,
   * watch, …) goes into the reload's audit record. `text`: a new document for a gateway opened
   * from text (`StartOptions.configText`); it replaces the old one once applied.
   */
  reload(trigger?: string, text?: string): Promise<boolean>
  /** Starts the configured listeners and the admin listener (startGateway has done it already). */
  listen(): Promise<void>
  /** Graceful shutdown: stop accepting, drain until the deadline, close. */
  close(): Promise<void>
}

export interface StartOptions {
  /** Logger override (tests, embedding). */
  logger?: Logger
  env?: NodeJS.ProcessEnv
  /** The config document itself: the file is then not read nor watched, only names it and anchors paths. */
  configText?: string
  /** `configText` is an object from code: unit-named durations (`timeoutMs: 5000`) are its form. */
  programmatic?: boolean
  /** `serve --workers`: this process is worker n (1-based): its own audit chain and admin port. */
  worker?: number
}

/** Closes the audit log, if any, when startGateway fails after opening it. */
async function closeQuietly(audit: AuditLog | undefined): Promise<void> {
  await audit?.close().catch(() => undefined)
}

/** Loads, validates and starts a gateway. Throws ConfigError with every problem when invalid. */
export async function startGateway(configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const running = await openGateway(configFile, opts)
  await running.listen()
  return running
}

/**
 * Loads and validates a config and builds everything a gateway needs (store, audit log,
 * detectors, inventory, the core) without listening: `inject` works at once, `listen()` starts
 * the listeners. Throws ConfigError with every problem when invalid.
 */
export async function openGateway(configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const file = resolve(configFile)
  let text = opts.configText
  const fromText = text !== undefined
  const hashSource = (): string => configHash(file, text)
  // The same loader as `config check` and reload: schema, rules, then every policy's checks.
  const { programmatic } = opts
  const loaded = await loadGatewayConfig(file, { env: opts.env, logger: opts.logger, text, programmatic })
  if (!loaded.config) throw new ConfigError(loaded.errors.map(formatProblem))
  let config: GatewayConfig = loaded.config
  // The config serving now, for the admin API's GET /v1/config (secrets redacted there).
  let effective = { config, secretPaths: loaded.secretPaths, loadedAt: Date.now() }
  const logger = opts.logger ?? withWorker(createLogger(config.log.level), opts.worker)
  for (const w of loaded.warnings) logger.warn({ config: formatProblem(w) }, 'config warning')
  const baseDir = dirname(file)
  const metrics = new GatewayMetrics()
  const dest = config.accessLog.destination
  const accessDest = config.accessLog.enabled
    ? destination(dest === 'stdout' || dest === 'stderr' ? dest : resolve(baseDir, dest))
    : undefined
  const accessLog = accessDest ? new AccessLog(accessDest, logger, config.accessLog.fields) : undefined
  // audit: the store is made first: the audit log's anchors may live in it (audit.anchor.redis).
  const store = createStore(config.stores, { logger })
  // One audit log per process, opened before anything serves and kept across reloads. A problem
  // with it (keyring, directory, a chain it cannot continue) keeps the gateway from starting.
  const audit = config.audit.enabled
    ? await openAuditLog(auditForWorker(config.audit, opts.worker), {
        baseDir,
        logger,
        env: opts.env,
        store,
      }).catch(async (err) => {
        await store.close().catch(() => undefined) // audit:
        throw err
      })
    : undefined
  if (audit) registerAuditMetrics(metrics.registry, audit)
  if (audit && config.audit.sink === 'stdout' && accessDest && config.accessLog.destination === 'stdout') {
    logger.warn('the audit log and the access log both write to stdout: their lines interleave')
  }
  audit?.emit({ type: 'gateway.start', data: { configSha256: hashSource(), pid: process.pid } })
  const requestAudit = audit
    ? new RequestAudit(audit, config.audit.events.authSuccess, config.audit.events.authFailureStatuses) // audit:
    : undefined
  if (config.stores.backend === 'redis') {
    // Start even when Redis is down: each stateful policy applies its failOpen setting meanwhile.
    await store.ping().then(
      () => logger.info('redis store connected'),
      (err: unknown) =>
        logger.warn(
          { err: (err as Error).message },
          'redis store not reachable yet; retrying in the background',
        ),
    )
  }
  // One detection engine per process (bound at start, kept across reloads, like the audit log).
  const detect = config.detect.enabled
    ? new DetectEngine({ config: config.detect, store, logger, audit: audit ?? undefined })
    : undefined
  // audit: what the start found wrong with the chain against its anchor is an alert.
  for (const p of audit?.startProblems ?? [])
    detect?.report({ detector: 'audit-truncation', subject: `audit:${audit?.instance}`, ...p })
  // inventory: one per process (bound at start, kept across reloads), and the dashboard's live data.
  let inventory: Inventory | undefined
  if (config.inventory.enabled) {
    const spec = new SpecIndex(inventorySpecs(config, baseDir))
    for (const p of spec.problems) logger.warn({ problem: p }, 'inventory: a spec could not be read')
    inventory = new Inventory({ config: config.inventory, store, spec, logger })
  }
  const telemetry = config.admin.enabled && config.admin.token !== undefined ? new Telemetry() : undefined
  // tracing: the OpenTelemetry SDK is loaded only when tracing is on (bound at start).
  const tracing = config.tracing.enabled ? await Tracing.start(config.tracing, logger) : undefined
  let gateway: Gateway
  try {
    gateway = new Gateway(config, {
      logger,
      accessLog,
      metrics,
      baseDir,
      store,
      audit: requestAudit,
      detect,
      inventory: trafficObserver(inventory, telemetry),
      tracing,
    })
  } catch (err) {
    await tracing?.close()
    await inventory?.close()
    detect?.close()
    await store.close()
    await closeQuietly(audit)
    throw err
  }
  const listeners: RunningListener[] = []
  let admin: RunningListener | undefined
  // egress: the forward proxy for the application's own outbound calls (docs/egress.md)
  let egress: EgressProxy | undefined
  let ready = false
  let closing: Promise<void> | undefined
  let listening: Promise<void> | undefined
  const listen = (): Promise<void> => {
    listening ??= startListening()
    return listening
  }
  const startListening = async (): Promise<void> => {
    if (closing) throw new Error('the gateway is closed')
    try {
      // egress: the forward proxy for the application's own outbound calls (docs/egress.md)
      if (config.egress.enabled)
        egress = await startEgressProxy(config.egress, { logger, audit: audit ?? noopAudit, baseDir })
      for (const l of config.listeners) {
        const running = await startListener(l, gateway, { logger, metrics, baseDir })
        listeners.push(running)
        logger.info({ listener: l.name, url: running.url }, 'listening')
      }
      if (config.admin.enabled) {
        admin = await startAdmin(adminForWorker(config.admin, opts.worker), {
          metrics,
          logger,
          store,
          alerts: detect?.alerts,
          audit,
          inventory,
          telemetry,
          effectiveConfig: () => effective,
          notReady: () =>
            !ready
              ? 'starting'
              : gateway.draining
                ? 'draining'
                : store.hasConnected?.() === false
                  ? 'the redis store has not connected yet'
                  : undefined,
        })
        logger.info({ url: admin.url }, 'admin listening')
      }
    } catch (err) {
      await Promise.all(listeners.map((l) => l.close()))
      listeners.length = 0
      await admin?.close()
      admin = undefined
      await close()
      throw err
    }
    ready = true
  }
  let lastHash = hashSource()

  // Reloads run one at a time: preparing one may wait (remote documents), and a slow older one
  // must not be applied after a newer one.
  let reloading: Promise<unknown> = Promise.resolve()
  const reload = (trigger = 'call', newText?: string): Promise<boolean> => {
    if (newText !== undefined && !fromText)
      return Promise.reject(new Error('this gateway reads its config file: reload() takes no document'))
    const run = reloading.then(() => reloadOnce(trigger, newText))
    reloading = run.catch(() => undefined)
    return run
  }
  const reloadOnce = async (trigger: string, newText: string | undefined): Promise<boolean> => {
    if (closing) return false
    const candidate = newText ?? text
    const next = await loadGatewayConfig(file, { env: opts.env, logger, text: candidate, programmatic })
    const candidateHash = configHash(file, candidate)
    const reloaded = (outcome: 'applied' | 'rejected', errors: number) =>
      audit?.emit({
        type: 'config.reload',
        decision: outcome === 'applied' ? 'allow' : 'deny',
        data: { outcome, trigger, configSha256: candidateHash, errors },
      })
    if (!next.config) {
      reloaded('rejected', next.errors.length)
      metrics.reloads.labels('rejected').inc()
      logger.error(
        { errors: next.errors.map(formatProblem) },
        'config reload refused; the running config keeps serving',
      )
      return false
    }
    const listenersChanged = restartOnlyChanged(config, next.config)
    if (closing) return false
    try {
      const applyEgress = egress?.prepare(next.config.egress) // egress: destinations and limits apply at once
      gateway.reload(next.config)
      applyEgress?.()
    } catch (err) {
      reloaded('rejected', 1)
      metrics.reloads.labels('rejected').inc()
      logger.error({ err }, 'config reload refused; the running config keeps serving')
      return false
    }
    for (const l of next.config.listeners) {
      const running = listeners.find((x) => x.name === l.name)
      if (running) {
        try {
          reloadTls(running, l, baseDir)
        } catch (err) {
          logger.error({ err, listener: l.name }, 'TLS certificate reload failed; the old certificate stays')
        }
      }
    }
    if (listenersChanged) {
      logger.warn(
        'listener, admin, access log, stores, audit, tracing, detect or inventory settings changed: they take effect on restart',
      )
    }
    for (const w of next.warnings) logger.warn({ config: formatProblem(w) }, 'config warning')
    config = next.config
    effective = { config, secretPaths: next.secretPaths, loadedAt: Date.now() }
    text = candidate
    lastHash = candidateHash
    metrics.reloads.labels('applied').inc()
    reloaded('applied', 0)
    logger.info('config reloaded')
    return true
  }

  // Watch the directory, not the file: editors and config tools replace files by rename.
  let watcher: FSWatcher | undefined
  let debounce: NodeJS.Timeout | undefined
  if (config.reload.watch && !fromText) {
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        // A Kubernetes ConfigMap volume swaps its `..data` symlink, not the file (the content hash
        // below tells whether this file changed).
        if (name !== null && name !== basename(file) && name !== '..data') return
        clearTimeout(debounce)
        debounce = setTimeout(() => {
          const h = hashFile(file)
          if (h !== '' && h !== lastHash) void reload('watch')
        }, 150)
        debounce.unref()
      })
    } catch (err) {
      logger.warn({ err }, 'cannot watch the config file; reload with SIGHUP')
    }
  }

  const close = (): Promise<void> => {
    if (closing) return closing
    closing = (async () => {
      ready = false
      gateway.draining = true
      watcher?.close()
      clearTimeout(debounce)
      const deadline = config.shutdown.drainTimeoutMs
      logger.info({ inFlight: gateway.inFlight, deadlineMs: deadline }, 'shutting down')
      // Stop accepting, but leave keep-alive connections open for idleGraceMs (within the drain
      // deadline): a request sent on one gets an answer with Connection: close (draining), not a
      // reset; then close what is still idle.
      const stopped = Promise.all(listeners.map((l) => (l.stopAccepting ? l.stopAccepting() : l.close())))
      const grace = Math.min(config.shutdown.idleGraceMs, deadline)
      const drained = new Promise<boolean>((r) => {
        const started = Date.now()
        const tick = () => {
          const elapsed = Date.now() - started
          if (gateway.inFlight === 0 && elapsed >= grace) return r(true)
          if (elapsed >= deadline) return r(gateway.inFlight === 0)
          setTimeout(tick, 25)
        }
        tick()
      })
      const clean = await drained
      if (!clean) {
        logger.warn({ inFlight: gateway.inFlight }, 'drain deadline passed; closing remaining connections')
        for (const l of listeners) {
          l.server.closeAllConnections()
          l.h2?.destroyAll() // http2:
        }
      } else
        for (const l of listeners) {
          l.server.closeIdleConnections()
          l.h2?.closeIdle() // http2:
        }
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 1000).unref())])
      await gateway.close(!clean)
      await egress?.close() // egress:
      await tracing?.close()
      await admin?.close()
      await detect?.webhook?.flush(1000)
      detect?.close()
      await inventory?.close()
      accessLog?.flush()
      // audit: closed before the store, which may hold its anchors (the final one is written at close).
      if (audit) {
        audit.emit({ type: 'gateway.stop', data: { clean } })
        await audit.close()
      }
      await store.close().catch(() => undefined)
      logger.info('stopped')
    })()
    return closing
  }

  return {
    gateway,
    get egress() {
      return egress
    },
    listeners,
    get admin() {
      return admin
    },
    logger,
    metrics,
    tracing,
    audit,
    reload,
    listen,
    close,
  }
}
