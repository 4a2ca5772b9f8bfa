/**
 * CIDR ranges and address sets, shared by the parts that match client or destination addresses
 * against ranges (ip-filter, ssrf-guard, the egress proxy; CIDR bans parse through it). Built
 * on node:net's BlockList, which compares numerically: no string tricks (`010.0.0.1`, `::ffff:`
 * forms) get past it. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) matches the IPv4 ranges of
 * a set too.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** One parsed range: its network address (host bits cleared), prefix length and family. */
export interface Cidr {
  /** The network address in canonical form (`10.0.0.0`, `2001:db8::`). */
  network: string
  prefix: number
  family: 'ipv4' | 'ipv6'
}

/** `a.b.c.d` with four decimal parts 0–255, no leading zeros (the only IPv4 form accepted in configs). */
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

/** IPv4 text to a 32-bit unsigned integer (dotted quad only); undefined otherwise. */
export function ipv4ToInt(ip: string): number | undefined {
  if (!DOTTED_QUAD.test(ip)) return undefined
  let n = 0
  for (const part of ip.split('.')) n = n * 256 + Number(part)
  return n >>> 0
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/**
 * IPv6 text (any valid form, with or without an embedded IPv4 tail, no zone id) to its 8 16-bit
 * groups; undefined when not a valid IPv6 address.
 */
export function ipv6ToWords(ip: string): number[] | undefined {
  if (ip.includes('%') || !isIPv6(ip)) return undefined
  let text = ip.toLowerCase()
  let tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  const last = text.slice(lastColon + 1)
  if (last.includes('.')) {
    const v4 = ipv4ToInt(last)
    if (v4 === undefined) return undefined
    tail = [v4 >>> 16, v4 & 0xffff]
    // '::ffff:1.2.3.4' → '::ffff', '::1.2.3.4' → '::', '1:2:3:4:5:6:1.2.3.4' → '1:2:3:4:5:6'
    text = text.slice(0, lastColon + 1)
    if (!text.endsWith('::')) text = text.slice(0, -1)
  }
  const want = 8 - tail.length
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)))
  let words: number[]
  if (halves.length === 2) {
    const head = parse(halves[0] as string)
    const rest = parse(halves[1] as string)
    const zeros = want - head.length - rest.length
    if (zeros < 0) return undefined
    words = [...head, ...new Array<number>(zeros).fill(0), ...rest]
  } else {
    words = parse(text)
  }
  words.push(...tail)
  if (words.length !== 8 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) return undefined
  return words
}

/** The canonical (RFC 5952) text of 8 IPv6 groups. */
export function wordsToIpv6(words: readonly number[]): string {
  // Longest run of two or more zero groups becomes '::' (the first such run on a tie).
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/**
 * Parses `address` or `address/prefix` (IPv4 dotted quad, or IPv6). Host bits are cleared, so
 * `10.1.2.3/8` is `10.0.0.0/8`. Undefined when it is not one (leading zeros, `127.1`, a zone id,
 * a prefix out of range are all refused).
 *
 * @example
 * parseCidr('192.168.0.0/16') // { network: '192.168.0.0', prefix: 16, family: 'ipv4' }
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/')
  const addr = slash === -1 ? text : text.slice(0, slash)
  const bits = slash === -1 ? undefined : text.slice(slash + 1)
  if (bits !== undefined && !/^(?:0|[1-9]\d{0,2})$/.test(bits)) return undefined
  const v4 = ipv4ToInt(addr)
  if (v4 !== undefined) {
    const prefix = bits === undefined ? 32 : Number(bits)
    if (prefix > 32) return undefined
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
    return { network: intToIpv4((v4 & mask) >>> 0), prefix, family: 'ipv4' }
  }
  const words = ipv6ToWords(addr)
  if (words === undefined) return undefined
  const prefix = bits === undefined ? 128 : Number(bits)
  if (prefix > 128) return undefined
  const masked = words.map((w, i) => {
    const keep = Math.max(0, Math.min(16, prefix - i * 16))
    return keep === 16 ? w : keep === 0 ? 0 : w & ((0xffff << (16 - keep)) & 0xffff)
  })
  return { network: wordsToIpv6(masked), prefix, family: 'ipv6' }
}

/** `network/prefix` text of a parsed range. */
export function formatCidr(c: Cidr): string {
  return `${c.network}/${c.prefix}`
}

/** The family of an address as node:net names it, or undefined when it is not an IP address. */
export function ipFamily(ip: string): 'ipv4' | 'ipv6' | undefined {
  return isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined
}

/**
 * A set of CIDR ranges with a membership test. Immutable once built (build a new one to change
 * it): `has` is a BlockList check, O(ranges) in node:net, fine for the hundreds of ranges configs
 * hold.
 *
 * @example
 * const s = CidrSet.from(['10.0.0.0/8', '2001:db8::/32'])
 * s.has('10.1.2.3') // true
 * s.has('::ffff:10.1.2.3') // true (IPv4-mapped)
 */
export class CidrSet {
  private readonly list = new BlockList()
  readonly ranges: readonly Cidr[]

  private constructor(ranges: Cidr[]) {
    this.ranges = ranges
    for (const r of ranges) this.list.addSubnet(r.network, r.prefix, r.family)
  }

  /** Builds a set; throws a RangeError naming the first entry that is not an address or a range. */
  static from(entries: readonly string[]): CidrSet {
    const ranges: Cidr[] = []
    for (const e of entries) {
      const c = parseCidr(e.trim())
      if (c === undefined) throw new RangeError(`"${e}" is not an IP address or CIDR range`)
      ranges.push(c)
    }
    return new CidrSet(ranges)
  }

  static readonly empty: CidrSet = new CidrSet([])

  get size(): number {
    return this.ranges.length
  }

  /** True when `ip` (IPv4 or IPv6 text) lies in one of the ranges; false for anything else. */
  has(ip: string): boolean {
    if (this.ranges.length === 0) return false
    const fam = ipFamily(ip)
    if (fam === undefined) return false
    return this.list.check(ip, fam)
  }
}

/**
 * Problems with a list of ranges from a config (`path[i]: message`), for a policy's config check.
 */
export function cidrListProblems(path: string, entries: readonly string[]): string[] {
  const out: string[] = []
  entries.forEach((e, i) => {
    if (parseCidr(e.trim()) === undefined)
      out.push(
        `${path}[${i}]: expected an IP address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32), found "${e}"`,
      )
  })
  return out
}
