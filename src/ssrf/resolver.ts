/**
 * Host name resolution for URL checks and the egress proxy: either the system resolver
 * (getaddrinfo, /etc/hosts included, as most upstreams resolve) or DNS servers named in the config
 * (node:dns Resolver: A and AAAA with their TTLs). Answers are cached in a bounded LRU (TTL clamped
 * to [minTtlSec, maxTtlSec]; names that do not exist for `negativeTtlSec`); concurrent lookups of
 * one name share one query. Failures (timeouts, SERVFAIL) are not cached.
 */
import { promises as dnsPromises } from 'node:dns'
import { TtlLru } from '../util/ttl-lru.js'

export interface ResolverOptions {
  /** DNS servers (`1.1.1.1`, `[2606:4700::1111]:53`, `127.0.0.1:5353`); the system resolver when empty. */
  servers: readonly string[]
  /** Per query, ms. */
  timeoutMs: number
  /** Attempts per server. */
  tries: number
  /** Cached names at most. */
  maxEntries: number
  /** Shortest time an answer is kept, s (also the system resolver's, which has no TTL). */
  minTtlSec: number
  /** Longest time an answer is kept, s. */
  maxTtlSec: number
  /** How long a name that does not exist is remembered, s. */
  negativeTtlSec: number
  now?: () => number
}

export const DEFAULT_RESOLVER_OPTIONS: ResolverOptions = {
  servers: [],
  timeoutMs: 2000,
  tries: 2,
  maxEntries: 10_000,
  minTtlSec: 5,
  maxTtlSec: 300,
  negativeTtlSec: 30,
}

/** What a name resolved to: addresses (empty when the name has none), or why it could not be resolved. */
export interface Resolution {
  addresses: readonly string[]
  /** A failure that says nothing about the name (timeout, server failure): `addresses` is empty. */
  error?: string
}

const NO_DATA = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN', 'ENONAME'])

/** A caching resolver. */
export class HostResolver {
  private readonly cache: TtlLru<Resolution>
  private readonly inflight = new Map<string, Promise<Resolution>>()
  private readonly resolver: dnsPromises.Resolver | undefined
  private readonly opts: ResolverOptions
  private readonly now: () => number
  /** Queries sent (not answered from the cache), for tests and metrics. */
  queries = 0

  constructor(options: Partial<ResolverOptions> = {}) {
    this.opts = { ...DEFAULT_RESOLVER_OPTIONS, ...options }
    this.now = this.opts.now ?? Date.now
    this.cache = new TtlLru(this.opts.maxEntries, this.now)
    if (this.opts.servers.length > 0) {
      this.resolver = new dnsPromises.Resolver({ timeout: this.opts.timeoutMs, tries: this.opts.tries })
      this.resolver.setServers([...this.opts.servers])
    }
  }

  /** The cached answer for `name` (lower-case, no trailing dot), or undefined: no query is sent. */
  cached(name: string): Resolution | undefined {
    return this.cache.get(name)
  }

  /** Resolves `name` (lower-case, no trailing dot); never rejects. */
  resolve(name: string): Promise<Resolution> {
    const hit = this.cache.get(name)
    if (hit !== undefined) return Promise.resolve(hit)
    const running = this.inflight.get(name)
    if (running !== undefined) return running
    const p = this.query(name).finally(() => this.inflight.delete(name))
    this.inflight.set(name, p)
    return p
  }

  private async query(name: string): Promise<Resolution> {
    this.queries++
    const { minTtlSec, maxTtlSec, negativeTtlSec } = this.opts
    const keep = (r: Resolution, ttlSec: number): Resolution => {
      const t = this.now()
      this.cache.set(name, r, t + Math.min(maxTtlSec, Math.max(minTtlSec, ttlSec)) * 1000, t)
      return r
    }
    if (this.resolver === undefined) {
      try {
        const list = await withTimeout(
          dnsPromises.lookup(name, { all: true, verbatim: true }),
          this.opts.timeoutMs * this.opts.tries,
        )
        return keep({ addresses: list.map((a) => a.address) }, minTtlSec)
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERROR'
        if (NO_DATA.has(code)) return keep({ addresses: [] }, negativeTtlSec)
        return { addresses: [], error: code }
      }
    }
    const r = this.resolver
    const [v4, v6] = await Promise.allSettled([
      r.resolve4(name, { ttl: true }),
      r.resolve6(name, { ttl: true }),
    ])
    const addresses: string[] = []
    let ttl = Number.POSITIVE_INFINITY
    let error: string | undefined
    for (const res of [v4, v6]) {
      if (res.status === 'fulfilled') {
        for (const a of res.value) {
          addresses.push(a.address)
          ttl = Math.min(ttl, a.ttl)
        }
        continue
      }
      const code = (res.reason as { code?: string }).code ?? 'ERROR'
      if (!NO_DATA.has(code)) error = code
    }
    // A family that failed (rather than having no records) could hold the address the upstream
    // would use: the whole answer counts as failed.
    if (error !== undefined) return { addresses: [], error }
    if (addresses.length > 0) return keep({ addresses }, ttl)
    return keep({ addresses: [] }, negativeTtlSec)
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })), ms)
    timer.unref()
    p.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}
