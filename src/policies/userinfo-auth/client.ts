/**
 * The userinfo client: one keep-alive undici Pool per policy instance, a GET (or body-less POST)
 * with `Authorization: Bearer <token>`, a deadline for the whole exchange, a cap on the response
 * size and no redirects (an undici Pool never follows them: a 3xx is a failure). The token never
 * appears in an error this module raises.
 */
import type { Readable } from 'node:stream'
import { Pool } from 'undici'

export interface UserinfoClientOptions {
  endpoint: URL
  method: 'GET' | 'POST'
  timeoutMs: number
  connections: number
  maxResponseBytes: number
}

/** Why a userinfo call failed; `message` is safe to log (no token). */
export class UserinfoFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UserinfoFailure'
  }
}

/** The endpoint's verdict: the caller's record, or a refusal of the token (401/403). */
export type UserinfoAnswer =
  | { valid: true; record: Record<string, unknown> }
  | { valid: false; status: number }

/** Drops a response body; destroying an undici body emits an error nobody else would handle. */
function discard(body: Readable): void {
  body.on('error', () => undefined)
  body.destroy()
}

function isJsonMediaType(ct: string): boolean {
  const semi = ct.indexOf(';')
  const t = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase()
  return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'))
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export class UserinfoClient {
  private readonly pool: Pool
  private readonly path: string
  private readonly method: 'GET' | 'POST'
  private readonly timeoutMs: number
  private readonly maxResponseBytes: number

  constructor(o: UserinfoClientOptions) {
    this.path = `${o.endpoint.pathname}${o.endpoint.search}`
    this.method = o.method
    this.timeoutMs = o.timeoutMs
    this.maxResponseBytes = o.maxResponseBytes
    this.pool = new Pool(o.endpoint.origin, {
      connections: o.connections,
      pipelining: 1,
      keepAliveTimeout: 30000,
      keepAliveMaxTimeout: 600000,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      connect: { timeout: o.timeoutMs },
    })
  }

  /**
   * Asks the endpoint who `token` belongs to. Resolves the record (200 with a JSON object) or a
   * refusal (401/403); rejects with a UserinfoFailure when the endpoint is unreachable, slow,
   * answers anything else, or sends something that is not a bounded JSON object.
   */
  async fetch(token: string): Promise<UserinfoAnswer> {
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), this.timeoutMs)
    try {
      let res: Awaited<ReturnType<Pool['request']>>
      try {
        res = await this.pool.request({
          method: this.method,
          path: this.path,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(this.method === 'POST' ? { 'content-length': '0' } : {}),
          },
          signal: ac.signal,
        })
      } catch (err) {
        throw this.failure(err, ac.signal.aborted)
      }
      const status = res.statusCode
      if (status === 401 || status === 403) {
        await res.body.dump({ limit: this.maxResponseBytes }).catch(() => undefined)
        return { valid: false, status }
      }
      if (status !== 200) {
        await res.body.dump({ limit: this.maxResponseBytes }).catch(() => undefined)
        throw new UserinfoFailure(`the endpoint answered ${status}`)
      }
      const ct = res.headers['content-type']
      if (typeof ct !== 'string' || !isJsonMediaType(ct)) {
        discard(res.body)
        throw new UserinfoFailure('the endpoint answered without a JSON content type')
      }
      const declared = Number(res.headers['content-length'])
      if (declared > this.maxResponseBytes) {
        discard(res.body)
        throw new UserinfoFailure(`the response is larger than ${this.maxResponseBytes} bytes`)
      }
      const chunks: Buffer[] = []
      let size = 0
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length
          if (size > this.maxResponseBytes) {
            discard(res.body)
            throw new UserinfoFailure(`the response is larger than ${this.maxResponseBytes} bytes`)
          }
          chunks.push(chunk)
        }
      } catch (err) {
        if (err instanceof UserinfoFailure) throw err
        throw this.failure(err, ac.signal.aborted)
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        throw new UserinfoFailure('the response is not valid JSON')
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new UserinfoFailure('the response is not a JSON object')
      }
      return { valid: true, record: parsed as Record<string, unknown> }
    } finally {
      clearTimeout(timer)
    }
  }

  /** Closes the connections now (in-flight calls fail). */
  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined)
  }

  private failure(err: unknown, timedOut: boolean): UserinfoFailure {
    // Only the error's code or class: a code is all an operator needs and cannot carry the token.
    const e = err as { code?: unknown; name?: unknown } | undefined
    const what = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'error'
    if (timedOut || TIMEOUT_CODES.has(what)) {
      return new UserinfoFailure(`no answer within ${this.timeoutMs} ms (${timedOut ? 'deadline' : what})`)
    }
    return new UserinfoFailure(`the endpoint could not be reached (${what})`)
  }
}
