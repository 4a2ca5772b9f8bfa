/**
 * The userinfo client: one keep-alive undici Pool per policy instance, a GET (or body-less POST)
 * with `Authorization: Bearer <token>`, a deadline for the whole exchange, a cap on the response
 * size and no redirects (an undici Pool never follows them: a 3xx is a failure). The token never
 * appears in an error this module raises.
 */
import { Pool } from 'undici'
import { describeCallFailure, discard, isJsonMediaType, readJsonObject } from '../../auth/endpoint-client.js'

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
      const record = await readJsonObject(
        res.body,
        res.headers['content-length'],
        this.maxResponseBytes,
        (m) => new UserinfoFailure(m),
        (err) => this.failure(err, ac.signal.aborted),
      )
      return { valid: true, record }
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
    return new UserinfoFailure(describeCallFailure(err, timedOut, this.timeoutMs))
  }
}
