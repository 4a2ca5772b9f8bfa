/** Who the client is: its address (trusted-proxy aware) and the request id it carries. */
import { randomBytes } from 'node:crypto'
import { BlockList, isIPv4 } from 'node:net'

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) as `1.2.3.4`. */
export function normalizeIp(addr: string | undefined): string {
  if (addr === undefined) return ''
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}

/** The `proxy.trustedProxies` list as a BlockList; undefined when empty. */
export function buildTrustedProxies(list: readonly string[]): BlockList | undefined {
  if (list.length === 0) return undefined
  const trusted = new BlockList()
  for (const p of list) {
    const [addr, bits] = p.split('/') as [string, string | undefined]
    const fam = isIPv4(addr) ? 'ipv4' : 'ipv6'
    if (bits === undefined) trusted.addAddress(addr, fam)
    else trusted.addSubnet(addr, Number(bits), fam)
  }
  return trusted
}

/** The client address and whether the peer is a trusted proxy. */
export function clientAddress(
  remoteAddress: string | undefined,
  xff: string | string[] | undefined,
  trusted: BlockList | undefined,
): { clientIp: string; trusted: boolean } {
  const remote = normalizeIp(remoteAddress)
  if (trusted === undefined || remote === '') return { clientIp: remote, trusted: false }
  const isTrusted = trusted.check(remote, isIPv4(remote) ? 'ipv4' : 'ipv6')
  return { clientIp: isTrusted ? (clientFromForwarded(xff, trusted) ?? remote) : remote, trusted: isTrusted }
}

/** The client IP from X-Forwarded-For: the right-most address that is not a trusted proxy. */
export function clientFromForwarded(
  xff: string | string[] | undefined,
  trusted: BlockList,
): string | undefined {
  if (xff === undefined) return undefined
  const list = (Array.isArray(xff) ? xff.join(',') : xff).split(',')
  for (let i = list.length - 1; i >= 0; i--) {
    const ip = normalizeIp((list[i] as string).trim())
    if (ip === '') continue
    const fam = isIPv4(ip) ? 'ipv4' : ip.includes(':') ? 'ipv6' : undefined
    if (fam === undefined) return undefined
    if (!trusted.check(ip, fam)) return ip
  }
  return undefined
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{8,128}$/
// Request ids: a random per-process prefix and a counter. Unique across processes and restarts
// (the prefix has 96 random bits), cheaper than a UUID per request; ids need no secrecy.
const ID_PREFIX = randomBytes(12).toString('base64url')
let idCounter = 0

/** The request id: the client's (or proxy's) when it is a safe token, else a new one. */
export function requestIdFor(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && REQUEST_ID_RE.test(incoming)) return incoming
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${ID_PREFIX}-${idCounter.toString(36)}`
}
