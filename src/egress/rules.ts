/**
 * The egress proxy's rules, built once per config (start and every reload): client ranges, the
 * destination table, extra address ranges and the resolver; and the one check every call goes
 * through before a connection is made (resolve once, check every address, connect to that one).
 */
import { isIP, isIPv4 } from 'node:net'
import type { ErrorCode } from '../gateway/errors.js'
import { type AddressPolicy, addressRefusal } from '../ssrf/address.js'
import { HostResolver } from '../ssrf/resolver.js'
import { CidrSet } from '../util/cidr.js'
import type { EgressConfig } from './config.js'
import { compileDestinations, type Destination } from './destinations.js'

/** Everything built from one config. */
export class Rules {
  readonly clients: CidrSet
  readonly exact = new Map<string, Destination[]>()
  readonly wildcard: [string, Destination][] = []
  readonly addresses: AddressPolicy
  readonly resolver: HostResolver

  constructor(
    readonly cfg: EgressConfig,
    baseDir: string,
  ) {
    const { problems, dests } = compileDestinations(cfg, baseDir)
    if (problems.length > 0) {
      const err = new Error(
        `invalid config: egress:\n${problems.map((p) => `  ${p.segs.join('.')}: ${p.message}`).join('\n')}`,
      )
      err.name = 'ConfigError'
      throw err
    }
    this.clients = CidrSet.from(cfg.clients)
    for (const d of dests) {
      const h = normalizeHost(d.cfg.host)
      if (h.startsWith('*.')) this.wildcard.push([h.slice(1), d])
      else this.exact.set(h, [...(this.exact.get(h) ?? []), d])
    }
    this.addresses = {
      allow: cfg.allowAddresses.length > 0 ? CidrSet.from(cfg.allowAddresses) : undefined,
      deny: cfg.denyAddresses.length > 0 ? CidrSet.from(cfg.denyAddresses) : undefined,
    }
    this.resolver = new HostResolver({
      servers: cfg.dns.servers,
      timeoutMs: cfg.dns.timeoutMs,
      tries: cfg.dns.tries,
      maxEntries: cfg.dns.cacheEntries,
      minTtlSec: cfg.dns.minTtlSec,
      maxTtlSec: cfg.dns.maxTtlSec,
      negativeTtlSec: cfg.dns.negativeTtlSec,
      hostsFile: cfg.dns.hostsFile,
    })
  }

  /** The destination rule for host:port, or undefined. */
  find(host: string, port: number): Destination | undefined {
    for (const d of this.exact.get(host) ?? []) if (d.ports.has(port)) return d
    for (const [suffix, d] of this.wildcard)
      if (host.length > suffix.length && host.endsWith(suffix) && d.ports.has(port)) return d
    return undefined
  }
}

export function normalizeHost(h: string): string {
  let x = h.trim().toLowerCase()
  if (x.startsWith('[') && x.endsWith(']')) x = x.slice(1, -1)
  if (x.endsWith('.')) x = x.slice(0, -1)
  return x
}

export function unmapped(ip: string | undefined): string {
  if (ip === undefined) return ''
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip
}

/** Why a call was refused or failed: the HTTP status and code for the application, the reason for logs. */
export class EgressRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {
    super(reason)
  }
}

/**
 * Resolves `host` (once) and checks every address; the address to connect to. A name whose answer
 * holds any refused address is refused, as in ssrf-guard.
 */
export async function checkedAddress(rules: Rules, host: string): Promise<string> {
  if (isIP(host) !== 0) {
    const r = addressRefusal(host, rules.addresses)
    if (r !== undefined) throw new EgressRefusal('GW_ERR_FORBIDDEN', `address refused: ${r}`)
    return host
  }
  const res = await rules.resolver.resolve(host)
  if (res.error !== undefined) throw new EgressRefusal('GW_ERR_UPSTREAM_UNAVAILABLE', `dns: ${res.error}`)
  if (res.addresses.length === 0) throw new EgressRefusal('GW_ERR_UPSTREAM_UNAVAILABLE', 'dns: no address')
  for (const a of res.addresses) {
    const r = addressRefusal(a, rules.addresses)
    if (r !== undefined) throw new EgressRefusal('GW_ERR_FORBIDDEN', `address refused: ${r} (${a})`)
  }
  return res.addresses.find((a) => isIPv4(a)) ?? (res.addresses[0] as string)
}
