/**
 * Raw HTTP/1.1 over a TCP socket: the test writes the exact bytes (request line included) so no
 * client library normalizes anything, and reads everything the server sends until it closes.
 */
import net from 'node:net'

export interface RawResponse {
  /** Every byte the server sent. */
  raw: Buffer
  /** Status code of the first response, or undefined when none arrived. */
  status: number | undefined
  /** All status codes, in order (pipelined responses). */
  statuses: number[]
  /** Headers of the first response, lower-cased names. */
  headers: Record<string, string>
  /** Body of the first response (by content-length when present, else the rest). */
  body: string
  /** `code` member of the first response's problem+json body, when there is one. */
  code: string | undefined
  /** True when the server ended or closed the connection before the timeout. */
  closed: boolean
  /** True when the timeout fired first (the test then destroyed the socket). */
  timedOut: boolean
}

export interface RawOptions {
  /** Give up (and report timedOut) after this long. Default 3000 ms. */
  timeoutMs?: number
  /** Write the request in several pieces with a pause between them. */
  pieces?: (string | Buffer)[]
  /** Pause between pieces, ms. Default 30. */
  pauseMs?: number
  /** Half-close (send FIN) after the last piece, so the server sees end-of-stream. */
  halfClose?: boolean
}

/** Parses the status line and head of a response starting at `text`. */
function parseHead(text: string): {
  status: number | undefined
  headers: Record<string, string>
  rest: string
} {
  const end = text.indexOf('\r\n\r\n')
  const head = end === -1 ? text : text.slice(0, end)
  const lines = head.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: m ? Number(m[1]) : undefined, headers, rest: end === -1 ? '' : text.slice(end + 4) }
}

/** Summarizes what a server sent. */
export function parseRaw(raw: Buffer, closed: boolean, timedOut: boolean): RawResponse {
  const text = raw.toString('latin1')
  const { status, headers, rest } = parseHead(text)
  const cl = headers['content-length']
  const body = cl !== undefined ? rest.slice(0, Number(cl)) : rest
  let code: string | undefined
  if (headers['content-type']?.includes('json')) {
    try {
      const doc = JSON.parse(body) as { code?: unknown }
      if (typeof doc.code === 'string') code = doc.code
    } catch {
      // not JSON
    }
  }
  return { raw, status, statuses: allStatuses(text), headers, body, code, closed, timedOut }
}

/** Status codes of every response in `text`, walking response framing (CL, chunked, 1xx). */
function allStatuses(text: string): number[] {
  const out: number[] = []
  let rest = text
  while (rest.startsWith('HTTP/1.')) {
    const { status, headers, rest: after } = parseHead(rest)
    if (status === undefined) break
    out.push(status)
    if (status < 200 || status === 204 || status === 304) {
      rest = after
      continue
    }
    const cl = headers['content-length']
    if (cl !== undefined) {
      rest = after.slice(Number(cl))
      continue
    }
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      let pos = 0
      for (;;) {
        const eol = after.indexOf('\r\n', pos)
        if (eol === -1) return out
        const size = Number.parseInt(after.slice(pos, eol), 16)
        if (!(size > 0)) {
          const end = after.indexOf('\r\n\r\n', eol - 2)
          rest = end === -1 ? '' : after.slice(end + 4)
          break
        }
        pos = eol + 2 + size + 2
      }
      continue
    }
    break // body delimited by close: nothing follows
  }
  return out
}

/**
 * Connects to host:port, writes `data` (or `opts.pieces`), and reads until the server closes the
 * connection or the timeout fires. Never rejects on socket errors (a reset counts as closed).
 */
export function rawRequest(
  port: number,
  data: string | Buffer,
  opts: RawOptions & { host?: string } = {},
): Promise<RawResponse> {
  const timeoutMs = opts.timeoutMs ?? 3000
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, allowHalfOpen: true })
    let done = false
    const finish = (closed: boolean, timedOut: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve(parseRaw(Buffer.concat(chunks), closed, timedOut))
    }
    const timer = setTimeout(() => finish(false, true), timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => finish(true, false))
    socket.on('close', () => finish(true, false))
    socket.on('error', () => finish(true, false))
    socket.on('connect', async () => {
      const pieces = opts.pieces ?? [data]
      for (let i = 0; i < pieces.length; i++) {
        if (done || socket.destroyed) return
        socket.write(pieces[i] as string | Buffer)
        if (i < pieces.length - 1) await new Promise((r) => setTimeout(r, opts.pauseMs ?? 30))
      }
      if (opts.halfClose && !done) socket.end()
    })
  })
}
