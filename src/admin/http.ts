/**
 * Request bodies and responses of the admin API: JSON in (bounded, `application/json`, UTF-8),
 * JSON or problem+json out (through the gateway's one problem renderer, `toProblem`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { GatewayError, toProblem } from '../gateway/errors.js'
import { maskValue } from '../secrets/mask.js'

/** Largest request body the admin API reads, in bytes. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024

/** True when the request announces a body (Content-Length > 0 or Transfer-Encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0')
}

/**
 * A 413 for a request whose Content-Length is over `limit` (before anything is read); undefined
 * otherwise. Node's parser has already refused a malformed or duplicate Content-Length.
 */
export function declaredTooLarge(req: IncomingMessage, limit: number): GatewayError | undefined {
  const cl = req.headers['content-length']
  if (cl !== undefined && Number(cl) > limit) return tooLarge(limit)
  return undefined
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError('GW_ERR_BODY_TOO_LARGE', {
    detail: `the body is larger than ${limit} bytes`,
    closeConnection: true,
  })
}

/**
 * Checks the media type: `application/json`, optionally with `charset=utf-8`. Throws a 415 (the
 * body is not read: the connection is closed after the answer).
 */
export function requireJson(req: IncomingMessage): void {
  const raw = req.headers['content-type']
  const fail = () =>
    new GatewayError('GW_ERR_UNSUPPORTED_MEDIA_TYPE', {
      detail: 'send the body as application/json',
      headers: { accept: 'application/json' },
      closeConnection: hasBody(req),
    })
  if (raw === undefined) throw fail()
  const [type, ...params] = raw.split(';')
  if ((type as string).trim().toLowerCase() !== 'application/json') throw fail()
  for (const p of params) {
    const [k, v] = p.split('=')
    if ((k ?? '').trim().toLowerCase() === 'charset') {
      const cs = (v ?? '').trim().replace(/^"|"$/g, '').toLowerCase()
      if (cs !== 'utf-8' && cs !== 'utf8') throw fail()
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/**
 * Reads and parses a JSON body of at most `limit` bytes. Throws a GatewayError: 413 past the limit
 * (reading stops; the connection is closed after the answer), 400 for an empty body, bytes that
 * are not UTF-8 or text that is not JSON. Parser messages are never passed on: they quote the input.
 */
export function readJsonBody(req: IncomingMessage, limit = MAX_ADMIN_BODY_BYTES): Promise<unknown> {
  const early = declaredTooLarge(req, limit)
  if (early) return Promise.reject(early)
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (err: GatewayError | undefined, value?: unknown) => {
      if (done) return
      done = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
      if (err) reject(err)
      else resolveBody(value)
    }
    const onData = (c: Buffer) => {
      size += c.length
      if (size > limit) {
        req.pause()
        finish(tooLarge(limit))
        return
      }
      chunks.push(c)
    }
    const onEnd = () => {
      if (size === 0)
        return finish(new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'a JSON body is required' }))
      let text: string
      try {
        text = utf8.decode(Buffer.concat(chunks, size))
      } catch {
        return finish(new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'the body is not UTF-8' }))
      }
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        return finish(new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'the body is not valid JSON' }))
      }
      finish(undefined, value)
    }
    const onError = () => finish(new GatewayError('GW_ERR_BAD_REQUEST', { closeConnection: true }))
    const onAborted = onError
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const

/** Sends a JSON answer (no body for 204 or when `body` is undefined; none either for HEAD). */
export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (body === undefined || status === 204) {
    res.writeHead(status, { ...BASE_HEADERS, ...headers })
    res.end()
    return
  }
  const text = JSON.stringify(maskValue(body)) // secrets: no credential in an admin answer
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  })
  res.end(req.method === 'HEAD' ? undefined : text)
}

/**
 * Sends an error as problem+json. A GatewayError asking for it (or any error while a request body
 * is still unread) closes the connection after the answer, so that the rest of the body is not read.
 */
export function sendProblem(
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  requestId: string,
  bodyPending = false,
): GatewayError {
  const { problem, error } = toProblem(err, requestId)
  if (res.headersSent) {
    res.destroy()
    return error
  }
  const text = JSON.stringify(maskValue(problem)) // secrets: masked
  const headers: Record<string, string | number> = {
    ...BASE_HEADERS,
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': requestId,
    ...error.headers,
  }
  if (error.closeConnection || bodyPending) headers.connection = 'close'
  res.writeHead(error.status, headers)
  res.end(req.method === 'HEAD' ? undefined : text)
  return error
}
