/**
 * Raw HTTP/2 over a TCP (h2c prior knowledge) or TLS (ALPN h2) socket, for tests that must put
 * exact bytes on the wire: header fields are HPACK-encoded as literals without indexing and
 * without Huffman coding, in the order and spelling given (upper-case names, connection-specific
 * headers, duplicate or misplaced pseudo-headers, raw control bytes: whatever the test wants), so
 * no client library validates or normalizes anything. Frames can be written one by one (a rapid
 * reset flood, a CONTINUATION flood).
 *
 * Reading: the client announces SETTINGS_HEADER_TABLE_SIZE = 0, so the server's HPACK encoder
 * uses no dynamic table; response header blocks are then decoded with the static table, and
 * Huffman-coded strings (which only this reader would need a table for) are reported as
 * `<huffman>`. `:status` is never Huffman-coded in practice (three digits are never shorter coded),
 * and the gateway's problem bodies travel in DATA frames, so a test reads the status, the problem
 * `code`, RST_STREAM and GOAWAY exactly.
 */
import net from 'node:net'
import tls from 'node:tls'

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** RFC 7541 Appendix A. */
const STATIC_TABLE: [string, string][] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
]

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix. */
function encodeInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1
  if (value < max) return [first | value]
  const out = [first | max]
  let v = value - max
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}

function encodeString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1')
  return Buffer.concat([Buffer.from(encodeInt(bytes.length, 7, 0)), bytes])
}

/**
 * A header block of literal fields without indexing, new names, no Huffman: each name and value
 * is sent byte for byte (latin1 strings, one char per byte).
 */
export function encodeHeaderBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of headers) {
    parts.push(Buffer.from([0x00]), encodeString(name), encodeString(value))
  }
  return Buffer.concat(parts)
}

function decodeInt(buf: Buffer, pos: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1
  let v = (buf[pos] as number) & max
  pos++
  if (v < max) return [v, pos]
  let m = 0
  for (;;) {
    const b = buf[pos++] as number
    v += (b & 0x7f) * 2 ** m
    m += 7
    if ((b & 0x80) === 0) break
  }
  return [v, pos]
}

function decodeString(buf: Buffer, pos: number): [string, number] {
  const huffman = ((buf[pos] as number) & 0x80) !== 0
  const [len, p] = decodeInt(buf, pos, 7)
  const s = huffman ? '<huffman>' : buf.toString('latin1', p, p + len)
  return [s, p + len]
}

/** Decodes a header block sent with no dynamic table (see the module comment). */
export function decodeHeaderBlock(buf: Buffer): [string, string][] {
  const out: [string, string][] = []
  let pos = 0
  const nameAt = (i: number) => STATIC_TABLE[i - 1]?.[0] ?? `<index ${i}>`
  while (pos < buf.length) {
    const b = buf[pos] as number
    if (b & 0x80) {
      const [i, p] = decodeInt(buf, pos, 7)
      pos = p
      const e = STATIC_TABLE[i - 1]
      out.push(e ? [e[0], e[1]] : [`<index ${i}>`, ''])
      continue
    }
    if ((b & 0xe0) === 0x20) {
      // dynamic table size update
      pos = decodeInt(buf, pos, 5)[1]
      continue
    }
    const prefix = (b & 0xc0) === 0x40 ? 6 : 4
    const [i, p] = decodeInt(buf, pos, prefix)
    pos = p
    let name: string
    if (i === 0) [name, pos] = decodeString(buf, pos)
    else name = nameAt(i)
    let value: string
    ;[value, pos] = decodeString(buf, pos)
    out.push([name, value])
  }
  return out
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9)
  h.writeUIntBE(payload.length, 0, 3)
  h[3] = type
  h[4] = flags
  h.writeUInt32BE(streamId & 0x7fffffff, 5)
  return Buffer.concat([h, payload])
}

export function settingsFrame(settings: [number, number][], ack = false): Buffer {
  const p = Buffer.alloc(settings.length * 6)
  settings.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6)
    p.writeUInt32BE(v, i * 6 + 2)
  })
  return frame(FRAME.SETTINGS, ack ? FLAG.ACK : 0, 0, p)
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code, 0)
  return frame(FRAME.RST_STREAM, 0, streamId, p)
}

export interface Frame {
  type: number
  flags: number
  streamId: number
  payload: Buffer
}

/** What the server sent on one stream. */
export interface H2StreamResult {
  streamId: number
  /** `:status` of the final response head, when one arrived. */
  status: number | undefined
  /** Decoded header fields of the final head (Huffman-coded values read `<huffman>`). */
  headers: [string, string][]
  /** 1xx statuses before the final one. */
  informational: number[]
  body: Buffer
  /** `code` of a problem+json body, when the body is one. */
  code: string | undefined
  /** RST_STREAM error code the server sent on this stream. */
  rstCode: number | undefined
  /** The stream ended (END_STREAM, RST_STREAM, or the connection went away). */
  ended: boolean
  /** The server ended its response with END_STREAM (a complete response). */
  complete: boolean
}

export interface RawH2Options {
  /** TLS with ALPN h2 (certificate not verified) instead of h2c prior knowledge. */
  tls?: boolean
  host?: string
  /** SETTINGS the client sends after the preface (SETTINGS_HEADER_TABLE_SIZE = 0 is always first). */
  settings?: [number, number][]
}

/**
 * One raw HTTP/2 connection. Answers the server's SETTINGS and PINGs, collects every frame, and
 * keeps per-stream results.
 */
export class RawH2Connection {
  readonly socket: net.Socket
  readonly frames: Frame[] = []
  readonly streams = new Map<number, H2StreamResult>()
  goaway: { lastStreamId: number; code: number } | undefined = undefined
  closed = false
  /** The ALPN protocol negotiated (TLS only). */
  alpn: string | false | undefined = undefined
  private buf: Buffer = Buffer.alloc(0)
  private headerBlock: { streamId: number; parts: Buffer[]; endStream: boolean } | undefined
  private waiters: (() => void)[] = []
  private nextId = 1

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (c: Buffer) => this.onData(c))
    const onGone = () => {
      this.closed = true
      for (const s of this.streams.values()) s.ended = true
      this.wake()
    }
    socket.on('close', onGone)
    socket.on('error', onGone)
  }

  /** Connects, sends the preface and SETTINGS, and resolves once the socket is writable. */
  static connect(port: number, opts: RawH2Options = {}): Promise<RawH2Connection> {
    const host = opts.host ?? '127.0.0.1'
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tls.connect({
            host,
            port,
            ALPNProtocols: ['h2'],
            rejectUnauthorized: false,
            servername: 'localhost',
          })
        : net.connect({ host, port })
      const onError = (err: Error) => reject(err)
      socket.once('error', onError)
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError)
        const c = new RawH2Connection(socket)
        if (opts.tls) c.alpn = (socket as tls.TLSSocket).alpnProtocol ?? false
        socket.write(Buffer.concat([PREFACE, settingsFrame([[0x1, 0], ...(opts.settings ?? [])])]))
        resolve(c)
      })
    })
  }

  /** The next client stream id (odd, increasing). */
  newStreamId(): number {
    const id = this.nextId
    this.nextId += 2
    return id
  }

  write(data: Buffer): boolean {
    if (this.socket.destroyed) return false
    return this.socket.write(data)
  }

  /**
   * Sends a request: HEADERS (split into `continuations` + 1 fragments when asked), then the body
   * in one DATA frame. Resolves the stream's result once it ended or the timeout passed.
   */
  async request(
    headers: readonly (readonly [string, string])[],
    opts: { body?: Buffer | string; timeoutMs?: number; endStream?: boolean } = {},
  ): Promise<H2StreamResult & { timedOut: boolean }> {
    const id = this.newStreamId()
    const block = encodeHeaderBlock(headers)
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body as string, 'latin1')
    const endOnHeaders = body === undefined && opts.endStream !== false
    // Blocks over the default SETTINGS_MAX_FRAME_SIZE (16384) go on in CONTINUATION frames.
    const max = 16384
    for (let off = 0, first = true; first || off < block.length; off += max, first = false) {
      const last = off + max >= block.length
      const flags = (last ? FLAG.END_HEADERS : 0) | (first && endOnHeaders ? FLAG.END_STREAM : 0)
      this.write(frame(first ? FRAME.HEADERS : FRAME.CONTINUATION, flags, id, block.subarray(off, off + max)))
    }
    if (body !== undefined)
      this.write(frame(FRAME.DATA, opts.endStream === false ? 0 : FLAG.END_STREAM, id, body))
    this.stream(id) // known from now on (a GOAWAY ends it)
    const timedOut = !(await this.until(
      () => this.streams.get(id)?.ended === true || this.closed,
      opts.timeoutMs ?? 5000,
    ))
    return { ...this.stream(id), timedOut }
  }

  /** Waits (bounded) until `cond` holds; resolves whether it did. */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!cond()) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50))
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
    return true
  }

  stream(id: number): H2StreamResult {
    let s = this.streams.get(id)
    if (s === undefined) {
      s = {
        streamId: id,
        status: undefined,
        headers: [],
        informational: [],
        body: Buffer.alloc(0),
        code: undefined,
        rstCode: undefined,
        ended: this.closed,
        complete: false,
      }
      this.streams.set(id, s)
    }
    return s
  }

  close(): void {
    this.socket.destroy()
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3)
      if (this.buf.length < 9 + len) break
      const f: Frame = {
        type: this.buf[3] as number,
        flags: this.buf[4] as number,
        streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.buf.subarray(9, 9 + len),
      }
      this.buf = this.buf.subarray(9 + len)
      this.frames.push(f)
      this.onFrame(f)
    }
    this.wake()
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FRAME.SETTINGS:
        if ((f.flags & FLAG.ACK) === 0) this.write(settingsFrame([], true))
        break
      case FRAME.PING:
        if ((f.flags & FLAG.ACK) === 0) this.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload))
        break
      case FRAME.GOAWAY: {
        const goaway = {
          lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
          code: f.payload.readUInt32BE(4),
        }
        this.goaway = goaway
        // Streams above the last one the server processed will never be answered; after an error
        // GOAWAY, none will.
        for (const s of this.streams.values())
          if (!s.ended && (goaway.code !== 0 || s.streamId > goaway.lastStreamId)) s.ended = true
        break
      }
      case FRAME.RST_STREAM: {
        const s = this.stream(f.streamId)
        s.rstCode = f.payload.readUInt32BE(0)
        this.ended(s)
        break
      }
      case FRAME.HEADERS: {
        let p = f.payload
        if (f.flags & FLAG.PADDED) p = p.subarray(1, p.length - (p[0] as number))
        if (f.flags & FLAG.PRIORITY) p = p.subarray(5)
        this.headerBlock = { streamId: f.streamId, parts: [p], endStream: (f.flags & FLAG.END_STREAM) !== 0 }
        if (f.flags & FLAG.END_HEADERS) this.endHeaders()
        break
      }
      case FRAME.CONTINUATION:
        this.headerBlock?.parts.push(f.payload)
        if (f.flags & FLAG.END_HEADERS) this.endHeaders()
        break
      case FRAME.DATA: {
        const s = this.stream(f.streamId)
        let p = f.payload
        if (f.flags & FLAG.PADDED) p = p.subarray(1, p.length - (p[0] as number))
        s.body = Buffer.concat([s.body, p])
        if (f.payload.length > 0) {
          // Give the flow-control credit back at once (connection and stream).
          const inc = Buffer.alloc(4)
          inc.writeUInt32BE(f.payload.length, 0)
          this.write(frame(FRAME.WINDOW_UPDATE, 0, 0, inc))
          if ((f.flags & FLAG.END_STREAM) === 0) this.write(frame(FRAME.WINDOW_UPDATE, 0, f.streamId, inc))
        }
        if (f.flags & FLAG.END_STREAM) {
          s.complete = true
          this.ended(s)
        }
        break
      }
    }
  }

  private endHeaders(): void {
    const hb = this.headerBlock
    if (hb === undefined) return
    this.headerBlock = undefined
    const s = this.stream(hb.streamId)
    const fields = decodeHeaderBlock(Buffer.concat(hb.parts))
    const status = Number(fields.find(([n]) => n === ':status')?.[1])
    if (Number.isInteger(status) && status >= 100 && status < 200) s.informational.push(status)
    else if (Number.isInteger(status)) {
      s.status = status
      s.headers = fields
    }
    if (hb.endStream) {
      s.complete = true
      this.ended(s)
    }
  }

  private ended(s: H2StreamResult): void {
    s.ended = true
    if (s.code === undefined && s.body.length > 0 && s.body[0] === 0x7b) {
      try {
        const doc = JSON.parse(s.body.toString('utf8')) as { code?: unknown }
        if (typeof doc.code === 'string') s.code = doc.code
      } catch {
        // not JSON
      }
    }
  }
}

/** The request headers of a plain GET: pseudo-headers first, in the usual order. */
export function h2Get(
  path: string,
  authority = 'localhost',
  extra: [string, string][] = [],
): [string, string][] {
  return [[':method', 'GET'], [':scheme', 'http'], [':authority', authority], [':path', path], ...extra]
}

/** One request on a fresh connection, closed afterwards. */
export async function rawH2Request(
  port: number,
  headers: readonly (readonly [string, string])[],
  opts: RawH2Options & { body?: Buffer | string; timeoutMs?: number } = {},
): Promise<H2StreamResult & { timedOut: boolean; goaway: RawH2Connection['goaway']; closed: boolean }> {
  const c = await RawH2Connection.connect(port, opts)
  try {
    const r = await c.request(headers, { body: opts.body, timeoutMs: opts.timeoutMs })
    return { ...r, goaway: c.goaway, closed: c.closed }
  } finally {
    c.close()
  }
}
