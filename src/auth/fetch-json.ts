/**
 * A small, bounded JSON GET over undici for key material and metadata (JWKS, OIDC discovery):
 * one deadline for the whole exchange, a size limit enforced while reading, and redirects followed
 * only within the same origin (a redirect to another host, or from https to http, fails).
 */
import { Agent, request } from 'undici'

export interface FetchJsonOptions {
  dispatcher: Agent
  timeoutMs: number
  maxBytes: number
  /** Same-origin redirects followed at most. */
  maxRedirects?: number
}

export interface FetchedJson {
  /** The parsed document. */
  json: unknown
  /** The raw body (to tell versions apart without re-parsing). */
  body: Buffer
  /** The URL the document finally came from. */
  url: URL
}

export class FetchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FetchError'
  }
}

/** An undici agent for one key source: short connect timeout, few connections. */
export function fetchAgent(timeoutMs: number): Agent {
  return new Agent({
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: 2,
    keepAliveTimeout: 4000,
  })
}

export async function fetchJson(url: URL, o: FetchJsonOptions): Promise<FetchedJson> {
  const signal = AbortSignal.timeout(o.timeoutMs)
  const maxRedirects = o.maxRedirects ?? 3
  let current = url
  for (let hop = 0; ; hop++) {
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(current, {
        method: 'GET',
        dispatcher: o.dispatcher,
        signal,
        headers: { accept: 'application/json, application/jwk-set+json' },
      })
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name
      throw new FetchError(`GET ${current.origin}${current.pathname} failed: ${code}`, { cause: err })
    }
    const status = res.statusCode
    if (status >= 300 && status < 400) {
      await res.body.dump()
      const loc = res.headers.location
      if (typeof loc !== 'string') throw new FetchError(`GET ${current.pathname}: ${status} without Location`)
      let next: URL
      try {
        next = new URL(loc, current)
      } catch {
        throw new FetchError(`GET ${current.pathname}: ${status} to an invalid Location`)
      }
      if (next.origin !== url.origin) {
        throw new FetchError(`GET ${current.pathname}: redirect to another origin (${next.origin}) refused`)
      }
      if (hop >= maxRedirects)
        throw new FetchError(`GET ${url.pathname}: more than ${maxRedirects} redirects`)
      current = next
      continue
    }
    if (status !== 200) {
      await res.body.dump()
      throw new FetchError(`GET ${current.origin}${current.pathname}: status ${status}`)
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      res.body.destroy()
      throw new FetchError(`GET ${current.pathname}: ${declared} bytes, the limit is ${o.maxBytes}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const c of res.body) {
        size += (c as Buffer).length
        if (size > o.maxBytes) {
          res.body.destroy()
          throw new FetchError(`GET ${current.pathname}: body over the limit of ${o.maxBytes} bytes`)
        }
        chunks.push(c as Buffer)
      }
    } catch (err) {
      if (err instanceof FetchError) throw err
      throw new FetchError(`GET ${current.pathname}: reading the body failed`, { cause: err })
    }
    const body = Buffer.concat(chunks, size)
    let json: unknown
    try {
      json = JSON.parse(body.toString('utf8'))
    } catch {
      throw new FetchError(`GET ${current.pathname}: not JSON`)
    }
    return { json, body, url: current }
  }
}
