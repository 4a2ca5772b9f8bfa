// The enforcement check of the full-stack scenarios: before any measurement, each stack (Portcullis
// and the peer stack) is started with the scenario's configuration, its rate limit lowered to
// ENFORCEMENT_RATE_LIMIT requests a minute, and must answer a fixed list of requests with the same
// statuses: the legitimate request passes (filtered, with security headers), a missing, forged or
// foreign-key token is refused, a token without the scope or for someone else's order is refused,
// bad bodies are refused, and traffic over the limit is refused. A stack that lets any of them
// through (or refuses them differently) would be measured doing less work than the other, so the
// bench run fails instead.
import type { BenchRequest } from './loadgen.js'
import { signBenchToken } from './scenarios.js'

/** The rate limit (requests a minute, per client IP) of the stacks started for the check. */
export const ENFORCEMENT_RATE_LIMIT = 30

export interface EnforcementCase {
  name: string
  expected: number
  got: number | string
  ok: boolean
  detail?: string
}

interface Probe {
  name: string
  request: BenchRequest
  expected: number
  /** further checks of a response with the expected status; a string is the problem */
  inspect?: (headers: Headers, body: string) => string | undefined
}

function withAuth(r: BenchRequest, authorization: string | undefined): BenchRequest {
  const headers = { ...(r.headers ?? {}) }
  if (authorization === undefined) delete headers.authorization
  else headers.authorization = authorization
  return { ...r, headers }
}

function withBody(r: BenchRequest, body: string): BenchRequest {
  return { ...r, body }
}

/**
 * Headers a security-headers layer adds to a proxied answer (Portcullis's security-headers and
 * @fastify/helmet both do by default; values may differ: DENY / SAMEORIGIN). Checked on the 200,
 * not on refusals: the gateway's own error answers carry `nosniff` with or without the policy.
 */
const SECURITY_HEADERS = [
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
  'content-security-policy',
]

/** The legitimate answer: the order, without the support-only property, with the security headers. */
function inspectGood(headers: Headers, body: string): string | undefined {
  const missing = SECURITY_HEADERS.filter((h) => !headers.get(h))
  if (missing.length > 0) return `no ${missing.join(', ')} (security headers)`
  let order: { customer?: Record<string, unknown> }
  try {
    order = JSON.parse(body) as typeof order
  } catch {
    return 'the answer is not JSON'
  }
  if (order.customer === undefined) return 'the answer has no customer'
  if ('email' in order.customer) return 'customer.email (support staff only) not filtered out'
  return undefined
}

/** The requests and the statuses every stack must answer them with. */
async function probes(good: BenchRequest): Promise<Probe[]> {
  const token = /^Bearer (.+)$/.exec(good.headers?.authorization ?? '')?.[1]
  if (!token) throw new Error('enforcement check: the scenario request carries no bearer token')
  const [h, p, s] = token.split('.') as [string, string, string]
  // the signature with its first character changed: a forged token
  const forged = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`
  const body = JSON.parse(good.body ?? '{}') as Record<string, unknown>
  const items = body.items as Record<string, unknown>[]
  return [
    { name: 'legitimate request', request: good, expected: 200, inspect: inspectGood },
    { name: 'no token', request: withAuth(good, undefined), expected: 401 },
    { name: 'forged signature', request: withAuth(good, `Bearer ${forged}`), expected: 401 },
    {
      name: 'token signed by another key',
      request: withAuth(good, `Bearer ${await signBenchToken({}, true)}`),
      expected: 401,
    },
    {
      name: 'token without the orders:write scope',
      request: withAuth(good, `Bearer ${await signBenchToken({ scope: 'orders:read' })}`),
      expected: 403,
    },
    {
      name: "someone else's order",
      request: withAuth(good, `Bearer ${await signBenchToken({ orders: ['7'] })}`),
      expected: 404,
    },
    { name: 'malformed JSON body', request: withBody(good, '{"items": [ '), expected: 400 },
    {
      name: 'body against the schema (qty 0)',
      request: withBody(good, JSON.stringify({ ...body, items: [{ ...items[0], qty: 0 }] })),
      expected: 400,
    },
    {
      name: 'body with an undeclared property',
      request: withBody(good, JSON.stringify({ ...body, discount: 100 })),
      expected: 400,
    },
    {
      name: 'body setting a support-only property (mass assignment)',
      request: withBody(good, JSON.stringify({ ...body, priority: 'express' })),
      expected: 400,
    },
  ]
}

async function send(
  origin: string,
  r: BenchRequest,
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${origin}${r.path}`, {
    method: r.method,
    headers: r.headers ?? {},
    ...(r.body !== undefined ? { body: r.body } : {}),
    signal: AbortSignal.timeout(10_000),
  })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/**
 * Runs the check against a stack at `origin` started with its rate limit at
 * ENFORCEMENT_RATE_LIMIT a minute: every probe, then legitimate requests until the first refusal,
 * which must be a 429 that comes within the limit (and not before a legitimate request passed).
 * Returns every case with its verdict.
 */
export async function checkEnforcement(origin: string, good: BenchRequest): Promise<EnforcementCase[]> {
  const out: EnforcementCase[] = []
  for (const probe of await probes(good)) {
    try {
      const r = await send(origin, probe.request)
      const problem = r.status === probe.expected ? probe.inspect?.(r.headers, r.body) : undefined
      out.push({
        name: probe.name,
        expected: probe.expected,
        got: r.status,
        ok: r.status === probe.expected && problem === undefined,
        ...(problem ? { detail: problem } : {}),
      })
    } catch (err) {
      out.push({ name: probe.name, expected: probe.expected, got: String(err), ok: false })
    }
  }
  // Over the limit: at most ENFORCEMENT_RATE_LIMIT requests may pass in all (the probes above
  // included, whether or not a stack counts refused ones), so one more than that must meet a 429.
  let passed = 0
  let refused: number | string | undefined
  for (let i = 0; i <= ENFORCEMENT_RATE_LIMIT; i++) {
    try {
      const r = await send(origin, good)
      if (r.status === 200) passed++
      else {
        refused = r.status
        break
      }
    } catch (err) {
      refused = String(err)
      break
    }
  }
  out.push({
    name: `over the limit (${ENFORCEMENT_RATE_LIMIT} a minute)`,
    expected: 429,
    got: refused ?? `${passed} passed, none refused`,
    ok: refused === 429 && passed >= 1,
    ...(refused === 429 && passed === 0 ? { detail: 'refused before any legitimate request passed' } : {}),
  })
  return out
}
