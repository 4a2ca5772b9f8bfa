/**
 * Decides whether a URL a client hands to an API may be fetched by that API's server. The URL is
 * parsed the way the upstream most likely parses it (WHATWG URL, as Node, browsers, Go's and
 * Rust's url crates do), and whatever a different parser could read differently is refused:
 * backslashes, control characters and whitespace WHATWG silently drops, userinfo, percent-encoded
 * or Unicode-mapped host characters (full-width digits, ideographic dots), IPv4 addresses in
 * another notation than the dotted quad (`127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`). Then the
 * host: a name must not be an internal one (`localhost`, `*.internal`, single labels, …) and must
 * resolve only to public addresses; an address literal must be public (see address.ts).
 *
 * What no gateway can see: the upstream resolves the name again when it fetches (a DNS answer
 * may change in between: rebinding), and follows redirects. The egress proxy (src/egress) closes
 * both for the application's own outbound calls.
 */
import { isIPv4 } from 'node:net'
import { type AddressPolicy, type AddressReason, addressRefusal } from './address.js'
import type { HostResolver, Resolution } from './resolver.js'

/** Why a URL is refused. */
export type UrlReason =
  | AddressReason
  | 'too-long'
  | 'ambiguous'
  | 'not-absolute'
  | 'scheme'
  | 'invalid-url'
  | 'userinfo'
  | 'port'
  | 'host-not-allowed'
  | 'internal-name'
  | 'single-label'
  | 'unresolvable'
  | 'dns-error'
  | 'too-many-urls'

export type UrlVerdict =
  | { ok: true }
  | {
      ok: false
      reason: UrlReason
      /** The host as parsed (lower-case), when one was found. */
      host?: string
      /** The resolved address that was refused, for a name. */
      address?: string
    }

export interface UrlGuardOptions {
  /** Lower-case schemes allowed (`http`, `https`). */
  schemes: readonly string[]
  /** When not empty, the only hosts allowed: exact names or addresses, or `*.example.com` (subdomains). */
  allowHosts: readonly string[]
  /** Hosts refused besides the built-in internal names (same forms as allowHosts). */
  denyHosts: readonly string[]
  /** Address ranges refused or exempted on top of the built-in special-purpose ranges. */
  addresses: AddressPolicy
  /** Ports allowed (the scheme's default when the URL names none); any when empty. */
  ports: readonly number[]
  /** Accept `user:password@` in URLs (refused by default: a classic confusion between parsers). */
  allowUserinfo: boolean
  /** Longest URL accepted, in UTF-16 units. */
  maxLength: number
  /** When DNS fails (timeout, server failure): refuse (default) or let the URL through. */
  onDnsError: 'refuse' | 'allow'
  resolver: HostResolver
}

/**
 * Names that always point inside: loopback names, mDNS, the private-use `.internal` TLD (GCP's
 * `metadata.google.internal`, EC2's `*.compute.internal`), Kubernetes service names, and reverse
 * DNS zones. Matched on the whole name and as a suffix.
 */
const INTERNAL_SUFFIXES = [
  'localhost',
  'local',
  'localdomain',
  'internal',
  'intranet',
  'lan',
  'home',
  'corp',
  'private',
  'home.arpa',
  'in-addr.arpa',
  'ip6.arpa',
  'svc',
  'cluster.local',
  'consul',
]

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 }

/** Characters WHATWG drops or reinterprets, or that no valid URL holds raw (RFC 3986 has no raw space). */
const FORBIDDEN = /[\u0000-\u0020\u007f\\]/
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/
const UNICODE_DOTS = /[\u3002\uff0e\uff61]/
const NON_ASCII = /[^\u0000-\u007f]/

interface HostRule {
  exact: Set<string>
  suffixes: string[]
}

function hostRule(list: readonly string[]): HostRule {
  const exact = new Set<string>()
  const suffixes: string[] = []
  for (const raw of list) {
    const h = raw
      .trim()
      .toLowerCase()
      .replace(/\.$/, '')
      .replace(/^\[(.*)\]$/, '$1')
    if (h.startsWith('*.')) suffixes.push(h.slice(1))
    else exact.add(h)
  }
  return { exact, suffixes }
}

function matches(rule: HostRule, host: string): boolean {
  if (rule.exact.has(host)) return true
  for (const s of rule.suffixes) if (host.length > s.length && host.endsWith(s)) return true
  return false
}

const refuse = (reason: UrlReason, host?: string, address?: string): UrlVerdict => ({
  ok: false,
  reason,
  ...(host !== undefined ? { host: host.slice(0, 253) } : {}),
  ...(address !== undefined ? { address } : {}),
})
const OK: UrlVerdict = { ok: true }

/** Checks URL strings; build once per policy (or proxy), call per value. */
export class UrlGuard {
  private readonly opts: UrlGuardOptions
  private readonly schemes: Set<string>
  private readonly allow: HostRule | undefined
  private readonly deny: HostRule
  private readonly ports: Set<number> | undefined
  /** The verdict of each cached resolution (computed once per DNS answer). */
  private readonly verdicts = new WeakMap<Resolution, UrlVerdict>()

  constructor(opts: UrlGuardOptions) {
    this.opts = opts
    this.schemes = new Set(opts.schemes.map((s) => s.toLowerCase()))
    this.allow = opts.allowHosts.length > 0 ? hostRule(opts.allowHosts) : undefined
    this.deny = hostRule(opts.denyHosts)
    this.ports = opts.ports.length > 0 ? new Set(opts.ports) : undefined
  }

  /**
   * The verdict on `raw`: synchronous when nothing needs resolving (an address literal, a refusal,
   * a cached name), a promise otherwise. `reference`: the field may hold a relative reference
   * (`format: uri-reference`); one rooted at `/` (not `//`), or starting with `?` or `#`, is let
   * through (it names no other host). An empty string is no URL and passes.
   *
   * @example
   * const v = await guard.check('http://127.1/admin') // { ok: false, reason: 'loopback', host: '127.0.0.1' }
   */
  check(raw: string, reference = false): UrlVerdict | Promise<UrlVerdict> {
    const parsed = this.parse(raw, reference)
    if (parsed === undefined) return OK
    if ('ok' in parsed) return parsed
    return this.checkName(parsed.name)
  }

  /**
   * The static part of the check: undefined when the value names no host (empty, or an allowed
   * relative reference), a verdict, or the host name still to be resolved.
   */
  private parse(raw: string, reference: boolean): UrlVerdict | { name: string } | undefined {
    const o = this.opts
    if (raw === '') return undefined
    if (raw.length > o.maxLength) return refuse('too-long')
    if (FORBIDDEN.test(raw) || raw.trim() !== raw) return refuse('ambiguous')
    const scheme = SCHEME.exec(raw)
    if (scheme === null) {
      if (reference && /^(?:\/(?!\/)|[?#])/.test(raw)) return undefined
      return refuse('not-absolute')
    }
    const s = (scheme[1] as string).toLowerCase()
    if (!this.schemes.has(s)) return refuse('scheme')
    const rest = raw.slice(scheme[0].length)
    // `http:host`, `http:/host` and `http:///host` are repaired by WHATWG, read otherwise elsewhere.
    if (!rest.startsWith('//') || rest.startsWith('///')) return refuse('ambiguous')
    const end = rest.slice(2).search(/[/?#]/)
    const authority = end === -1 ? rest.slice(2) : rest.slice(2, 2 + end)
    const at = authority.lastIndexOf('@')
    if (at !== -1 && !o.allowUserinfo) return refuse('userinfo')
    if (authority.indexOf('@') !== at) return refuse('ambiguous')
    // An `@` before the first `/` (in a query or fragment right after the host: `http://a.com?@b`,
    // `http://a.com#@b`) or anywhere in the fragment is where naive parsers find userinfo.
    const slash = rest.indexOf('/', 2)
    const hash = raw.indexOf('#')
    if (
      rest.slice(2 + authority.length, slash === -1 ? undefined : slash).includes('@') ||
      (hash !== -1 && raw.includes('@', hash))
    )
      return refuse('ambiguous')
    const hostPort = authority.slice(at + 1)
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      return refuse('invalid-url')
    }
    if (!o.allowUserinfo && (url.username !== '' || url.password !== '')) return refuse('userinfo')
    const hostname = url.hostname
    if (hostname === '') return refuse('invalid-url')
    let rawHost = hostPort
    if (rawHost.startsWith('[')) rawHost = rawHost.slice(0, rawHost.indexOf(']') + 1)
    else if (rawHost.lastIndexOf(':') !== -1) rawHost = rawHost.slice(0, rawHost.lastIndexOf(':'))
    if (rawHost.includes('%') || UNICODE_DOTS.test(rawHost)) return refuse('ambiguous', hostname)
    if (this.ports !== undefined) {
      const port = url.port === '' ? DEFAULT_PORTS[s] : Number(url.port)
      if (port === undefined || !this.ports.has(port)) return refuse('port', hostname)
    }
    const nonAscii = NON_ASCII.test(rawHost)
    if (hostname.startsWith('[')) {
      const ip = hostname.slice(1, -1)
      if (this.allow !== undefined && !matches(this.allow, ip)) return refuse('host-not-allowed', ip)
      if (matches(this.deny, ip)) return refuse('denied', ip)
      const r = addressRefusal(ip, o.addresses)
      return r === undefined ? OK : refuse(r, ip, ip)
    }
    if (isIPv4(hostname)) {
      const r = addressRefusal(hostname, o.addresses)
      if (r !== undefined) return refuse(r, hostname, hostname)
      // A public address written another way than as a dotted quad: another parser may read a name.
      if (nonAscii || rawHost.toLowerCase().replace(/\.$/, '') !== hostname)
        return refuse('ambiguous', hostname)
      if (this.allow !== undefined && !matches(this.allow, hostname))
        return refuse('host-not-allowed', hostname)
      if (matches(this.deny, hostname)) return refuse('denied', hostname)
      return OK
    }
    let name = hostname.toLowerCase()
    if (name.endsWith('.')) name = name.slice(0, -1)
    if (name === '' || name.endsWith('.') || name.startsWith('.') || name.includes('..'))
      return refuse('invalid-url', hostname)
    // A non-ASCII host must be a real IDN (it becomes punycode); one that IDNA maps onto plain
    // ASCII (full-width letters) reads differently to a parser without UTS #46 mapping.
    if (nonAscii && !name.split('.').some((l) => l.startsWith('xn--'))) return refuse('ambiguous', name)
    if (this.allow !== undefined && !matches(this.allow, name)) return refuse('host-not-allowed', name)
    if (matches(this.deny, name)) return refuse('denied', name)
    if (!name.includes('.')) return refuse('single-label', name)
    for (const suffix of INTERNAL_SUFFIXES) {
      if (
        name === suffix ||
        (name.endsWith(suffix) && name.charCodeAt(name.length - suffix.length - 1) === 0x2e)
      )
        return refuse('internal-name', name)
    }
    return { name }
  }

  /** Resolves a host name (cached) and checks every address it has. */
  checkName(name: string): UrlVerdict | Promise<UrlVerdict> {
    const cached = this.opts.resolver.cached(name)
    if (cached !== undefined) return this.judge(name, cached)
    return this.opts.resolver.resolve(name).then((r) => this.judge(name, r))
  }

  private judge(name: string, r: Resolution): UrlVerdict {
    const known = this.verdicts.get(r)
    if (known !== undefined) return known
    let v: UrlVerdict = OK
    if (r.error !== undefined) v = this.opts.onDnsError === 'allow' ? OK : refuse('dns-error', name)
    else if (r.addresses.length === 0) v = refuse('unresolvable', name)
    else {
      for (const a of r.addresses) {
        const reason = addressRefusal(a, this.opts.addresses)
        if (reason !== undefined) {
          v = refuse(reason, name, a)
          break
        }
      }
    }
    // Failures are not cached by the resolver (a new Resolution each time): nothing to keep.
    if (r.error === undefined) this.verdicts.set(r, v)
    return v
  }
}
