/**
 * A request context for policy unit tests, built on a real IncomingMessage (from a real socket
 * pair-less parse: node:http's IncomingMessage over a plain Socket), not a mock of the gateway.
 */
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import pino from 'pino'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import type { PolicyDeps } from '../../gateway/pipeline/policy.js'
import { parseParams } from '../../gateway/query.js'
import { memoryAudit } from '../../audit/event.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'

export interface TestRequest {
  method?: string
  path?: string
  query?: string
  headers?: Record<string, string>
  secure?: boolean
}

export function testContext(r: TestRequest = {}): RequestContext & { responseHeaders: [string, string][] } {
  const req = new IncomingMessage(new Socket())
  req.method = r.method ?? 'GET'
  req.url = `${r.path ?? '/'}${r.query ? `?${r.query}` : ''}`
  const raw: string[] = []
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    raw.push(k, v)
    req.headers[k.toLowerCase()] = v
  }
  req.rawHeaders = raw
  const responseHeaders: [string, string][] = []
  const upstream = new Map<string, string | undefined>()
  const ctx: RequestContext & { responseHeaders: [string, string][] } = {
    id: 'test-request',
    req,
    method: req.method,
    path: r.path ?? '/',
    query: r.query ?? '',
    host: 'localhost',
    clientIp: '127.0.0.1',
    secure: r.secure ?? false,
    routeName: 'test',
    startTime: 0,
    principal: undefined,
    state: {},
    bodyLimit: Number.POSITIVE_INFINITY,
    body: undefined,
    errorCode: undefined,
    readBody: () => Promise.reject(new Error('no body in unit tests')),
    setUpstreamHeader: (n, v) => upstream.set(n, v),
    setResponseHeader: (n, v) => responseHeaders.push([n, v]),
    responseHeaders,
    queryParams: () => parseParams(ctx.query),
  }
  return ctx
}

/**
 * Policy build-time dependencies for unit tests: a silent logger, a real in-memory store and an
 * in-memory audit emitter (its events in `deps.audit.events`).
 */
export function testDeps(overrides: Partial<PolicyDeps> = {}): PolicyDeps {
  return {
    logger: pino({ level: 'silent' }),
    now: Date.now,
    routeName: 'test',
    store: createMemoryStore({}),
    baseDir: process.cwd(),
    audit: memoryAudit(),
    ...overrides,
  }
}
