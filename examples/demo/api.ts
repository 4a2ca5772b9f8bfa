// The Portcullis demo upstream: a small JSON API that is DELIBERATELY VULNERABLE.
//
// Every flaw below is intentional and documented in docs/demo.md (with its OWASP API Security
// Top 10 2023 id). The flaws are meant to be closed by gateway policy in front of this API, never
// by editing this file. Do not "fix" them here and never expose this server to a network you do
// not control.
//
// Only Node built-ins are used (node:http / node:https for serving and for the avatar fetch,
// node:crypto for password hashes and tokens). All data is in memory and seeded fresh for every
// createDemoApp() / startDemoApi() call.

import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

/** Largest request body the demo reads (bytes). Larger bodies get 413. */
export const MAX_BODY_BYTES = 1024 * 1024
/** Largest avatar download the demo reads (bytes); the rest is discarded. */
export const AVATAR_MAX_BYTES = 64 * 1024
/** Deadline for the whole avatar download (ms). */
export const AVATAR_TIMEOUT_MS = 2000

/** Seeded demo logins (username → password). Fake credentials for a local demo. */
export const demoCredentials = {
  alice: 'alice-password-1',
  bob: 'bob-password-2',
  admin: 'admin-password-3',
} as const

export type DemoUsername = keyof typeof demoCredentials

/** The internal user record. Extra keys appear through mass assignment (PATCH /users/me). */
export interface DemoUser {
  id: number
  username: string
  displayName: string
  email: string
  role: string
  passwordHash: string
  [extra: string]: unknown
}

export interface DemoAccount {
  id: number
  ownerId: number
  balance: number
  currency: string
  iban: string
}

export interface DemoOrder {
  id: number
  ownerId: number
  item: string
  quantity: number
  total: number
}

interface DemoState {
  users: DemoUser[]
  accounts: DemoAccount[]
  orders: DemoOrder[]
  /** bearer token → user id. Tokens never expire (part of the API2 flaw). */
  sessions: Map<string, number>
  nextOrderId: number
}

export interface DemoApi {
  url: string
  port: number
  close(): Promise<void>
}

type JsonObject = Record<string, unknown>

// ---------------------------------------------------------------------------------------------
// Passwords

const SCRYPT_N = 16384
const SCRYPT_R = 8
const SCRYPT_P = 1
const SCRYPT_KEYLEN = 32

/** Format: scrypt$N$r$p$<salt base64>$<key base64> */
function hashPassword(password: string): string {
  const salt = randomBytes(16)
  const key = scryptSync(password, salt, SCRYPT_KEYLEN, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P })
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64'), key.toString('base64')].join('$')
}

function verifyPassword(password: string, stored: unknown): Promise<boolean> {
  // The stored hash can be anything: PATCH /users/me lets callers overwrite it (mass assignment).
  if (typeof stored !== 'string') return Promise.resolve(false)
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return Promise.resolve(false)
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  const salt = Buffer.from(parts[4] ?? '', 'base64')
  const expected = Buffer.from(parts[5] ?? '', 'base64')
  if (expected.length === 0) return Promise.resolve(false)
  return new Promise((resolve) => {
    try {
      scrypt(password, salt, expected.length, { N, r, p }, (err, key) => {
        resolve(!err && key.length === expected.length && timingSafeEqual(key, expected))
      })
    } catch {
      resolve(false) // invalid scrypt parameters
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Seed data

function seedState(): DemoState {
  const users: DemoUser[] = [
    {
      id: 1,
      username: 'alice',
      displayName: 'Alice Example',
      email: 'alice@example.com',
      role: 'user',
      passwordHash: hashPassword(demoCredentials.alice),
    },
    {
      id: 2,
      username: 'bob',
      displayName: 'Bob Example',
      email: 'bob@example.com',
      role: 'user',
      passwordHash: hashPassword(demoCredentials.bob),
    },
    {
      id: 3,
      username: 'admin',
      displayName: 'Demo Administrator',
      email: 'admin@example.com',
      role: 'admin',
      passwordHash: hashPassword(demoCredentials.admin),
    },
  ]
  // IBANs are the well-known documentation examples, not real accounts.
  const accounts: DemoAccount[] = [
    { id: 1, ownerId: 1, balance: 1520.5, currency: 'EUR', iban: 'DE89370400440532013000' },
    { id: 2, ownerId: 2, balance: 98250.0, currency: 'EUR', iban: 'GB82WEST12345698765432' },
    { id: 3, ownerId: 3, balance: 7.25, currency: 'EUR', iban: 'FR1420041010050500013M02606' },
  ]
  const orders: DemoOrder[] = [
    { id: 1, ownerId: 1, item: 'keyboard', quantity: 1, total: priceFor('keyboard', 1) },
    { id: 2, ownerId: 2, item: 'monitor', quantity: 2, total: priceFor('monitor', 2) },
    { id: 3, ownerId: 3, item: 'server-rack', quantity: 1, total: priceFor('server-rack', 1) },
  ]
  return { users, accounts, orders, sessions: new Map(), nextOrderId: orders.length + 1 }
}

const unitPrices: Record<string, number> = {
  keyboard: 49.9,
  monitor: 199.0,
  mouse: 19.99,
  'usb-cable': 5.99,
  'server-rack': 899.0,
}

function priceFor(item: string, quantity: number): number {
  const unit = unitPrices[item] ?? 9.99
  return Math.round(unit * quantity * 100) / 100
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title)
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = Buffer.from(JSON.stringify(body))
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(payload.length),
    ...headers,
  })
  res.end(payload)
}

function sendProblem(res: ServerResponse, err: HttpError) {
  const body: JsonObject = { type: 'about:blank', title: err.title, status: err.status }
  if (err.detail !== undefined) body.detail = err.detail
  const payload = Buffer.from(JSON.stringify(body))
  res.writeHead(err.status, {
    'Content-Type': 'application/problem+json; charset=utf-8',
    'Content-Length': String(payload.length),
    ...err.headers,
  })
  res.end(payload)
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const settle = (err: Error | undefined, value?: Buffer) => {
      if (settled) return
      settled = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
      if (err) reject(err)
      else resolve(value ?? Buffer.alloc(0))
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        settle(tooLarge())
        req.resume() // discard the rest; the 413 closes the connection
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => settle(undefined, Buffer.concat(chunks))
    const onError = (err: Error) => settle(err)
    const onClose = () => settle(new Error('request closed before the body was complete'))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

function tooLarge(): HttpError {
  return new HttpError(413, 'Payload Too Large', `Request bodies are limited to ${MAX_BODY_BYTES} bytes`, {
    Connection: 'close',
  })
}

async function readJsonObject(req: IncomingMessage): Promise<JsonObject> {
  const raw = await readBody(req)
  const text = raw.toString('utf8').trim()
  if (text === '') throw new HttpError(400, 'Bad Request', 'A JSON object body is required')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new HttpError(400, 'Bad Request', 'Malformed JSON body')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'Bad Request', 'The JSON body must be an object')
  }
  return value as JsonObject
}

function requireString(body: JsonObject, key: string): string {
  const value = body[key]
  if (typeof value !== 'string' || value === '') {
    throw new HttpError(400, 'Bad Request', `"${key}" must be a non-empty string`)
  }
  return value
}

function requireQuantity(body: JsonObject): number {
  const value = body.quantity
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1000) {
    throw new HttpError(400, 'Bad Request', '"quantity" must be an integer between 1 and 1000')
  }
  return value
}

const notFound = () => new HttpError(404, 'Not Found', 'No such resource')

// ---------------------------------------------------------------------------------------------
// Avatar fetch (the SSRF flaw: any http/https URL, including loopback and internal addresses)

interface FetchResult {
  status: number
  bytes: number
  contentType: string | null
  truncated: boolean
}

function fetchLimited(target: URL): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finish = (err: Error | undefined, result?: FetchResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err || !result) reject(err ?? new Error('no response'))
      else resolve(result)
    }
    const req = send(
      target,
      { method: 'GET', headers: { 'User-Agent': 'demo-api-avatar-fetcher/1.0', Accept: 'image/*, */*' } },
      (res) => {
        let bytes = 0
        const result = (truncated: boolean): FetchResult => ({
          status: res.statusCode ?? 0,
          bytes,
          contentType: res.headers['content-type'] ?? null,
          truncated,
        })
        res.on('data', (chunk: Buffer) => {
          if (settled) return
          if (bytes + chunk.length > AVATAR_MAX_BYTES) {
            bytes = AVATAR_MAX_BYTES
            finish(undefined, result(true))
            res.destroy()
            return
          }
          bytes += chunk.length
        })
        res.on('end', () => finish(undefined, result(false)))
        res.on('error', (err) => finish(err))
        res.on('close', () => finish(new Error('connection closed before the response was complete')))
      },
    )
    timer = setTimeout(
      () => req.destroy(new Error(`timed out after ${AVATAR_TIMEOUT_MS} ms`)),
      AVATAR_TIMEOUT_MS,
    )
    req.on('error', (err) => finish(err))
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// Routing

interface Ctx {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  params: string[]
  state: DemoState
}

type Handler = (ctx: Ctx) => Promise<void>
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

interface Route {
  pattern: RegExp
  methods: Partial<Record<Method, Handler>>
}

function authenticate(ctx: Ctx): DemoUser {
  const header = ctx.req.headers.authorization ?? ''
  const match = /^Bearer[ \t]+([A-Za-z0-9._~+/-]+=*)[ \t]*$/i.exec(header)
  const userId = match?.[1] === undefined ? undefined : ctx.state.sessions.get(match[1])
  const user = userId === undefined ? undefined : ctx.state.users.find((u) => u.id === userId)
  if (!user) {
    throw new HttpError(401, 'Unauthorized', 'A valid bearer token is required', {
      'WWW-Authenticate': 'Bearer realm="demo-api"',
    })
  }
  return user
}

/** Wraps a handler that needs a logged-in user. Note: authentication only, never authorization. */
function authed(fn: (ctx: Ctx, user: DemoUser) => Promise<void>): Handler {
  return async (ctx) => fn(ctx, authenticate(ctx))
}

function idParam(ctx: Ctx): number {
  return Number(ctx.params[0])
}

function findUser(state: DemoState, id: number): DemoUser {
  const user = state.users.find((u) => u.id === id)
  if (!user) throw notFound()
  return user
}

function findOrder(state: DemoState, id: number): DemoOrder {
  const order = state.orders.find((o) => o.id === id)
  if (!order) throw notFound()
  return order
}

/** Naive serializer: the whole internal record, passwordHash included (API3 excessive data exposure). */
function fullUser(user: DemoUser): JsonObject {
  return { ...user }
}

const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype'])

const routes: Route[] = [
  {
    pattern: /^\/healthz$/,
    methods: {
      GET: async ({ res }) => sendJson(res, 200, { status: 'ok' }),
    },
  },
  {
    // API2/API4: no rate limit, no lockout, tokens never expire.
    pattern: /^\/api\/v2\/login$/,
    methods: {
      POST: async ({ req, res, state }) => {
        const body = await readJsonObject(req)
        const username = requireString(body, 'username')
        const password = requireString(body, 'password')
        const user = state.users.find((u) => u.username === username)
        if (!user || !(await verifyPassword(password, user.passwordHash))) {
          throw new HttpError(401, 'Unauthorized', 'Invalid username or password')
        }
        const token = randomBytes(24).toString('base64url')
        state.sessions.set(token, user.id)
        sendJson(res, 200, { token, user: { id: user.id, username: user.username, role: user.role } })
      },
    },
  },
  {
    pattern: /^\/api\/v2\/users\/me$/,
    methods: {
      GET: authed(async ({ res }, user) => sendJson(res, 200, fullUser(user))),
      // API3 mass assignment: every field of the body is copied onto the record (role, isAdmin,
      // passwordHash, ...). Only `id` is kept, so the demo's sessions keep working.
      PATCH: authed(async ({ req, res }, user) => {
        const body = await readJsonObject(req)
        for (const [key, value] of Object.entries(body)) {
          if (key === 'id' || forbiddenKeys.has(key)) continue
          user[key] = value
        }
        sendJson(res, 200, fullUser(user))
      }),
    },
  },
  {
    // API7 SSRF: the server fetches whatever http(s) URL it is given.
    pattern: /^\/api\/v2\/users\/me\/avatar$/,
    methods: {
      POST: authed(async ({ req, res }, user) => {
        const body = await readJsonObject(req)
        const imageUrl = requireString(body, 'imageUrl')
        let target: URL
        try {
          target = new URL(imageUrl)
        } catch {
          throw new HttpError(400, 'Bad Request', '"imageUrl" must be an absolute URL')
        }
        if (target.protocol !== 'http:' && target.protocol !== 'https:') {
          throw new HttpError(400, 'Bad Request', 'Only http and https URLs are supported')
        }
        let result: FetchResult
        try {
          result = await fetchLimited(target)
        } catch (err) {
          // The error text is returned as is: a port-scanning oracle on top of the SSRF.
          const message = err instanceof Error ? err.message : String(err)
          throw new HttpError(502, 'Bad Gateway', `Could not fetch ${target.href}: ${message}`)
        }
        user.avatarUrl = target.href
        sendJson(res, 200, {
          fetched: true,
          url: target.href,
          status: result.status,
          bytes: result.bytes,
          contentType: result.contentType,
          truncated: result.truncated,
        })
      }),
    },
  },
  {
    // API1 BOLA + API3 excessive data exposure: any user reads any user, passwordHash included.
    pattern: /^\/api\/v2\/users\/(\d{1,9})$/,
    methods: {
      GET: authed(async (ctx) => sendJson(ctx.res, 200, fullUser(findUser(ctx.state, idParam(ctx))))),
    },
  },
  {
    // Without ?ids the caller's own accounts; with ?ids=1,2 ANY accounts (API1 BOLA).
    pattern: /^\/api\/v2\/accounts$/,
    methods: {
      GET: authed(async ({ url, res, state }, user) => {
        const ids = url.searchParams.get('ids')
        if (ids === null) {
          sendJson(
            res,
            200,
            state.accounts.filter((a) => a.ownerId === user.id),
          )
          return
        }
        if (!/^\d{1,9}(,\d{1,9})*$/.test(ids)) {
          throw new HttpError(400, 'Bad Request', '"ids" must be a comma-separated list of integers')
        }
        const wanted = new Set(ids.split(',').map(Number))
        sendJson(
          res,
          200,
          state.accounts.filter((a) => wanted.has(a.id)),
        )
      }),
    },
  },
  {
    // API1 BOLA: no owner check.
    pattern: /^\/api\/v2\/accounts\/(\d{1,9})$/,
    methods: {
      GET: authed(async (ctx) => {
        const account = ctx.state.accounts.find((a) => a.id === idParam(ctx))
        if (!account) throw notFound()
        sendJson(ctx.res, 200, account)
      }),
    },
  },
  {
    pattern: /^\/api\/v2\/orders$/,
    methods: {
      GET: authed(async ({ res, state }, user) =>
        sendJson(
          res,
          200,
          state.orders.filter((o) => o.ownerId === user.id),
        ),
      ),
      POST: authed(async ({ req, res, state }, user) => {
        const body = await readJsonObject(req)
        const item = requireString(body, 'item')
        const quantity = requireQuantity(body)
        const order: DemoOrder = {
          id: state.nextOrderId++,
          ownerId: user.id,
          item,
          quantity,
          total: priceFor(item, quantity),
        }
        state.orders.push(order)
        sendJson(res, 201, order, { Location: `/api/v2/orders/${order.id}` })
      }),
    },
  },
  {
    // API1 BOLA: read, replace and delete anyone's order.
    pattern: /^\/api\/v2\/orders\/(\d{1,9})$/,
    methods: {
      GET: authed(async (ctx) => sendJson(ctx.res, 200, findOrder(ctx.state, idParam(ctx)))),
      PUT: authed(async (ctx) => {
        const order = findOrder(ctx.state, idParam(ctx))
        const body = await readJsonObject(ctx.req)
        const item = requireString(body, 'item')
        const quantity = requireQuantity(body)
        order.item = item
        order.quantity = quantity
        order.total = priceFor(item, quantity)
        sendJson(ctx.res, 200, order)
      }),
      DELETE: authed(async (ctx) => {
        const order = findOrder(ctx.state, idParam(ctx))
        ctx.state.orders = ctx.state.orders.filter((o) => o !== order)
        ctx.res.writeHead(204)
        ctx.res.end()
      }),
    },
  },
  {
    // API5 BFLA: an admin function that only checks authentication, not the caller's role.
    pattern: /^\/api\/v2\/admin\/users\/(\d{1,9})\/role$/,
    methods: {
      POST: authed(async (ctx) => {
        const target = findUser(ctx.state, idParam(ctx))
        const body = await readJsonObject(ctx.req)
        const role = body.role
        if (role !== 'user' && role !== 'admin') {
          throw new HttpError(400, 'Bad Request', '"role" must be "user" or "admin"')
        }
        target.role = role
        sendJson(ctx.res, 200, { id: target.id, username: target.username, role: target.role })
      }),
    },
  },
  {
    // API8 + API9: undocumented, unauthenticated debug endpoint leaking (fake) internals.
    pattern: /^\/api\/v2\/debug\/config$/,
    methods: {
      GET: async ({ res, state }) =>
        sendJson(res, 200, {
          service: 'demo-api',
          version: '2.3.1-debug',
          environment: 'production',
          debug: true,
          nodeVersion: process.version,
          activeSessions: state.sessions.size,
          database: { url: 'postgres://demo_app:demo-db-password@db.internal.example:5432/demo' },
          // The AWS documentation example key pair: secret-looking, but not a real credential.
          aws: {
            accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
            secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
          },
          featureFlags: { legacyApiV1: true, avatarFetch: true },
        }),
    },
  },
  {
    // API9: the retired v1 API, still alive, no authentication at all, full record.
    pattern: /^\/api\/v1\/users\/(\d{1,9})$/,
    methods: {
      GET: async (ctx) => sendJson(ctx.res, 200, fullUser(findUser(ctx.state, idParam(ctx)))),
    },
  },
]

function allowHeader(route: Route): string {
  const methods: string[] = Object.keys(route.methods)
  if (methods.includes('GET')) methods.push('HEAD')
  return [...methods, 'OPTIONS'].join(', ')
}

async function handle(req: IncomingMessage, res: ServerResponse, state: DemoState): Promise<void> {
  // API8 security misconfiguration: version-revealing headers on every response.
  res.setHeader('Server', 'demo-api')
  res.setHeader('X-Powered-By', 'demo-express/4.0')

  let url: URL
  try {
    url = new URL(req.url ?? '/', 'http://demo.invalid')
  } catch {
    throw new HttpError(400, 'Bad Request', 'Malformed request target')
  }
  for (const route of routes) {
    const match = route.pattern.exec(url.pathname)
    if (!match) continue
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET')
    if (method === 'OPTIONS') {
      res.writeHead(204, { Allow: allowHeader(route) })
      res.end()
      return
    }
    const handler = route.methods[method as Method]
    if (!handler) {
      throw new HttpError(405, 'Method Not Allowed', `${req.method} is not supported here`, {
        Allow: allowHeader(route),
      })
    }
    // Node drops the body of HEAD responses itself, so HEAD simply runs the GET handler.
    await handler({ req, res, url, params: match.slice(1), state })
    return
  }
  throw new HttpError(404, 'Not Found', `No route for ${req.method} ${url.pathname}`)
}

/** A request listener for node:http serving the demo API over a freshly seeded in-memory state. */
export function createDemoApp(): (req: IncomingMessage, res: ServerResponse) => void {
  const state = seedState()
  return (req, res) => {
    handle(req, res, state).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof HttpError) sendProblem(res, err)
      else sendProblem(res, new HttpError(500, 'Internal Server Error'))
    })
  }
}

/** Starts the demo API (default 127.0.0.1, ephemeral port) with fresh seed data. */
export async function startDemoApi(opts: { host?: string; port?: number } = {}): Promise<DemoApi> {
  const host = opts.host ?? '127.0.0.1'
  const server = createServer(createDemoApp())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  let closing: Promise<void> | undefined
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      })
      return closing
    },
  }
}

/**
 * Absolute path of examples/demo/openapi.yaml, whether this module runs from the source tree or
 * from dist/examples/demo/ (tsc does not copy the YAML).
 */
export function demoOpenApiPath(): string {
  const beside = fileURLToPath(new URL('./openapi.yaml', import.meta.url))
  if (existsSync(beside)) return beside
  return fileURLToPath(new URL('../../../examples/demo/openapi.yaml', import.meta.url))
}
