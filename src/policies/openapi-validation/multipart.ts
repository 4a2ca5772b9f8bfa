/**
 * A bounded, incremental `multipart/form-data` parser (RFC 7578 over RFC 2046). Chunks are fed as
 * they arrive (`write`); a boundary split across chunks is found all the same, and every limit
 * (parts, header bytes, field and file sizes) trips as soon as it is crossed, before the rest of the
 * body is read. Memory is bounded: text fields are collected up to `maxFieldBytes`, file parts are
 * only counted, and at most one header block or one delimiter's length is carried between chunks.
 *
 * It is strict where parsers differ (so the gateway never validates a body the upstream reads
 * another way): no content before the first boundary, nothing but whitespace after the last, no
 * transport padding after a delimiter, CRLF line ends only (a bare CR or LF in a part's headers is
 * refused), no folded headers, one Content-Disposition of type `form-data` with a non-empty
 * `name` and no repeated parameter, no nested `multipart/*`, no Content-Transfer-Encoding other
 * than 7bit/8bit/binary, and a final `--boundary--`.
 */
import { isUtf8 } from 'node:buffer'

export interface MultipartLimits {
  /** Most parts. */
  maxParts: number
  /** Largest header block of one part, in bytes. */
  maxHeaderBytes: number
  /** Most header lines in one part. */
  maxHeaders: number
  /** Largest text (non-file) part, in bytes. */
  maxFieldBytes: number
  /** Largest file part, in bytes. */
  maxFileBytes: number
}

export const DEFAULT_MULTIPART_LIMITS: MultipartLimits = {
  maxParts: 100,
  maxHeaderBytes: 8192,
  maxHeaders: 16,
  maxFieldBytes: 100_000,
  maxFileBytes: 10 * 1024 * 1024,
}

/** One part, as far as validation needs it. */
export interface Part {
  name: string
  filename: string | undefined
  /** The part's Content-Type, lower-case type/subtype, when it sent one. */
  contentType: string | undefined
  /** Its charset parameter, lower-case, when given. */
  charset: string | undefined
  /** Counted only (a file part): `text` is undefined. */
  file: boolean
  /** Content bytes. */
  size: number
  /** The content of a text part. */
  text: Buffer | undefined
  /** Offsets in the body: the part's first header byte, and the end of its content. */
  start: number
  end: number
}

/** A refused body: `status` 413 for a size limit, 400 for malformed structure. */
export class MultipartError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message)
    this.name = 'MultipartError'
  }
}

const CRLF = Buffer.from('\r\n')
const HEADER_END = Buffer.from('\r\n\r\n')
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const BCHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/

/**
 * The boundary of a `multipart/form-data` Content-Type header; undefined when it has none, it is
 * given twice, or it is not 1–70 RFC 2046 characters.
 */
export function boundaryOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const params = parseParams(header.slice(header.indexOf(';') === -1 ? header.length : header.indexOf(';')))
  if (!params) return undefined
  const b = params.get('boundary')
  return b !== undefined && BCHARS.test(b) ? b : undefined
}

type State = 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'epilogue'

/**
 * @example
 * const p = new MultipartParser('xyz', DEFAULT_MULTIPART_LIMITS, (name, filename) => filename !== undefined)
 * p.write(chunk1); p.write(chunk2)
 * for (const part of p.end()) console.log(part.name, part.size)
 */
export class MultipartParser {
  private readonly delimiter: Buffer
  private state: State = 'preamble'
  /**
   * Unconsumed bytes (`store[0, len)`); starts with a virtual CRLF so the first delimiter looks
   * like the others. A growable buffer: a client trickling a header block byte by byte costs
   * amortized linear copying, and the header search resumes where it stopped (`scanFrom`).
   */
  private store: Buffer = Buffer.alloc(256)
  private len = 0
  private scanFrom = 0
  /** Body offset of the first unconsumed byte. */
  private base = -2
  private readonly parts: Part[] = []
  private current: (Part & { chunks: Buffer[] }) | undefined

  constructor(
    boundary: string,
    private readonly limits: MultipartLimits,
    /** Whether a part is a file (counted) or a field (collected and typed). */
    private readonly isFile: (name: string, filename: string | undefined) => boolean,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1')
    CRLF.copy(this.store, 0)
    this.len = 2
  }

  /** Feeds the next chunk; throws MultipartError as soon as the body is known bad. */
  write(chunk: Buffer): void {
    const fromStore = this.len > 0
    if (fromStore) {
      this.reserve(this.len + chunk.length)
      chunk.copy(this.store, this.len)
      this.len += chunk.length
    }
    let buf = fromStore ? this.store.subarray(0, this.len) : chunk
    let consumed = 0
    for (;;) {
      const used = this.step(buf)
      if (used < 0) break
      buf = buf.subarray(used)
      this.base += used
      consumed += used
    }
    if (fromStore) {
      if (consumed > 0) this.store.copyWithin(0, consumed, this.len)
      this.len -= consumed
    } else {
      this.reserve(buf.length)
      buf.copy(this.store, 0)
      this.len = buf.length
    }
  }

  private reserve(n: number): void {
    if (n <= this.store.length) return
    let cap = this.store.length * 2
    while (cap < n) cap *= 2
    const next = Buffer.alloc(cap)
    this.store.copy(next, 0, 0, this.len)
    this.store = next
  }

  /** The parts, once the whole body was written; throws when it did not end with the final boundary. */
  end(): Part[] {
    if (this.state !== 'epilogue') throw new MultipartError(400, 'no final boundary')
    return this.parts
  }

  /** Consumes from the front of buf; returns how many bytes, or -1 when more input is needed. */
  private step(buf: Buffer): number {
    const d = this.delimiter
    switch (this.state) {
      case 'preamble': {
        if (buf.length < d.length) {
          if (!d.subarray(0, buf.length).equals(buf))
            throw new MultipartError(400, 'content before the first boundary')
          return -1
        }
        if (!buf.subarray(0, d.length).equals(d))
          throw new MultipartError(400, 'content before the first boundary')
        this.state = 'after-delimiter'
        return d.length
      }
      case 'after-delimiter': {
        if (buf.length < 2) return -1
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          this.state = 'epilogue'
          return 2
        }
        if (buf[0] === 0x0d && buf[1] === 0x0a) {
          if (this.parts.length >= this.limits.maxParts)
            throw new MultipartError(413, `more than ${this.limits.maxParts} parts`)
          this.state = 'headers'
          return 2
        }
        throw new MultipartError(400, 'a boundary must be followed by CRLF or "--"')
      }
      case 'headers': {
        let block: Buffer
        let used: number
        if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) {
          block = buf.subarray(0, 0)
          used = 2
        } else {
          const at = buf.indexOf(HEADER_END, this.scanFrom)
          if (at === -1) {
            if (buf.length > this.limits.maxHeaderBytes)
              throw new MultipartError(400, `part headers over ${this.limits.maxHeaderBytes} bytes`)
            this.scanFrom = Math.max(0, buf.length - 3)
            return -1
          }
          this.scanFrom = 0
          if (at > this.limits.maxHeaderBytes)
            throw new MultipartError(400, `part headers over ${this.limits.maxHeaderBytes} bytes`)
          block = buf.subarray(0, at)
          used = at + 4
        }
        const p = this.partHeaders(block)
        const file = this.isFile(p.name, p.filename)
        this.current = {
          ...p,
          file,
          size: 0,
          text: undefined,
          start: this.base,
          end: 0,
          chunks: [],
        }
        this.state = 'body'
        return used
      }
      case 'body': {
        const at = buf.indexOf(d)
        if (at === -1) {
          const safe = buf.length - (d.length - 1)
          if (safe <= 0) return -1
          this.content(buf.subarray(0, safe))
          return safe
        }
        this.content(buf.subarray(0, at))
        const cur = this.current as Part & { chunks: Buffer[] }
        cur.end = this.base + at
        if (!cur.file) cur.text = Buffer.concat(cur.chunks, cur.size)
        const { chunks: _, ...part } = cur
        this.parts.push(part)
        this.current = undefined
        this.state = 'after-delimiter'
        return at + d.length
      }
      case 'epilogue': {
        for (const b of buf) {
          if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09)
            throw new MultipartError(400, 'content after the final boundary')
        }
        return buf.length === 0 ? -1 : buf.length
      }
    }
  }

  private content(bytes: Buffer): void {
    if (bytes.length === 0) return
    const cur = this.current as Part & { chunks: Buffer[] }
    cur.size += bytes.length
    if (cur.file) {
      if (cur.size > this.limits.maxFileBytes)
        throw new MultipartError(413, `a file part is over ${this.limits.maxFileBytes} bytes`)
      return
    }
    if (cur.size > this.limits.maxFieldBytes)
      throw new MultipartError(413, `a field part is over ${this.limits.maxFieldBytes} bytes`)
    cur.chunks.push(Buffer.from(bytes))
  }

  private partHeaders(block: Buffer): {
    name: string
    filename: string | undefined
    contentType: string | undefined
    charset: string | undefined
  } {
    if (!isUtf8(block)) throw new MultipartError(400, 'part headers are not UTF-8')
    const text = block.toString('utf8')
    const lines = text === '' ? [] : text.split('\r\n')
    if (lines.length > this.limits.maxHeaders)
      throw new MultipartError(400, `more than ${this.limits.maxHeaders} headers in a part`)
    let disposition: string | undefined
    let contentType: string | undefined
    for (const line of lines) {
      if (/[\r\n\0]/.test(line)) throw new MultipartError(400, 'bare CR, LF or NUL in part headers')
      if (line.startsWith(' ') || line.startsWith('\t')) throw new MultipartError(400, 'folded part header')
      const colon = line.indexOf(':')
      if (colon <= 0) throw new MultipartError(400, 'malformed part header')
      const name = line.slice(0, colon)
      if (!TOKEN.test(name)) throw new MultipartError(400, 'malformed part header name')
      const value = line.slice(colon + 1).trim()
      if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value))
        throw new MultipartError(400, 'control character in a part header')
      const lower = name.toLowerCase()
      if (lower === 'content-disposition') {
        if (disposition !== undefined) throw new MultipartError(400, 'two Content-Disposition headers')
        disposition = value
      } else if (lower === 'content-type') {
        if (contentType !== undefined) throw new MultipartError(400, 'two Content-Type headers in a part')
        contentType = value
      } else if (lower === 'content-transfer-encoding') {
        const v = value.toLowerCase()
        if (v !== '7bit' && v !== '8bit' && v !== 'binary')
          throw new MultipartError(400, 'Content-Transfer-Encoding other than 7bit, 8bit or binary')
      }
    }
    if (disposition === undefined) throw new MultipartError(400, 'a part without Content-Disposition')
    const semi = disposition.indexOf(';')
    const kind = (semi === -1 ? disposition : disposition.slice(0, semi)).trim().toLowerCase()
    if (kind !== 'form-data') throw new MultipartError(400, 'Content-Disposition is not form-data')
    const params = semi === -1 ? new Map<string, string>() : parseParams(disposition.slice(semi))
    if (!params) throw new MultipartError(400, 'malformed Content-Disposition')
    const name = params.get('name')
    if (name === undefined || name === '') throw new MultipartError(400, 'a part without a name')
    let filename = params.get('filename')
    const star = params.get('filename*')
    if (star !== undefined) {
      const m = /^utf-8'[^']*'(.*)$/i.exec(star)
      if (!m) throw new MultipartError(400, 'malformed filename*')
      try {
        filename = decodeURIComponent(m[1] as string)
      } catch {
        throw new MultipartError(400, 'malformed filename*')
      }
    }
    let type: string | undefined
    let charset: string | undefined
    if (contentType !== undefined) {
      const ctSemi = contentType.indexOf(';')
      type = (ctSemi === -1 ? contentType : contentType.slice(0, ctSemi)).trim().toLowerCase()
      if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type))
        throw new MultipartError(400, 'malformed part Content-Type')
      if (type.startsWith('multipart/')) throw new MultipartError(400, 'nested multipart')
      const ps = ctSemi === -1 ? new Map<string, string>() : parseParams(contentType.slice(ctSemi))
      if (!ps) throw new MultipartError(400, 'malformed part Content-Type')
      charset = ps.get('charset')?.toLowerCase()
    }
    return { name, filename, contentType: type, charset }
  }
}

/**
 * `; a=b; c="d e"` → a map (names lower-case); undefined when malformed or a name repeats.
 * Quoted strings take backslash escapes.
 */
export function parseParams(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>()
  let i = 0
  const n = s.length
  const ws = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++
  }
  ws()
  while (i < n) {
    if (s[i] !== ';') return undefined
    i++
    ws()
    if (i >= n) break
    const start = i
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i] as string)) i++
    const key = s.slice(start, i).toLowerCase()
    if (key === '') return undefined
    ws()
    if (s[i] !== '=') return undefined
    i++
    ws()
    let value = ''
    if (s[i] === '"') {
      i++
      let closed = false
      while (i < n) {
        const c = s[i] as string
        if (c === '\\' && i + 1 < n) {
          value += s[i + 1]
          i += 2
          continue
        }
        if (c === '"') {
          closed = true
          i++
          break
        }
        value += c
        i++
      }
      if (!closed) return undefined
    } else {
      const vs = i
      while (i < n && s[i] !== ';' && s[i] !== ' ' && s[i] !== '\t') i++
      value = s.slice(vs, i)
      if (value.includes('"')) return undefined
    }
    if (out.has(key)) return undefined
    out.set(key, value)
    ws()
  }
  return out
}
