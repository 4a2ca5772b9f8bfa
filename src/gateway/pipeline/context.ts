import type { IncomingMessage } from 'node:http'
import type { Params } from '../query.js'

/** The authenticated caller, set by authentication policies. */
export interface Principal {
  id: string
  type: 'user' | 'service' | 'api-key' | 'client-certificate' | 'anonymous'
  scopes: readonly string[]
  roles: readonly string[]
  claims: Readonly<Record<string, unknown>>
  authMethod: string
}

/** What the log phase sees of a finished request. */
export type Decision = 'allowed' | 'denied' | 'error'

/** Mutable view of the response head in the response phase. */
export interface ResponseHead {
  status: number
  /** Lower-case header names; arrays for repeated headers. */
  headers: Record<string, string | string[] | number | undefined>
  /** True when the gateway produced this response itself (a denial or an error). */
  local: boolean
}

/**
 * Per-request state that travels through the phases. Policies read the canonical `path`, never
 * `req.url`, so that routing, every policy and the upstream agree on one path.
 */
export interface RequestContext {
  readonly id: string
  readonly req: IncomingMessage
  readonly method: string
  /** Canonical path (see hygiene.ts). */
  readonly path: string
  /**
   * Raw query string without '?', '' when absent. A policy may rewrite it (openapi-validation
   * strips undeclared parameters); the upstream receives the rewritten query.
   */
  query: string
  /**
   * The query's parameters, parsed by the one urlencoded reader (src/gateway/query.ts) from the
   * current `query`. Every policy reads parameters through it: use `single(name)` for a value
   * that must be given once, `values(name)` for a list. Throws a GatewayError (400) for a
   * malformed query or an ambiguous name; let it propagate.
   */
  queryParams(): Params
  /** Lower-cased host name from the Host header, without port. */
  readonly host: string
  /** Client IP, trusted-proxy aware. */
  readonly clientIp: string
  /** True when the client connection is TLS. */
  readonly secure: boolean
  readonly routeName: string
  readonly startTime: number
  /** Set by authentication policies. */
  principal: Principal | undefined
  /** Free-form per-request state for policies, keyed by policy id. */
  readonly state: Record<string, unknown>
  /** Largest request body accepted, in bytes; policies may only lower it. */
  bodyLimit: number
  /** The buffered request body when a policy asked for it. */
  body: Buffer | undefined
  /**
   * Reads the whole request body (at most `bodyLimit` bytes, else GW_ERR_BODY_TOO_LARGE) so a
   * policy can inspect it; the upstream then receives the same bytes. `onChunk` sees each chunk
   * as it arrives (a streaming parser); when it throws, reading stops and the promise rejects with
   * that error (the connection is closed after the answer, the rest of the body unread).
   */
  readBody(onChunk?: (chunk: Buffer) => void): Promise<Buffer>
  /** Set or remove (undefined) a header on the upstream request. */
  setUpstreamHeader(name: string, value: string | undefined): void
  /** Add a header to the response to the client. */
  setResponseHeader(name: string, value: string): void
  /** Filled in when the request is denied or fails. */
  errorCode: string | undefined
}
