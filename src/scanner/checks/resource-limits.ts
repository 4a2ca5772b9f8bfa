/**
 * API4: unbounded resource consumption — a page size of 100000 accepted, a 100 KB string accepted
 * where the schema sets no maxLength, and a bounded burst of failed logins without any 429.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources } from '../resources.js'
import { isObject, requestBody, resolveSchema } from '../schema-tools.js'
import type { Check, Finding, ScanContext, ScanResponse } from '../types.js'
import {
  concretePath,
  exampleBody,
  finding,
  findLogin,
  firstUser,
  is2xx,
  opOf,
  randomName,
  requiredQuery,
  stringProperties,
} from './probe.js'

const PAGE_PARAMS =
  /^(limit|size|page_?size|pagesize|per_?page|perpage|count|max|max_?results|top|first|take)$/i
const HUGE = 100_000
const LONG = 100 * 1024
const MAX_STRING_OPS = 4
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
    '# Portcullis: policies: [{ rate-limit: { limit: 5, window: 1m, key: ip } }] on /login',
  async run(ctx) {
    const findings: Finding[] = []
    findings.push(...(await pageSizes(this, ctx)))
    findings.push(...(await longStrings(this, ctx)))
    findings.push(...(await loginBurst(this, ctx)))
    return findings
  },
}

async function pageSizes(check: Check, ctx: ScanContext): Promise<Finding[]> {
  const user = firstUser(ctx)
  const out: Finding[] = []
  for (const op of ctx.operations) {
    if (op.method !== 'GET') continue
    const param = op.parameters.find((p) => p.in === 'query' && PAGE_PARAMS.test(p.name))
    if (!param) continue
    const path = concretePath(ctx, op, user)
    if (!path) continue
    const schema = resolveSchema(ctx.spec, param.schema, param.schemaLocation)
    const max = isObject(schema) && typeof schema.maximum === 'number' ? schema.maximum : undefined
    const query = requiredQuery(ctx, op)
    const res = await ctx.send(user, { method: 'GET', path, query: { ...query, [param.name]: String(HUGE) } })
    if (!is2xx(res.status)) continue
    const echoed = echoes(res.json, param.name, HUGE)
    const items = countItems(res.json)
    const bound = Math.max(100, max ?? 0)
    const proven = echoed || items > bound
    // Without proof (the server may clamp silently) it is only worth a note when the spec sets no maximum.
    if (!proven && max !== undefined) continue
    out.push(
      finding(check, {
        title: proven ? `Page size ${HUGE} accepted` : 'Page size without a documented maximum',
        severity: proven ? 'medium' : 'low',
        operation: opOf(op),
        ...(user ? { identity: user } : {}),
        summary: proven
          ? `${op.method} ${op.path} accepted ${param.name}=${HUGE} (${res.status}${echoed ? `, the answer says ${param.name} ${HUGE}` : `, ${items} items`})${max !== undefined ? ` although the spec sets maximum ${max}` : ''}.`
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

/** Write operations the scanner may call: creates on collections, updates of objects it created. */
function writeTargets(
  ctx: ScanContext,
  user: string,
): { op: Operation; path: string; cleanup?: Operation }[] {
  const out: { op: Operation; path: string; cleanup?: Operation }[] = []
  for (const r of findResources(ctx.operations)) {
    if (r.create)
      out.push({ op: r.create, path: r.collectionPath, ...(r.delete ? { cleanup: r.delete } : {}) })
    for (const op of [r.patch, r.put]) {
      if (!op) continue
      const mine = ctx.objects.find((o) => o.owner === user && o.createdByScanner && o.type === r.type)
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
    const field = stringProperties(shape?.schema).find(
      (p) =>
        p.schema.maxLength === undefined &&
        p.schema.enum === undefined &&
        p.schema.format === undefined &&
        p.schema.pattern === undefined,
    )
    const body = exampleBody(ctx, op)
    if (!field || !body) continue
    tried++
    const res = await ctx.send(user, {
      method: op.method,
      path,
      json: { ...body, [field.name]: 'A'.repeat(LONG) },
    })
    await removeCreated(ctx, user, res, cleanup, path)
    if (!is2xx(res.status)) continue
    out.push(
      finding(check, {
        title: 'Unbounded string accepted',
        operation: opOf(op),
        identity: user,
        summary: `${op.method} ${op.path} accepted a ${LONG / 1024} KB value for "${field.name}" (${res.status}); the schema sets no maxLength.`,
        evidence: [
          { note: `"${field.name}" of ${LONG} characters: ${res.status}`, exchanges: [res.exchange] },
        ],
      }),
    )
  }
  return out
}

/** Deletes an object a create just made (by the id in its answer), so probes leave nothing behind. */
async function removeCreated(
  ctx: ScanContext,
  user: string,
  res: ScanResponse,
  del: Operation | undefined,
  collectionPath: string,
): Promise<void> {
  if (!del || !is2xx(res.status) || !isObject(res.json)) return
  const id = res.json.id ?? (isObject(res.json.data) ? res.json.data.id : undefined)
  if (typeof id !== 'string' && typeof id !== 'number') return
  await ctx.send(user, { method: 'DELETE', path: `${collectionPath}/${encodeURIComponent(String(id))}` })
}

async function loginBurst(check: Check, ctx: ScanContext): Promise<Finding[]> {
  const login = findLogin(ctx)
  if (!login) return []
  const user = /mail/i.test(login.userField) ? `${randomName()}@example.invalid` : randomName()
  let last: ScanResponse | undefined
  let first: ScanResponse | undefined
  for (let i = 0; i < LOGIN_BURST; i++) {
    const res = await ctx.send(undefined, {
      method: 'POST',
      path: login.op.path,
      json: { ...login.base, [login.userField]: user, [login.passwordField]: `wrong-${i}` },
    })
    first ??= res
    last = res
    if (res.status === 429 || res.status === 503 || res.headers['retry-after'] !== undefined) return []
    if (res.status >= 500 || res.status === 404 || res.status === 405) return []
  }
  if (!first || !last) return []
  return [
    finding(check, {
      title: 'No rate limit on login',
      operation: opOf(login.op),
      summary: `${LOGIN_BURST} failed logins in a row for one user name were all answered (last: ${last.status}) without a 429 or Retry-After: passwords can be guessed at full speed.`,
      evidence: [
        { note: 'first failed login', exchanges: [first.exchange] },
        { note: `failed login ${LOGIN_BURST}: still no 429`, exchanges: [last.exchange] },
      ],
    }),
  ]
}
