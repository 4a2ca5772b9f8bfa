/**
 * Runs a gateway from a config file: listeners, admin, hot reload (SIGHUP and file change) and
 * graceful shutdown. The CLI's `serve` command is a thin wrapper; tests use this in-process.
 */
import { createHash } from 'node:crypto'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
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
import { GatewayMetrics } from './metrics.js'
import { type RunningListener, reloadTls, startAdmin, startListener } from './server.js'

export interface RunningGateway {
  gateway: Gateway
  /** The egress proxy (src/egress), when `egress.enabled`. */
  egress: EgressProxy | undefined
  listeners: RunningListener[]
  admin: RunningListener | undefined
  logger: Logger
  /** The audit log (one per process, kept across reloads); undefined when off. */
  audit: AuditLog | undefined
  /**
   * Reloads the config file; resolves true when the new config is serving. `trigger` (signal,
   * watch, …) goes into the reload's audit record.
   */
  reload(trigger?: string): Promise<boolean>
  /** Graceful shutdown: stop accepting, drain until the deadline, close. */
  close(): Promise<void>
}

export interface StartOptions {
  /** Logger override (tests). */
  logger?: Logger
  env?: NodeJS.ProcessEnv
}

/** Closes the audit log, if any, when startGateway fails after opening it. */
async function closeQuietly(audit: AuditLog | undefined): Promise<void> {
  await audit?.close().catch(() => undefined)
}

function hashFile(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return ''
  }
}

/** Loads, validates and starts a gateway. Throws ConfigError with every problem when invalid. */
export async function startGateway(configFile: string, opts: StartOptions = {}): Promise<RunningGateway> {
  const file = resolve(configFile)
  // The same loader as `config check` and reload: schema, rules, then every policy's checks.
  const loaded = await loadGatewayConfig(file, { env: opts.env, logger: opts.logger })
  if (!loaded.config) throw new ConfigError(loaded.errors.map(formatProblem))
  let config: GatewayConfig = loaded.config
  // The config serving now, for the admin API's GET /v1/config (secrets redacted there).
  let effective = { config, secretPaths: loaded.secretPaths, loadedAt: Date.now() }
  const logger = opts.logger ?? createLogger(config.log.level)
  for (const w of loaded.warnings) logger.warn({ config: formatProblem(w) }, 'config warning')
  const baseDir = dirname(file)
  const metrics = new GatewayMetrics()
  const dest = config.accessLog.destination
  const accessDest = config.accessLog.enabled
    ? destination(dest === 'stdout' || dest === 'stderr' ? dest : resolve(baseDir, dest))
    : undefined
  const accessLog = accessDest ? new AccessLog(accessDest, logger) : undefined
  // audit: the store is made first: the audit log's anchors may live in it (audit.anchor.redis).
  const store = createStore(config.stores, { logger })
  // One audit log per process, opened before anything serves and kept across reloads. A problem
  // with it (keyring, directory, a chain it cannot continue) keeps the gateway from starting.
  const audit = config.audit.enabled
    ? await openAuditLog(config.audit, { baseDir, logger, env: opts.env, store }).catch(async (err) => {
        await store.close().catch(() => undefined) // audit:
        throw err
      })
    : undefined
  if (audit) registerAuditMetrics(metrics.registry, audit)
  if (audit && config.audit.sink === 'stdout' && accessDest && config.accessLog.destination === 'stdout') {
    logger.warn('the audit log and the access log both write to stdout: their lines interleave')
  }
  audit?.emit({ type: 'gateway.start', data: { configSha256: hashFile(file), pid: process.pid } })
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
    })
  } catch (err) {
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
  try {
    // egress:
    if (config.egress.enabled)
      egress = await startEgressProxy(config.egress, { logger, audit: audit ?? noopAudit, baseDir })
    for (const l of config.listeners) {
      const running = await startListener(l, gateway, { logger, metrics, baseDir })
      listeners.push(running)
      logger.info({ listener: l.name, url: running.url }, 'listening')
    }
    if (config.admin.enabled) {
      admin = await startAdmin(config.admin, {
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
    await egress?.close() // egress:
    await gateway.close(true)
    detect?.close()
    await inventory?.close()
    await store.close().catch(() => undefined)
    await closeQuietly(audit)
    throw err
  }
  ready = true
  let lastHash = hashFile(file)

  // Reloads run one at a time: preparing one may wait (remote documents), and a slow older one
  // must not be applied after a newer one.
  let reloading: Promise<unknown> = Promise.resolve()
  const reload = (trigger = 'call'): Promise<boolean> => {
    const run = reloading.then(() => reloadOnce(trigger))
    reloading = run.catch(() => undefined)
    return run
  }
  const reloadOnce = async (trigger: string): Promise<boolean> => {
    if (closing) return false
    const next = await loadGatewayConfig(file, { env: opts.env, logger })
    const reloaded = (outcome: 'applied' | 'rejected', errors: number) =>
      audit?.emit({
        type: 'config.reload',
        decision: outcome === 'applied' ? 'allow' : 'deny',
        data: { outcome, trigger, configSha256: hashFile(file), errors },
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
    const listenersChanged =
      JSON.stringify(next.config.listeners.map((l) => ({ ...l, tls: undefined }))) !==
        JSON.stringify(config.listeners.map((l) => ({ ...l, tls: undefined }))) ||
      JSON.stringify(next.config.admin) !== JSON.stringify(config.admin) ||
      JSON.stringify(next.config.accessLog) !== JSON.stringify(config.accessLog) ||
      JSON.stringify(next.config.stores) !== JSON.stringify(config.stores) ||
      JSON.stringify(next.config.audit) !== JSON.stringify(config.audit) ||
      JSON.stringify(next.config.detect) !== JSON.stringify(config.detect) ||
      JSON.stringify(next.config.inventory) !== JSON.stringify(config.inventory) ||
      // egress: the proxy's listener (enabled, host, port) is bound at start
      JSON.stringify([next.config.egress.enabled, next.config.egress.host, next.config.egress.port]) !==
        JSON.stringify([config.egress.enabled, config.egress.host, config.egress.port])
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
        'listener, admin, access log, stores, audit, detect or inventory settings changed: they take effect on restart',
      )
    }
    for (const w of next.warnings) logger.warn({ config: formatProblem(w) }, 'config warning')
    config = next.config
    effective = { config, secretPaths: next.secretPaths, loadedAt: Date.now() }
    lastHash = hashFile(file)
    metrics.reloads.labels('applied').inc()
    reloaded('applied', 0)
    logger.info('config reloaded')
    return true
  }

  // Watch the directory, not the file: editors and config tools replace files by rename.
  let watcher: FSWatcher | undefined
  let debounce: NodeJS.Timeout | undefined
  if (config.reload.watch) {
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (name !== null && name !== basename(file)) return
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

  return { gateway, egress, listeners, admin, logger, audit, reload, close }
}
