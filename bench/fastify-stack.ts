// The peer stack of the full-stack scenarios: what a competent Node team builds instead of a
// gateway, from fastify and the ecosystem's plugins, doing the checks Portcullis does there:
//
//   - @fastify/jwt (fast-jwt): RS256 only, issuer and audience checked, verified-token cache on;
//   - authorization: the token's scopes must include the operation's (a preHandler);
//   - object ownership: the order id in the path must be one the token is bound to (preHandler);
//   - request validation: fastify's own ajv on the path parameter and the JSON body, with the
//     same JSON Schemas (read from bench/full-stack.openapi.yaml, refs inlined), plus the
//     role-reserved body property refused (mass assignment);
//   - @fastify/rate-limit: one limit per client IP, never reached, on the bench's Redis (or in
//     memory, as the scenario says), its RateLimit headers on;
//   - the proxy: @fastify/http-proxy (reply-from, undici) with fastify parsing the body
//     (`proxyPayloads: false`: the body is validated, then sent on);
//   - response validation (@fastify/response-validation, ajv) and filtering: the upstream's JSON is
//     parsed, the role-restricted property removed for callers without the role, and serialized by
//     fastify with the response schema (fast-json-stringify drops any undeclared property);
//   - @fastify/helmet: its default security headers;
//   - a pino access log: one line per request (status, method, url, duration), to a file through
//     pino's asynchronous destination.
//
// Usage: node dist/bench/fastify-stack.js <listen port> <upstream origin> <config json file>
//   the config file: { publicKeyPem, issuer, audience, redisPort?: number, accessLog: string,
//                      rateLimit?: { max, timeWindowMs, namespace } }
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import helmet from '@fastify/helmet'
import proxy from '@fastify/http-proxy'
import fastifyJwt from '@fastify/jwt'
import rateLimit from '@fastify/rate-limit'
import responseValidation from '@fastify/response-validation'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { parse } from 'yaml'

interface StackConfig {
  publicKeyPem: string
  issuer: string
  audience: string
  redisPort?: number
  accessLog: string
  /** the enforcement check's low limit (bench/enforcement.ts); else 10^9 a second, never reached */
  rateLimit?: { max: number; timeWindowMs: number; namespace: string }
}

const port = Number(process.argv[2])
const upstream = process.argv[3]
const configFile = process.argv[4]
if (!Number.isInteger(port) || port <= 0 || !upstream || !configFile) {
  console.error('usage: fastify-stack.js <port> <upstream origin> <config json file>')
  process.exit(2)
}
const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as StackConfig

// The operation's JSON Schemas, from the same OpenAPI document Portcullis validates with.
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
type Json = Record<string, unknown>
const spec = parse(readFileSync(join(repoRoot, 'bench', 'full-stack.openapi.yaml'), 'utf8')) as Json
const components = (spec.components as Json).schemas as Json
/** A schema with its local `$ref`s inlined and the `x-` extensions left out (ajv's strict mode). */
function inline(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(inline)
  if (s === null || typeof s !== 'object') return s
  const o = s as Json
  if (typeof o.$ref === 'string') return inline(components[o.$ref.replace('#/components/schemas/', '')])
  const out: Json = {}
  for (const [k, v] of Object.entries(o)) if (!k.startsWith('x-')) out[k] = inline(v)
  return out
}
const op = ((spec.paths as Json)['/api/orders/{id}/amend'] as Json).post as Json
const pathParams = (op.parameters as Json[]).map((p) => [p.name as string, inline(p.schema)] as const)
const bodySchema = inline(
  (((op.requestBody as Json).content as Json)['application/json'] as Json).schema,
) as Json
const orderSchema = inline(
  ((((op.responses as Json)['200'] as Json).content as Json)['application/json'] as Json).schema,
) as Json
const ROUTE = '/api/orders/:id/amend'
const SCOPE = 'orders:write'

interface Claims {
  sub?: string
  scope?: string
  roles?: string[]
  orders?: string[]
}
declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: Claims
  }
}

const accessLog = pino(
  { base: null, timestamp: pino.stdTimeFunctions.epochTime },
  pino.destination({ dest: cfg.accessLog, sync: false, minLength: 4096 }),
)
// fastify's ajv strips undeclared body properties by default (removeAdditional): a body that sets
// one would pass. Refused instead, as Portcullis's openapi-validation does (and the enforcement
// check requires): `additionalProperties: false` in the contract means "not accepted".
const app = Fastify({
  logger: false,
  trustProxy: false,
  ajv: { customOptions: { removeAdditional: false } },
})

// The route's schemas, put on the routes @fastify/http-proxy registers (it takes no schema option):
// fastify compiles them with its ajv (params, body) and fast-json-stringify (response).
app.addHook('onRoute', (route) => {
  if (route.url !== ROUTE) return
  route.schema = {
    params: {
      type: 'object',
      required: pathParams.map(([n]) => n),
      properties: Object.fromEntries(pathParams),
    },
    body: bodySchema,
    response: { 200: orderSchema },
  }
})
await app.register(responseValidation)
await app.register(helmet, { global: true })
await app.register(fastifyJwt, {
  secret: { public: cfg.publicKeyPem },
  verify: { algorithms: ['RS256'], allowedIss: cfg.issuer, allowedAud: cfg.audience, cache: true },
})
await app.register(rateLimit, {
  global: true,
  max: cfg.rateLimit?.max ?? 1_000_000_000,
  timeWindow: cfg.rateLimit?.timeWindowMs ?? 1000,
  ...(cfg.rateLimit ? { nameSpace: cfg.rateLimit.namespace } : {}),
  ...(cfg.redisPort !== undefined
    ? {
        redis: new Redis({
          host: '127.0.0.1',
          port: cfg.redisPort,
          connectTimeout: 500,
          maxRetriesPerRequest: 1,
        }),
      }
    : {}),
})

app.addHook('onRequest', async (request) => {
  await request.jwtVerify()
})
app.addHook('onResponse', (request, reply, done) => {
  accessLog.info(
    {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
      ip: request.ip,
    },
    'request completed',
  )
  done()
})

function authorize(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const scopes = (request.user.scope ?? '').split(' ')
  if (!scopes.includes(SCOPE)) {
    reply.code(403).send({ error: 'insufficient_scope' })
    return
  }
  const id = (request.params as { id: string }).id
  if (!Array.isArray(request.user.orders) || !request.user.orders.includes(id)) {
    // 404, as Portcullis's object-ownership answers by default: the order's existence is not revealed
    reply.code(404).send({ error: 'not found' })
    return
  }
  if ((request.body as Json).priority !== undefined && !request.user.roles?.includes('support')) {
    reply.code(400).send({ error: 'property not allowed: /priority' })
    return
  }
  done()
}

await app.register(proxy, {
  upstream,
  prefix: '/api',
  rewritePrefix: '/api',
  routes: ['/orders/:id/amend'],
  httpMethods: ['POST'],
  proxyPayloads: false,
  preHandler: authorize,
  replyOptions: {
    onResponse(request, reply, res) {
      // Buffer the upstream's JSON, filter it for the caller, and let fastify validate and
      // serialize it with the route's response schema.
      const chunks: Buffer[] = []
      const stream = res.stream as unknown as IncomingMessage
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        let order: Json
        try {
          order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json
        } catch {
          reply.code(502).send({ error: 'bad upstream response' })
          return
        }
        const customer = order.customer as Json | undefined
        if (customer && !request.user.roles?.includes('support')) delete customer.email
        reply.removeHeader('content-length')
        reply.send(order)
      })
      stream.on('error', (err) => reply.send(err))
    },
  },
})

await app.listen({ host: '127.0.0.1', port })
process.on('SIGTERM', () => {
  accessLog.flush()
  process.exit(0)
})
