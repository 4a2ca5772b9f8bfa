/**
 * API4: unbounded resource consumption — a page size of 100000 accepted, a 100 KB string accepted
 * where the schema sets no maxLength, and a bounded burst of failed logins without any 429.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources } from '../resources.js'
import { isObject, requestBody, resolveSchema } from '../schema-tools.js'
import type { Check, Finding, ScanContext, ScanResponse } from '../types.js'
import { findSignup } from '../logins.js'
import { fillOperation, sendAsReachable } from './targets.js'
import {
  concretePath,
  deleteCreated,
  exampleBody,
  finding,
  findLogin,
  firstUser,
  is2xx,
  opOf,
  randomName,
  stringProperties,
  templateRegex,
} from './probe.js'

const PAGE_PARAMS =
  /^(limit|size|page_?size|pagesize|per_?page|perpage|count|max|max_?results|top|first|take)$/i
const HUGE = 100_000
const LONG = 100 * 1024
const MAX_STRING_OPS = 6
/** Failed logins in the burst; a limiter tighter than this answers 429 before the end. */
export const LOGIN_BURST = 25

export const resourceLimits: Check = {
  id: 'resource-limits',
  title: 'Missing resource limits',
  owasp: 'API4:2023',
  severity: 'medium',
  description:
    'Asks list operations for 100000 items per page, sends 100 KB strings to fields the schema leaves ' +
    `without maxLength, and sends a burst of ${LOGIN_BURST} failed logins looking for a 429.`,
  why:
    'Without limits one client can make the API read, serialize and send unbounded data, store huge ' +
    'values, or try passwords at full speed: denial of service, cost and brute force.',
  fix:
    'Cap page sizes server-side (and document `maximum`), set maxLength/maxItems on every input and ' +
    'enforce them, limit body sizes, and rate-limit login and other expensive operations per user and IP.',
  fixExample:
    'const limit = Math.min(Number(req.query.limit ?? 20), 100)\n' +
    '# OpenAPI: limit: { type: integer, maximum: 100 }   name: { type: string, maxLength: 200 }\n' +
    '# Portcullis, login route: rate-limit: { limits: [{ name: login-ip, rate: 5, per: minute, key: [ip] }] }\n' +
    '# and openapi-validation (with maximum/maxLength in the spec) refuses what the schema bounds',
  async run(ctx) {
    const findings: Finding[] = []
    findings.push(...(await pageSizes(this, ctx)))
    findings.push(...(await longStrings(this, ctx)))
    return findings
  },
  // The login burst runs last, after the cleanup: a limiter it trips must not lock the scan out.
  async last(ctx) {
    return loginBurst(this, ctx)
  },
}

async function pageSizes(check: Check, ctx: ScanContext): Promise<Finding[]> {
  const out: Finding[] = []
  for (const op of ctx.operations) {
    if (op.method !== 'GET') continue
    const param = op.parameters.find((p) => p.in === 'query' && PAGE_PARAMS.test(p.name))
    if (!param) continue
    const schema = resolveSchema(ctx.spec, param.schema, param.schemaLocation)
    const max = isObject(schema) && typeof schema.maximum === 'number' ? schema.maximum : undefined
    const reached = await sendAsReachable(ctx, op, (who) => {
      const f = fillOperation(ctx, op, who)
      return f
        ? { method: 'GET', path: f.path, query: { ...f.query, [param.name]: String(HUGE) } }
        : undefined
    })
    if (!reached || !is2xx(reached.res.status)) continue
    const res = reached.res
    const user = reached.who
    const echoed = echoes(res.json, param.name, HUGE)
    const items = countItems(res.json)
    const bound = Math.max(100, max ?? 0)
    const proven = echoed || items > bound
    // A 2xx to a value above the spec's own maximum shows the bound is not enforced (the server
    // may still cap silently, but it does not refuse); with no maximum and no proof, only a note.
    const overMax = max !== undefined && max < HUGE
    const medium = proven || overMax
    out.push(
      finding(check, {
        title: medium ? `Page size ${HUGE} accepted` : 'Page size without a documented maximum',
        severity: medium ? 'medium' : 'low',
        operation: opOf(op),
        ...(user ? { identity: user } : {}),
        summary: medium
          ? `${op.method} ${op.path} accepted ${param.name}=${HUGE} (${res.status}${echoed ? `, the answer says ${param.name} ${HUGE}` : `, ${items} items`})${overMax ? ` although the spec sets maximum ${max}: the documented bound is not enforced` : ''}.`
          : `${op.method} ${op.path} answered ${res.status} to ${param.name}=${HUGE} and the spec sets no maximum; the server may or may not cap it.`,
        evidence: [{ note: `${param.name}=${HUGE}: ${res.status}`, exchanges: [res.exchange] }],
      }),
    )
  }
  return out
}

function echoes(body: unknown, name: string, value: number, depth = 0): boolean {
  if (!isObject(body) || depth > 2) return false
  for (const [k, v] of Object.entries(body)) {
    if (v === value && (k === name || PAGE_PARAMS.test(k))) return true
    if (isObject(v) && echoes(v, name, value, depth + 1)) return true
  }
  return false
}

function countItems(body: unknown): number {
  if (Array.isArray(body)) return body.length
  if (isObject(body)) {
    for (const k of ['items', 'data', 'results', 'records', 'content', 'values']) {
      const v = body[k]
      if (Array.isArray(v)) return v.length
    }
  }
  return 0
}

/**
 * Write operations the scanner may call: POSTs (not the login), updates of objects it created
 * (any object outside safe mode). Creates on a resource get their object deleted afterwards.
 */
function writeTargets(
  ctx: ScanContext,
  user: string,
): { op: Operation; path: string; cleanup?: Operation }[] {
  const out: { op: Operation; path: string; cleanup?: Operation }[] = []
  const login = findLogin(ctx)?.op
  const signup = findSignup(ctx.spec, ctx.logins ?? [])?.op
  const resources = findResources(ctx.operations)
  for (const op of ctx.operations) {
    if (op === login || !op.requestBody) continue
    // Safe mode: no account is registered with a 100 KB value (it could not be removed).
    if (ctx.safe && op === signup) continue
    if (op.method === 'POST') {
      const r = resources.find((x) => x.create === op)
      const path = concretePath(ctx, op, user)
      if (path) out.push({ op, path, ...(r?.delete ? { cleanup: r.delete } : {}) })
    } else if (op.method === 'PUT' || op.method === 'PATCH') {
      const re = templateRegex(op.path)
      const mine = ctx.objects.find((o) => o.owner === user && o.createdByScanner && re.test(o.path))
      if (mine) out.push({ op, path: mine.path })
      else if (!ctx.safe) {
        const path = concretePath(ctx, op, user)
        if (path) out.push({ op, path })
      }
    }
  }
  return out
}

async function longStrings(check: Check, ctx: ScanContext): Promise<Finding[]> {
  const user = firstUser(ctx)
  if (!user) return []
  const out: Finding[] = []
  let tried = 0
  for (const { op, path, cleanup } of writeTargets(ctx, user)) {
    if (tried >= MAX_STRING_OPS) break
    const shape = requestBody(ctx.spec, op)
    const fields = stringProperties(shape?.schema).filter(
      (p) =>
        (p.schema.maxLength === undefined ||
          (typeof p.schema.maxLength === 'number' && p.schema.maxLength < LONG)) &&
        p.schema.enum === undefined &&
        p.schema.format === undefined &&
        p.schema.pattern === undefined,
    )
    const body = exampleBody(ctx, op)
    if (fields.length === 0 || !body) continue
    tried++
    for (const field of fields.slice(0, 3)) {
      const res = await ctx.send(user, {
        method: op.method,
        path,
        json: { ...body, [field.name]: 'A'.repeat(LONG) },
        relogin: false,
      })
      await deleteCreated(ctx, user, res, cleanup)
      if (!is2xx(res.status)) continue
      // The answer shows the value cut: stored bounded, not a finding.
      const echoed = isObject(res.json) ? res.json[field.name] : undefined
      if (typeof echoed === 'string' && echoed.length < LONG) continue
      const max = typeof field.schema.maxLength === 'number' ? field.schema.maxLength : undefined
      const proven = max !== undefined || typeof echoed === 'string'
      out.push(
        finding(check, {
          title: max !== undefined ? 'maxLength not enforced' : 'Unbounded string accepted',
          severity: proven ? 'medium' : 'low',
          operation: opOf(op),
          identity: user,
          summary:
            `${op.method} ${op.path} accepted a ${LONG / 1024} KB value for "${field.name}" (${res.status})` +
            (max !== undefined
              ? `, although the spec sets maxLength ${max}.`
              : typeof echoed === 'string'
                ? ' and stored it whole; the schema sets no maxLength.'
                : '; the schema sets no maxLength.'),
          evidence: [
            { note: `"${field.name}" of ${LONG} characters: ${res.status}`, exchanges: [res.exchange] },
          ],
        }),
      )
      break
    }
  }
  return out
}

async function loginBurst(check: Check, ctx: ScanContext): Promise<Finding[]> {
  const login = findLogin(ctx)
  if (!login) return []
  // A throwaway account of the scanner's own when the API lets it register one (a lockout then
  // hits nobody real), else a user name no account has.
  const account = ctx.throwaway ? await ctx.throwaway() : undefined
  const user =
    account?.username ?? (/mail/i.test(login.userField) ? `${randomName()}@example.invalid` : randomName())
  const who = account ? `the scanner's throwaway account "${user}"` : `the unknown user "${user}"`
  const results: ScanResponse[] = []
  for (let i = 0; i < LOGIN_BURST; i++) {
    const res = await ctx.send(undefined, login.attempt(user, `wrong-${i}-${randomName()}`))
    results.push(res)
    if (res.status === 429 || res.status === 503 || res.headers['retry-after'] !== undefined) return []
    // No answer, or no such login: no verdict.
    if (res.status === 0 || res.status >= 500 || res.status === 404 || res.status === 405) return []
  }
  const first = results[0]
  const last = results[results.length - 1]
  if (!first || !last) return []
  return [
    finding(check, {
      title: 'No rate limit on login',
      operation: login.ref,
      summary: `${LOGIN_BURST} failed logins in a row for ${who} at ${login.login.method} ${login.login.path} were all answered (last: ${last.status}) without a 429 or Retry-After: passwords can be guessed at full speed.`,
      evidence: [
        { note: 'first failed login', exchanges: [first.exchange] },
        { note: `failed login ${LOGIN_BURST}: still no 429`, exchanges: [last.exchange] },
      ],
    }),
  ]
}
