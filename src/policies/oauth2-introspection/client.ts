/**
 * The RFC 7662 client: one keep-alive undici Pool per policy instance, a POST of
 * `token=…&token_type_hint=…` with the client authenticated by HTTP Basic or form fields, a
 * deadline for the whole exchange, a cap on the response size and no redirects (an undici Pool
 * never follows them: a 3xx is just another non-200). The token and the client secret never
 * appear in an error this module raises.
 */
import { Pool } from 'undici'
import { describeCallFailure, discard, isJsonMediaType, readJsonObject } from '../../auth/endpoint-client.js'

export interface IntrospectionClientOptions {
  endpoint: URL
  clientId: string
  clientSecret: string
  authMethod: 'client_secret_basic' | 'client_secret_post'
  tokenTypeHint: string | false
  timeoutMs: number
  connections: number
  maxResponseBytes: number
}

/** Why an introspection call failed; `message` is safe to log (no token, no secret). */
export class IntrospectionFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'IntrospectionFailure'
  }
}

/** A response the endpoint gave: a JSON object whose `active` is a boolean. */
export type IntrospectionResponse = Record<string, unknown> & { active: boolean }

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B). */
function formEncode(v: string): string {
  return encodeURIComponent(v).replace(/%20/g, '+')
}

export class IntrospectionClient {
  private readonly pool: Pool
  private readonly path: string
  private readonly headers: Record<string, string>
  /** Form fields sent after the token (hint, and the credentials for client_secret_post). */
  private readonly bodySuffix: string
  private readonly timeoutMs: number
  private readonly maxResponseBytes: number

  constructor(o: IntrospectionClientOptions) {
    this.path = `${o.endpoint.pathname}${o.endpoint.search}`
    this.timeoutMs = o.timeoutMs
    this.maxResponseBytes = o.maxResponseBytes
    this.headers = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    }
    let suffix = o.tokenTypeHint === false ? '' : `&token_type_hint=${formEncode(o.tokenTypeHint)}`
    if (o.authMethod === 'client_secret_basic') {
      const basic = Buffer.from(`${formEncode(o.clientId)}:${formEncode(o.clientSecret)}`).toString('base64')
      this.headers.authorization = `Basic ${basic}`
    } else {
      suffix += `&client_id=${formEncode(o.clientId)}&client_secret=${formEncode(o.clientSecret)}`
    }
    this.bodySuffix = suffix
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
   * Asks the endpoint about `token`. Resolves the parsed response; rejects with an
   * IntrospectionFailure when the endpoint is unreachable, slow, answers other than 200, or
   * sends something that is not an RFC 7662 response.
   */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), this.timeoutMs)
    try {
      let res: Awaited<ReturnType<Pool['request']>>
      try {
        res = await this.pool.request({
          method: 'POST',
          path: this.path,
          headers: this.headers,
          body: `token=${formEncode(token)}${this.bodySuffix}`,
          signal: ac.signal,
        })
      } catch (err) {
        throw this.failure(err, ac.signal.aborted)
      }
      if (res.statusCode !== 200) {
        await res.body.dump({ limit: this.maxResponseBytes }).catch(() => undefined)
        throw new IntrospectionFailure(
          res.statusCode === 401 || res.statusCode === 403
            ? `the endpoint refused the gateway's client credentials (${res.statusCode})`
            : `the endpoint answered ${res.statusCode}`,
        )
      }
      const ct = res.headers['content-type']
      if (typeof ct === 'string' && !isJsonMediaType(ct)) {
        discard(res.body)
        throw new IntrospectionFailure('the endpoint answered with a non-JSON content type')
      }
      const parsed = await readJsonObject(
        res.body,
        res.headers['content-length'],
        this.maxResponseBytes,
        (m) => new IntrospectionFailure(m),
        (err) => this.failure(err, ac.signal.aborted),
      )
      if (typeof (parsed as { active?: unknown }).active !== 'boolean') {
        throw new IntrospectionFailure('the response has no boolean "active" member')
      }
      return parsed as IntrospectionResponse
    } finally {
      clearTimeout(timer)
    }
  }

  /** Closes the connections now (in-flight calls fail). */
  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined)
  }

  private failure(err: unknown, timedOut: boolean): IntrospectionFailure {
    return new IntrospectionFailure(describeCallFailure(err, timedOut, this.timeoutMs))
  }
}
