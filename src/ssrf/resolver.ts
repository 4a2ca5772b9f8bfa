/**
 * Host name resolution for URL checks and the egress proxy: A and AAAA records (with their TTLs)
 * through node:dns's Resolver (c-ares: asynchronous, never a libuv thread pool slot, which a slow
 * authoritative server an attacker controls could otherwise tie up), from the DNS servers named in
 * the config or the system's (/etc/resolv.conf). Names in the hosts file (/etc/hosts) are answered
 * from it first, as getaddrinfo does. Answers are cached in a bounded LRU (TTL clamped to
 * [minTtlSec, maxTtlSec]; names that do not exist for `negativeTtlSec`); concurrent lookups of one
 * name share one query. Failures (timeouts, SERVFAIL) are not cached.
 */
import { readFileSync, statSync } from 'node:fs'
import { promises as dnsPromises } from 'node:dns'
import { isIP } from 'node:net'
import { TtlLru } from '../util/ttl-lru.js'

export interface ResolverOptions {
  /** DNS servers (`1.1.1.1`, `[2606:4700::1111]:53`, `127.0.0.1:5353`); the system's when empty. */
  servers: readonly string[]
  /** Per query, ms. */
  timeoutMs: number
  /** Attempts per server. */
  tries: number
  /** Cached names at most. */
  maxEntries: number
  /** Shortest time an answer is kept, s. */
  minTtlSec: number
  /** Longest time an answer is kept, s. */
  maxTtlSec: number
  /** How long a name that does not exist is remembered, s. */
  negativeTtlSec: number
  /** A hosts file answered from first ('' for none). Default /etc/hosts. */
  hostsFile?: string
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

/** Largest hosts file read. */
const MAX_HOSTS_BYTES = 4 * 1024 * 1024

/** Parses a hosts file: name (lower-case) → addresses, in file order. */
export function parseHosts(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    if (line === '') continue
    const [addr, ...names] = line.split(/\s+/)
    if (addr === undefined || isIP(addr.replace(/%.*$/, '')) === 0) continue
    for (const n of names) {
      const name = n.toLowerCase().replace(/\.$/, '')
      const list = map.get(name) ?? []
      if (!list.includes(addr)) list.push(addr)
      map.set(name, list)
    }
  }
  return map
}

const NO_DATA = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN', 'ENONAME'])

/** A caching resolver. */
export class HostResolver {
  private readonly cache: TtlLru<Resolution>
  private readonly inflight = new Map<string, Promise<Resolution>>()
  private readonly resolver: dnsPromises.Resolver
  private readonly opts: ResolverOptions
  private readonly now: () => number
  /** Queries sent (not answered from the cache), for tests and metrics. */
  queries = 0

  private readonly hostsFile: string
  private hosts = new Map<string, Resolution>()
  private hostsStamp = ''
  private hostsCheckedAt = Number.NEGATIVE_INFINITY

  constructor(options: Partial<ResolverOptions> = {}) {
    this.opts = { ...DEFAULT_RESOLVER_OPTIONS, ...options }
    this.now = this.opts.now ?? Date.now
    this.cache = new TtlLru(this.opts.maxEntries, this.now)
    this.resolver = new dnsPromises.Resolver({ timeout: this.opts.timeoutMs, tries: this.opts.tries })
    if (this.opts.servers.length > 0) this.resolver.setServers([...this.opts.servers])
    this.hostsFile = this.opts.hostsFile ?? '/etc/hosts'
  }

  /** The hosts file's answer for `name`; the file is re-read when it changed (checked every 10 s). */
  private fromHosts(name: string): Resolution | undefined {
    if (this.hostsFile === '') return undefined
    const t = this.now()
    if (t - this.hostsCheckedAt >= 10_000) {
      this.hostsCheckedAt = t
      try {
        const st = statSync(this.hostsFile)
        const stamp = `${st.size}:${st.mtimeMs}`
        if (stamp !== this.hostsStamp && st.size <= MAX_HOSTS_BYTES) {
          const map = new Map<string, Resolution>()
          for (const [n, a] of parseHosts(readFileSync(this.hostsFile, 'utf8'))) map.set(n, { addresses: a })
          this.hosts = map
          this.hostsStamp = stamp
        }
      } catch {
        this.hosts = new Map()
        this.hostsStamp = ''
      }
    }
    return this.hosts.get(name)
  }

  /** The cached answer for `name` (lower-case, no trailing dot), or undefined: no query is sent. */
  cached(name: string): Resolution | undefined {
    return this.fromHosts(name) ?? this.cache.get(name)
  }

  /** Resolves `name` (lower-case, no trailing dot); never rejects. */
  resolve(name: string): Promise<Resolution> {
    const file = this.fromHosts(name)
    if (file !== undefined) return Promise.resolve(file)
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
