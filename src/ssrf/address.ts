/**
 * Which IP addresses a server-side request must never reach: the IANA special-purpose registries
 * (IPv4 and IPv6), cloud metadata addresses, and IPv6 forms that carry an IPv4 address
 * (IPv4-mapped, IPv4-compatible, NAT64, 6to4), judged by the IPv4 address they carry. Shared by
 * the ssrf-guard policy and the egress proxy. Matching goes through src/util/cidr.ts (node:net
 * BlockList: numeric, so no notation trick changes the answer).
 */
import { isIPv4, isIPv6 } from 'node:net'
import { CidrSet, intToIpv4, ipv6ToWords } from '../util/cidr.js'

/** Why an address is refused. */
export type AddressReason =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'metadata'
  | 'multicast'
  | 'reserved'
  | 'documentation'
  | 'benchmarking'
  | 'unique-local'
  | 'site-local'
  | 'transition'
  | 'denied'

/** Cloud instance metadata and host-agent addresses (some lie outside every special range). */
const METADATA = CidrSet.from([
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle…
  '169.254.169.123', // AWS time sync
  '169.254.170.2', // AWS ECS task metadata
  '169.254.170.23', // AWS EKS pod identity
  '168.63.129.16', // Azure wire server (a public address)
  '100.100.100.200', // Alibaba Cloud
  'fd00:ec2::254', // AWS IPv6 metadata
  'fd00:ec2::123', // AWS IPv6 time sync
  'fd00:ec2::23', // AWS EKS pod identity (IPv6)
])

const V4: [AddressReason, string[]][] = [
  ['unspecified', ['0.0.0.0/8']],
  ['loopback', ['127.0.0.0/8']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  ['cgnat', ['100.64.0.0/10']],
  ['link-local', ['169.254.0.0/16']],
  ['reserved', ['192.0.0.0/24', '192.88.99.0/24', '240.0.0.0/4']],
  ['documentation', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']],
  ['benchmarking', ['198.18.0.0/15']],
  ['multicast', ['224.0.0.0/4']],
]

const V6: [AddressReason, string[]][] = [
  ['unspecified', ['::/128']],
  ['loopback', ['::1/128']],
  ['reserved', ['100::/64', '2001::/23', '5f00::/16']],
  ['documentation', ['2001:db8::/32', '3fff::/20']],
  ['private', ['64:ff9b:1::/48']],
  ['unique-local', ['fc00::/7']],
  ['link-local', ['fe80::/10']],
  ['site-local', ['fec0::/10']],
  ['multicast', ['ff00::/8']],
]

const compile = (table: [AddressReason, string[]][]): [AddressReason, CidrSet][] =>
  table.map(([reason, ranges]) => [reason, CidrSet.from(ranges)])
const V4_SETS = compile(V4)
const V6_SETS = compile(V6)
/** Global unicast: the only IPv6 space a public destination can be in. */
const GLOBAL_UNICAST = CidrSet.from(['2000::/3'])

/** Extra rules from a config: ranges refused or exempted on top of the built-in list. */
export interface AddressPolicy {
  /** Ranges that are refused although public (e.g. your own networks' public addresses). */
  deny?: CidrSet
  /** Ranges that are allowed although special (an internal service you mean to reach). */
  allow?: CidrSet
}

/**
 * Why `ip` must not be reached, or undefined when it is a public address. Anything that is not a
 * valid IP address is refused (`reserved`). IPv6 forms carrying an IPv4 address are judged by
 * that address (`::ffff:127.0.0.1` is loopback); the deprecated IPv4-compatible form (`::a.b.c.d`)
 * and Teredo are refused outright (`transition`).
 *
 * @example
 * addressRefusal('169.254.169.254') // 'metadata'
 * addressRefusal('::ffff:10.0.0.1') // 'private'
 * addressRefusal('93.184.216.34') // undefined
 */
export function addressRefusal(ip: string, policy: AddressPolicy = {}): AddressReason | undefined {
  if (policy.allow?.has(ip)) return undefined
  if (policy.deny?.has(ip)) return 'denied'
  if (METADATA.has(ip)) return 'metadata'
  if (isIPv4(ip)) {
    for (const [reason, set] of V4_SETS) if (set.has(ip)) return reason
    return undefined
  }
  if (!isIPv6(ip)) return 'reserved'
  const embedded = embeddedIpv4(ip)
  if (embedded !== undefined) {
    if (embedded === null) return 'transition'
    return addressRefusal(embedded, policy)
  }
  for (const [reason, set] of V6_SETS) if (set.has(ip)) return reason
  if (!GLOBAL_UNICAST.has(ip)) return 'reserved'
  return undefined
}

/**
 * The IPv4 address an IPv6 address carries: IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`),
 * 6to4 (`2002::/16`). `null` for forms whose IPv4 address cannot be trusted to be what is reached
 * (IPv4-compatible `::/96` other than `::` and `::1`, Teredo `2001::/32`); undefined for others.
 */
export function embeddedIpv4(ip: string): string | null | undefined {
  const w = ipv6ToWords(ip)
  if (w === undefined) return undefined
  const [a, b, c, d, e, f, g, h] = w as [number, number, number, number, number, number, number, number]
  const tail = () => intToIpv4((g * 65536 + h) >>> 0)
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0) {
    if (f === 0xffff) return tail()
    if (f === 0 && (g !== 0 || h > 1)) return null // IPv4-compatible (deprecated)
    return undefined
  }
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return tail()
  if (a === 0x2002) return intToIpv4((b * 65536 + c) >>> 0)
  if (a === 0x2001 && b === 0) return null // Teredo
  return undefined
}
