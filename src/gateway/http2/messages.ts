/**
 * HTTP/2 requests and responses as the core reads and writes them. node:http2's compatibility
 * objects (Http2ServerRequest / Http2ServerResponse) already look like node:http's; these
 * subclasses close the remaining gaps so that every policy sees an HTTP/2 request exactly as it
 * would see the same request over HTTP/1.1:
 *
 * - `headers` and `rawHeaders` hold no pseudo-headers; `:authority` becomes `host` (when the
 *   request has no Host field), and cookie crumbs are joined into one `cookie` field with `; `
 *   (RFC 9113 §8.2.3), before any policy sees them;
 * - a request with a body and no Content-Length (HTTP/2 ends bodies with END_STREAM) reads
 *   `transfer-encoding: chunked` in `headers` (not in `rawHeaders`, never forwarded), so that
 *   every "does it have a body?" check in the core and the policies answers yes;
 * - framing facts a policy must not have to know about are gathered once, here, for hygiene's
 *   `checkFraming` (`kHttp2`): connection-specific fields, a `te` other than `trailers`, a Host
 *   that differs from `:authority`, an unknown `:scheme` or method, the field count after cookie
 *   joining and the header list size (RFC 9113 §6.5.2: name + value + 32 per field; node:http2
 *   advertises SETTINGS_MAX_HEADER_LIST_SIZE but does not enforce it).
 *
 * nghttp2 refuses most malformed HEADERS itself (stream reset before the gateway sees them:
 * connection-specific fields, upper-case names, misplaced, duplicate or missing pseudo-headers,
 * duplicate Host or Content-Length, a Content-Length the DATA frames contradict); the checks here
 * are the gateway's own, so they hold whatever the library version does. nghttp2 drops fields
 * whose name or value has a forbidden character (NUL, CR, LF, space in a name): neither the
 * policies nor the upstream see such a field.
 */
import http from 'node:http'
import http2 from 'node:http2'
import type { ReadableOptions } from 'node:stream'

/** An HTTP/2 request's framing facts (set on H2Request; see checkFraming in hygiene.ts). */
export const kHttp2 = Symbol('portcullis.http2')

export interface H2Facts {
  /** A framing problem found in the header list, refused by checkFraming. */
  problem:
    | { code: 'GW_ERR_BAD_HEADER' | 'GW_ERR_REQUEST_SMUGGLING' | 'GW_ERR_BAD_REQUEST'; detail: string }
    | undefined
  /** Header fields (pseudo-headers excluded, cookie crumbs joined, Host from :authority counted). */
  fieldCount: number
  /** RFC 9113 §6.5.2 size of the header list as received, pseudo-headers included. */
  listSize: number
}

/** A request that may carry HTTP/2 facts (an IncomingMessage never has them). */
export interface MaybeH2 {
  [kHttp2]?: H2Facts
}

/** RFC 9113 §8.2.2: fields an HTTP/2 message must not carry. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
])
/** The methods Node's HTTP/1 parser accepts: the same set over HTTP/2. */
const METHODS = new Set(http.METHODS)

function facts(
  raw: readonly string[],
  headers: http2.IncomingHttpHeaders,
): { facts: H2Facts; rawView: string[]; view: http.IncomingHttpHeaders } {
  let problem: H2Facts['problem']
  const rawView: string[] = []
  let cookieAt = -1
  let host: string | undefined
  let listSize = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    listSize += name.length + value.length + 32
    if (name.charCodeAt(0) === 0x3a) continue // pseudo-header
    if (CONNECTION_SPECIFIC.has(name)) {
      problem ??= { code: 'GW_ERR_REQUEST_SMUGGLING', detail: `connection-specific header ${name} in HTTP/2` }
    } else if (name === 'te' && value.trim().toLowerCase() !== 'trailers') {
      problem ??= { code: 'GW_ERR_REQUEST_SMUGGLING', detail: 'te other than trailers in HTTP/2' }
    }
    if (name === 'cookie') {
      if (cookieAt === -1) {
        cookieAt = rawView.length
        rawView.push(name, value)
      } else rawView[cookieAt + 1] = `${rawView[cookieAt + 1]}; ${value}`
      continue
    }
    if (name === 'host') host ??= value
    rawView.push(name, value)
  }
  const view: http.IncomingHttpHeaders = {}
  for (const k in headers) if (k.charCodeAt(0) !== 0x3a) view[k] = headers[k] as string
  const authority = headers[':authority']
  if (authority !== undefined) {
    if (host === undefined) {
      rawView.unshift('host', authority)
      view.host = authority
    } else if (host !== authority) {
      problem ??= { code: 'GW_ERR_BAD_HEADER', detail: 'Host differs from :authority' }
    }
  }
  const scheme = headers[':scheme']
  const method = headers[':method'] ?? ''
  if (method !== 'CONNECT' && scheme !== 'http' && scheme !== 'https') {
    problem ??= { code: 'GW_ERR_BAD_REQUEST', detail: 'invalid :scheme' }
  }
  if (!METHODS.has(method)) problem ??= { code: 'GW_ERR_BAD_REQUEST', detail: 'unknown method' }
  return { facts: { problem, fieldCount: rawView.length / 2, listSize }, rawView, view }
}

/** An HTTP/2 request as the core reads it (see the module comment). */
export class H2Request extends http2.Http2ServerRequest {
  readonly [kHttp2]: H2Facts

  constructor(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    options: ReadableOptions,
    rawHeaders: readonly string[],
  ) {
    super(stream, headers, options, rawHeaders)
    const f = facts(rawHeaders, headers)
    if (!stream.endAfterHeaders && f.view['content-length'] === undefined) {
      f.view['transfer-encoding'] = 'chunked'
    }
    this[kHttp2] = f.facts
    // Own data properties shadow the compatibility layer's getters (which read the pseudo-headers).
    Object.defineProperty(this, 'headers', { value: f.view, enumerable: true })
    Object.defineProperty(this, 'rawHeaders', { value: f.rawView, enumerable: true })
  }
}

/** Response fields HTTP/2 forbids (RFC 9113 §8.2.2); a policy or the draining logic may set them. */
const RESPONSE_CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
])

/**
 * An HTTP/2 response as the core writes it: connection-specific fields are left out of the head,
 * body bytes are counted for the access log, `destroyed` says whether the stream is gone, and a
 * response that ends before the request body was read closes its stream with RST_STREAM(NO_ERROR)
 * (RFC 9113 §8.1), which is what HTTP/1's `Connection: close` does for a connection.
 */
export class H2Response extends http2.Http2ServerResponse {
  /** Response body bytes written (DATA payload), for the access log. */
  bodyBytes = 0
  /** The gateway reset the stream itself (not a client cancellation). */
  resetByGateway = false
  /** The gateway ended the response (it may not have been sent yet when the stream closed). */
  ended = false

  // biome-ignore lint/suspicious/noExplicitAny: the base class's overloads (status, message?, headers?)
  override writeHead(statusCode: number, ...rest: any[]): this {
    const last = rest[rest.length - 1]
    if (last !== null && typeof last === 'object' && !Array.isArray(last)) {
      let clean: Record<string, unknown> | undefined
      for (const k in last) {
        if (RESPONSE_CONNECTION_SPECIFIC.has(k.toLowerCase())) {
          if (clean === undefined) clean = { ...(last as Record<string, unknown>) }
          delete clean[k]
        }
      }
      if (clean !== undefined) rest[rest.length - 1] = clean
    }
    return super.writeHead(statusCode, ...(rest as [http.OutgoingHttpHeaders]))
  }

  // biome-ignore lint/suspicious/noExplicitAny: the base class's overloads
  override write(chunk: any, ...rest: any[]): boolean {
    this.bodyBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk?.length ?? 0)
    return super.write(chunk, ...(rest as [BufferEncoding]))
  }

  // biome-ignore lint/suspicious/noExplicitAny: the base class's overloads
  override end(chunk?: any, ...rest: any[]): this {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      this.bodyBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk.length ?? 0)
    }
    const stream = this.stream
    this.ended = true
    super.end(chunk, ...(rest as [BufferEncoding]))
    if (!stream.destroyed && stream.state.remoteClose === 0) {
      afterLocalClose(stream, () => {
        this.resetByGateway = true
        stream.close(http2.constants.NGHTTP2_NO_ERROR)
      })
    }
    return this
  }

  override destroy(err?: Error): this {
    // Only a stream still open is reset by this call; on one the client reset, it is cleanup.
    if (!this.stream.destroyed && !this.stream.closed) this.resetByGateway = true
    super.destroy(err)
    return this
  }
}

// The core asks `res.destroyed` (the client went away): the stream's state. A getter on the
// prototype, since the base class declares `destroyed` as a data property.
Object.defineProperty(H2Response.prototype, 'destroyed', {
  configurable: true,
  get(this: H2Response): boolean {
    return this.stream.destroyed
  },
})

/**
 * Runs `fn` once the stream's END_STREAM has been sent while the client is still sending (a reset
 * submitted before would discard the response's last frames). node:http2 has no event for it:
 * the stream's state is polled, from the next turn on, at growing intervals (at most 100 ms),
 * until then or until the stream closes (the client finished, or a timeout destroyed it).
 */
function afterLocalClose(stream: http2.ServerHttp2Stream, fn: () => void): void {
  let delay = 0
  const poll = () => {
    if (stream.destroyed || stream.closed) return
    const st = stream.state
    if (st.remoteClose === 1) return // the client finished meanwhile: the stream closes by itself
    if (st.localClose === 1) {
      fn()
      return
    }
    delay = Math.min(delay === 0 ? 1 : delay * 2, 100)
    setTimeout(poll, delay).unref()
  }
  setImmediate(poll)
}
