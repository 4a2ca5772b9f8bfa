/**
 * A small authoritative DNS server for tests (node:dgram, UDP on 127.0.0.1, a free port): A and
 * AAAA answers from a table or a function, NXDOMAIN for unknown names, and answers that change
 * from one query to the next (a rebinding resolver). Node's dns.Resolver talks to it through
 * `setServers(['127.0.0.1:<port>'])`: no real DNS in tests.
 */
import { createSocket, type RemoteInfo } from 'node:dgram'
import { ipv4ToInt, ipv6ToWords } from '../../src/util/cidr.js'

export interface DnsRecords {
  a?: string[]
  aaaa?: string[]
  /** Seconds (default 60). */
  ttl?: number
}

/** What to answer: records, `nxdomain`, `servfail`, or `drop` (no answer: the client times out). */
export type DnsAnswer = DnsRecords | 'nxdomain' | 'servfail' | 'drop'

/**
 * `name` is lower-case without the trailing dot; `n` counts this name's queries of this type so far
 * (1 for the first), so an answer can change between queries.
 */
export type DnsAnswerFn = (name: string, type: string, n: number) => DnsAnswer

export interface TestDnsServer {
  port: number
  /** `127.0.0.1:<port>`, for dns.Resolver#setServers and config `dns.servers`. */
  server: string
  /** Every question received, in order. */
  queries: { name: string; type: string }[]
  /** Lets the process exit while the server runs (the bench keeps one for its whole run). */
  unref(): void
  close(): Promise<void>
}

const TYPES: Record<number, string> = { 1: 'A', 28: 'AAAA', 5: 'CNAME', 15: 'MX', 16: 'TXT', 255: 'ANY' }

/** Starts the server. A table maps names to records (a list: one entry per query, the last repeats). */
export async function startDnsServer(
  answers: Record<string, DnsAnswer | DnsAnswer[]> | DnsAnswerFn,
): Promise<TestDnsServer> {
  const sock = createSocket('udp4')
  const queries: { name: string; type: string }[] = []
  const counts = new Map<string, number>()
  const answerFor: DnsAnswerFn =
    typeof answers === 'function'
      ? answers
      : (name, _type, n) => {
          const a = answers[name]
          if (a === undefined) return 'nxdomain'
          if (Array.isArray(a)) return a[Math.min(n, a.length) - 1] ?? 'nxdomain'
          return a
        }
  sock.on('message', (msg: Buffer, from: RemoteInfo) => {
    const q = parseQuestion(msg)
    if (q === undefined) return
    queries.push({ name: q.name, type: q.type })
    const key = `${q.name} ${q.type}`
    const n = (counts.get(key) ?? 0) + 1
    counts.set(key, n)
    const a = answerFor(q.name, q.type, n)
    if (a === 'drop') return
    sock.send(encodeAnswer(msg, q, a), from.port, from.address)
  })
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
  const port = sock.address().port
  return {
    port,
    server: `127.0.0.1:${port}`,
    queries,
    unref: () => sock.unref(),
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  }
}

interface Question {
  id: number
  name: string
  type: string
  qtype: number
  /** The question section as received (copied into the answer). */
  raw: Buffer
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined
  let i = 12
  const labels: string[] = []
  for (;;) {
    if (i >= msg.length) return undefined
    const len = msg[i] as number
    if (len === 0) {
      i++
      break
    }
    if (len > 63 || i + 1 + len > msg.length) return undefined
    labels.push(msg.toString('latin1', i + 1, i + 1 + len).toLowerCase())
    i += 1 + len
  }
  if (i + 4 > msg.length) return undefined
  const qtype = msg.readUInt16BE(i)
  return {
    id: msg.readUInt16BE(0),
    name: labels.join('.'),
    type: TYPES[qtype] ?? String(qtype),
    qtype,
    raw: msg.subarray(12, i + 4),
  }
}

function encodeAnswer(query: Buffer, q: Question, a: Exclude<DnsAnswer, 'drop'>): Buffer {
  const rd = (query.readUInt16BE(2) & 0x0100) !== 0
  const rcode = a === 'nxdomain' ? 3 : a === 'servfail' ? 2 : 0
  const records: Buffer[] = []
  if (typeof a === 'object') {
    const ttl = a.ttl ?? 60
    const rr = (type: number, data: Buffer) => {
      const b = Buffer.alloc(12 + data.length)
      b.writeUInt16BE(0xc00c, 0) // pointer to the question name
      b.writeUInt16BE(type, 2)
      b.writeUInt16BE(1, 4) // IN
      b.writeUInt32BE(ttl, 6)
      b.writeUInt16BE(data.length, 10)
      data.copy(b, 12)
      records.push(b)
    }
    if (q.qtype === 1 || q.qtype === 255)
      for (const ip of a.a ?? []) {
        const n = ipv4ToInt(ip)
        if (n === undefined) throw new Error(`bad A record ${ip}`)
        const d = Buffer.alloc(4)
        d.writeUInt32BE(n)
        rr(1, d)
      }
    if (q.qtype === 28 || q.qtype === 255)
      for (const ip of a.aaaa ?? []) {
        const w = ipv6ToWords(ip)
        if (w === undefined) throw new Error(`bad AAAA record ${ip}`)
        const d = Buffer.alloc(16)
        for (let k = 0; k < 8; k++) d.writeUInt16BE(w[k] as number, k * 2)
        rr(28, d)
      }
  }
  const head = Buffer.alloc(12)
  head.writeUInt16BE(q.id, 0)
  head.writeUInt16BE(0x8000 | 0x0400 | (rd ? 0x0100 : 0) | 0x0080 | rcode, 2) // QR AA RD RA rcode
  head.writeUInt16BE(1, 4)
  head.writeUInt16BE(records.length, 6)
  return Buffer.concat([head, q.raw, ...records])
}
