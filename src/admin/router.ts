/**
 * The admin API's router: a table of method + path pattern → handler. Patterns are literal
 * segments and `:name` parameters (one whole segment each); no wildcards, no regular expressions.
 * Literal segments match the raw (still percent-encoded) path, so `/v1/%72evocations` is not
 * `/v1/revocations`; parameters are percent-decoded once.
 */
import type { IncomingMessage } from 'node:http'

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** What a handler gets. */
export interface AdminRequest {
  /** Request id: the `x-request-id` response header, a problem's `instance`, every log line. */
  id: string
  method: AdminMethod
  /** The raw path (no query). */
  path: string
  /** Decoded `:name` parameters. */
  params: Readonly<Record<string, string>>
  query: URLSearchParams
  /** The parsed JSON body for routes with `body: true`; undefined otherwise. */
  body: unknown
  /** Who is calling, for logs and the audit trail: today always `admin token`. */
  actor: string
  raw: IncomingMessage
}

/** What a handler returns; `body` is sent as JSON (none: no body, e.g. 204). */
export interface AdminResponse {
  status: number
  body?: unknown
  headers?: Record<string, string>
}

export interface AdminRoute {
  method: AdminMethod
  /** e.g. `/v1/revocations/:id`. */
  path: string
  /** The route takes a JSON body (`application/json`, at most the API's body limit). */
  body?: boolean
  /** Changes state: logged and recorded as an admin write. */
  write?: boolean
  handler(req: AdminRequest): AdminResponse | Promise<AdminResponse>
}

export type RouteMatch =
  | { kind: 'found'; route: AdminRoute; params: Record<string, string> }
  /** The path exists, not with this method. */
  | { kind: 'method'; allow: string[] }
  /** A parameter is not valid percent-encoding. */
  | { kind: 'bad-param'; name: string }
  | { kind: 'none' }

interface Compiled {
  route: AdminRoute
  /** Literal segments as strings, parameters as `{ name }`. */
  segments: (string | { name: string })[]
}

const PARAM = /^:([a-zA-Z][a-zA-Z0-9]*)$/

/**
 * @example
 * const router = new AdminRouter().add({ method: 'GET', path: '/v1/things/:id', handler })
 * router.match('GET', '/v1/things/a%2Fb') // { kind: 'found', params: { id: 'a/b' }, … }
 */
export class AdminRouter {
  private readonly compiled: Compiled[] = []

  /** Adds a route; throws on a malformed pattern or a method + pattern added twice. */
  add(route: AdminRoute): this {
    if (!route.path.startsWith('/')) throw new Error(`admin route ${route.path}: must start with /`)
    const segments = route.path
      .slice(1)
      .split('/')
      .map((s) => {
        if (s === '') throw new Error(`admin route ${route.path}: empty segment`)
        const m = PARAM.exec(s)
        return m ? { name: m[1] as string } : s
      })
    const shape = (c: Compiled['segments']) => c.map((s) => (typeof s === 'string' ? s : ':')).join('/')
    if (this.compiled.some((c) => c.route.method === route.method && shape(c.segments) === shape(segments))) {
      throw new Error(`admin route ${route.method} ${route.path}: defined twice`)
    }
    this.compiled.push({ route, segments })
    return this
  }

  /** Every route, in the order added (for docs and tests). */
  routes(): AdminRoute[] {
    return this.compiled.map((c) => c.route)
  }

  /** HEAD matches the GET route of the path. */
  match(method: string, path: string): RouteMatch {
    const parts = path.slice(1).split('/')
    const allow = new Set<string>()
    let badParam: string | undefined
    for (const c of this.compiled) {
      if (c.segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      let bad: string | undefined
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = c.segments[i] as Compiled['segments'][number]
        const part = parts[i] as string
        if (typeof seg === 'string') ok = seg === part
        else if (part === '') ok = false
        else {
          try {
            params[seg.name] = decodeURIComponent(part)
          } catch {
            bad = seg.name
          }
        }
      }
      if (!ok) continue
      const m = c.route.method
      if (m === method || (method === 'HEAD' && m === 'GET')) {
        if (bad !== undefined) badParam = bad
        else return { kind: 'found', route: c.route, params }
      }
      allow.add(m)
      if (m === 'GET') allow.add('HEAD')
    }
    if (badParam !== undefined) return { kind: 'bad-param', name: badParam }
    if (allow.size > 0) return { kind: 'method', allow: [...allow].sort() }
    return { kind: 'none' }
  }
}
