/**
 * Request body buffering: a body that fits the route's `requestBuffering.maxBytes` is read whole
 * before an upstream connection is taken. A client that sends its body slowly (one byte every two
 * seconds) then holds a gateway socket, which costs little, instead of one of the upstream's
 * connections, which are few: 140 slow uploads used to stall every other client of the upstream.
 * A pause longer than `idleTimeoutMs` between two parts of the body is a 408. A chunked body that
 * turns out larger than the buffer streams on: what was read first, then the rest.
 */
import { Readable } from 'node:stream'
import type { GatewayContext } from '../context.js'
import { GatewayError } from '../errors.js'

export type Buffered = { whole: Buffer } | { stream: Readable }

/**
 * Whether a request's body should be buffered before forwarding: it has one, nothing has read it
 * yet, and it is declared no larger than `maxBytes` (or chunked, size unknown).
 */
export function shouldBuffer(ctx: GatewayContext, maxBytes: number): boolean {
  if (maxBytes === 0 || ctx.body !== undefined) return false
  const h = ctx.req.headers
  const cl = h['content-length']
  if (cl !== undefined) return cl !== '0' && Number(cl) <= maxBytes && !ctx.req.complete
  return h['transfer-encoding'] !== undefined && !ctx.req.complete
}

/** How {@link readRequestBody} reads. */
export interface ReadOptions {
  /** Past this many bytes in all the request is refused (413; `ctx.bodyLimit`). */
  limit: number
  /** A pause longer than this between two parts of the body is a 408 (undefined: no idle timer). */
  idleMs?: number
  /** Past this many bytes, stop buffering and resolve a stream of what was read and the rest. */
  spillAt?: number
  /** Called with each part as it arrives; a throw rejects the read with that error. */
  onChunk?: (chunk: Buffer) => void
}

/**
 * The one reader of a request body from the socket (policies' `ctx.readBody` and the buffering
 * before forwarding). Resolves the whole body (also kept as `ctx.body`), or, past `spillAt`, a
 * stream of the part read and the rest. Rejects with 413 past `limit` (closing the connection),
 * 408 after `idleMs` without data, 400 when the client aborts or the stream fails.
 */
export function readRequestBody(ctx: GatewayContext, opts: ReadOptions): Promise<Buffered> {
  const req = ctx.req
  const { limit, idleMs, spillAt, onChunk } = opts
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let timer: NodeJS.Timeout | undefined
    const arm =
      idleMs === undefined
        ? () => undefined
        : () => {
            clearTimeout(timer)
            timer = setTimeout(() => {
              cleanup()
              reject(
                new GatewayError('GW_ERR_REQUEST_TIMEOUT', {
                  detail: `no request body data for ${idleMs} ms`,
                  closeConnection: true,
                }),
              )
            }, idleMs)
          }
    const onData = (c: Buffer) => {
      size += c.length
      if (size > limit) {
        cleanup()
        ctx.bodyTooLarge = true
        reject(
          new GatewayError('GW_ERR_BODY_TOO_LARGE', {
            detail: `limit is ${limit} bytes`,
            closeConnection: true,
          }),
        )
        return
      }
      if (onChunk !== undefined) {
        try {
          onChunk(c)
        } catch (err) {
          cleanup()
          reject(err)
          return
        }
      }
      chunks.push(c)
      if (spillAt !== undefined && size > spillAt) {
        // Larger than the buffer (chunked): stream what was read, then the rest as it comes.
        cleanup()
        req.pause()
        resolve({ stream: Readable.from(prefixed(chunks.splice(0), req)) })
        return
      }
      arm()
    }
    const onEnd = () => {
      cleanup()
      const whole = Buffer.concat(chunks, size)
      ctx.body = whole
      resolve({ whole })
    }
    const onError = (err: Error) => {
      cleanup()
      reject(new GatewayError('GW_ERR_BAD_REQUEST', { cause: err, closeConnection: true }))
    }
    const onAborted = () => onError(new Error('client aborted'))
    const cleanup = () => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
    arm()
  })
}

/**
 * Reads the body up to `maxBytes` (and never past `ctx.bodyLimit`) before forwarding. Resolves the
 * whole body, or, for a chunked body larger than `maxBytes`, a stream of the part read and the rest.
 */
export function bufferBody(ctx: GatewayContext, maxBytes: number, idleMs: number): Promise<Buffered> {
  return readRequestBody(ctx, { limit: ctx.bodyLimit, idleMs, spillAt: maxBytes })
}

async function* prefixed(head: Buffer[], rest: Readable): AsyncGenerator<Buffer> {
  for (const c of head) yield c
  for await (const c of rest) yield c as Buffer
}
