/**
 * An upstream: a set of targets, each with its own undici keep-alive Pool, picked round robin,
 * with passive health (eject after N consecutive failures for T) and optional active probes.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Logger } from 'pino'
import { Pool } from 'undici'
import type { UpstreamConfig } from '../../config/schema.js'

export interface UpstreamEvents {
  onHealthChange?(upstream: string, target: string, healthy: boolean): void
}

export class UpstreamTarget {
  readonly url: string
  /** scheme://host:port */
  readonly origin: string
  /** Base path prepended to every request path, '' for none. */
  readonly basePath: string
  /** Value sent as Host unless preserveHost. */
  readonly hostHeader: string
  readonly pool: Pool
  failures = 0
  ejectedUntil = 0
  /** Set by active health checks. */
  probeDown = false
  probeFailures = 0
  probeSuccesses = 0

  constructor(url: string, cfg: UpstreamConfig, baseDir: string) {
    const u = new URL(url)
    this.url = url
    this.origin = u.origin
    this.basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
    this.hostHeader = u.host
    this.pool = new Pool(u.origin, {
      connections: cfg.connections,
      pipelining: 1,
      keepAliveTimeout: cfg.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(cfg.keepAliveTimeoutMs, 600000),
      headersTimeout: cfg.headersTimeoutMs,
      bodyTimeout: cfg.bodyTimeoutMs,
      connect: {
        timeout: cfg.connectTimeoutMs,
        rejectUnauthorized: cfg.tls.rejectUnauthorized,
        ...(cfg.tls.ca ? { ca: readFileSync(resolve(baseDir, cfg.tls.ca)) } : {}),
      },
    })
  }

  isUp(now: number): boolean {
    return !this.probeDown && this.ejectedUntil <= now
  }
}

export class Upstream {
  readonly name: string
  readonly config: UpstreamConfig
  readonly targets: UpstreamTarget[]
  private next = 0
  private readonly logger: Logger
  private readonly now: () => number
  private readonly events: UpstreamEvents
  private probeTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor(
    name: string,
    config: UpstreamConfig,
    deps: { logger: Logger; now: () => number; baseDir: string; events?: UpstreamEvents },
  ) {
    this.name = name
    this.config = config
    this.logger = deps.logger
    this.now = deps.now
    this.events = deps.events ?? {}
    this.targets = config.targets.map((t) => new UpstreamTarget(t.url, config, deps.baseDir))
  }

  /**
   * The next target that is up, round robin. When every target is down, the next one anyway
   * (panic routing, as Envoy does): a false "down" must not turn into a total outage.
   */
  pick(exclude?: UpstreamTarget): UpstreamTarget {
    const n = this.targets.length
    const now = this.now()
    for (let i = 0; i < n; i++) {
      const t = this.targets[(this.next + i) % n] as UpstreamTarget
      if (t !== exclude && t.isUp(now)) {
        this.next = (this.next + i + 1) % n
        return t
      }
    }
    const t = this.targets[this.next % n] as UpstreamTarget
    this.next = (this.next + 1) % n
    return t
  }

  reportSuccess(t: UpstreamTarget): void {
    if (t.failures !== 0) t.failures = 0
  }

  reportFailure(t: UpstreamTarget, reason: string): void {
    t.failures++
    if (t.failures >= this.config.passiveHealth.failures && t.ejectedUntil <= this.now()) {
      t.ejectedUntil = this.now() + this.config.passiveHealth.ejectMs
      t.failures = 0
      this.logger.warn(
        { upstream: this.name, target: t.origin, reason, ejectMs: this.config.passiveHealth.ejectMs },
        'upstream target ejected',
      )
      this.events.onHealthChange?.(this.name, t.origin, false)
    }
  }

  /** Starts active health probes when configured. */
  startProbes(): void {
    const ah = this.config.activeHealth
    if (!ah || this.probeTimer) return
    const probe = () => {
      for (const t of this.targets) void this.probeOne(t)
    }
    this.probeTimer = setInterval(probe, ah.intervalMs)
    this.probeTimer.unref()
    probe()
  }

  private async probeOne(t: UpstreamTarget): Promise<void> {
    const ah = this.config.activeHealth
    if (!ah || this.closed) return
    let ok = false
    try {
      const res = await t.pool.request({
        method: 'GET',
        path: t.basePath + ah.path,
        headers: { host: t.hostHeader, 'user-agent': 'portcullis-health' },
        headersTimeout: ah.timeoutMs,
        bodyTimeout: ah.timeoutMs,
        signal: AbortSignal.timeout(ah.timeoutMs),
      })
      await res.body.dump()
      ok = res.statusCode >= 200 && res.statusCode < 400
    } catch {
      ok = false
    }
    if (this.closed) return
    if (ok) {
      t.probeFailures = 0
      t.probeSuccesses++
      if (t.probeDown && t.probeSuccesses >= ah.healthyThreshold) {
        t.probeDown = false
        t.ejectedUntil = 0
        this.logger.info({ upstream: this.name, target: t.origin }, 'upstream target healthy')
        this.events.onHealthChange?.(this.name, t.origin, true)
      }
    } else {
      t.probeSuccesses = 0
      t.probeFailures++
      if (!t.probeDown && t.probeFailures >= ah.unhealthyThreshold) {
        t.probeDown = true
        this.logger.warn({ upstream: this.name, target: t.origin }, 'upstream target failed health checks')
        this.events.onHealthChange?.(this.name, t.origin, false)
      }
    }
  }

  /** Stops probes and closes pools once their in-flight requests finish. */
  async close(): Promise<void> {
    this.closed = true
    if (this.probeTimer) clearInterval(this.probeTimer)
    await Promise.all(this.targets.map((t) => t.pool.close().catch(() => undefined)))
  }

  /** Closes pools now, aborting in-flight requests. */
  async destroy(): Promise<void> {
    this.closed = true
    if (this.probeTimer) clearInterval(this.probeTimer)
    await Promise.all(this.targets.map((t) => t.pool.destroy().catch(() => undefined)))
  }
}
