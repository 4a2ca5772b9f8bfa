/**
 * API7: URL-valued inputs (format uri/url, or names like url, imageUrl, webhook, callback) are
 * given a unique URL of the scanner's canary server on 127.0.0.1; a finding only when the target
 * actually fetched it (the canary saw the request), never on a 2xx alone.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources } from '../resources.js'
import { flatten, isObject, requestBody, resolveSchema, type Schema } from '../schema-tools.js'
import type { Check, Finding, ScanContext } from '../types.js'
import { SkipCheck } from '../types.js'
import {
  concretePath,
  deleteCreated,
  exampleBody,
  finding,
  firstUser,
  opOf,
  requiredQuery,
  templateRegex,
} from './probe.js'

const URL_NAME =
  /(^|_|-)(url|uri|href|link|webhook|callback|endpoint|redirect|target|source|feed|image|avatar|icon|logo|picture|photo)s?($|_|-)|Url$|Uri$|Href$|Link$|webhook|callback/i
const MAX_PROBES = 12
const WAIT_MS = 1500

function isUrlField(name: string, schema: unknown): boolean {
  if (isObject(schema)) {
    const s = flatten(schema as Schema)
    const type = s.type
    if (type !== undefined && type !== 'string' && !(Array.isArray(type) && type.includes('string')))
      return false
    if (s.format === 'uri' || s.format === 'url' || s.format === 'iri') return true
  }
  return URL_NAME.test(name)
}

interface Target {
  op: Operation
  where: 'body' | 'query'
  field: string
}

function targets(ctx: ScanContext): Target[] {
  const out: Target[] = []
  for (const op of ctx.operations) {
    if (op.method === 'DELETE') continue
    for (const p of op.parameters) {
      if (p.in === 'query' && isUrlField(p.name, resolveSchema(ctx.spec, p.schema, p.schemaLocation)))
        out.push({ op, where: 'query', field: p.name })
    }
    const shape = requestBody(ctx.spec, op)
    const schema = shape?.schema ? flatten(shape.schema) : undefined
    if (schema && isObject(schema.properties)) {
      for (const [name, p] of Object.entries(schema.properties)) {
        if (isObject(p) && p.readOnly === true) continue
        if (isUrlField(name, p)) out.push({ op, where: 'body', field: name })
      }
    }
  }
  return out
}

export const ssrf: Check = {
  id: 'ssrf',
  title: 'Server-side request forgery',
  owasp: 'API7:2023',
  severity: 'high',
  description:
    'Gives every URL-valued input (format uri, or names like url, imageUrl, webhook, callback) a unique URL ' +
    "of the scanner's canary server on 127.0.0.1 and reports the inputs the API fetched from the server side.",
  why:
    'A server that fetches URLs chosen by a client can be pointed at internal services, cloud metadata ' +
    'endpoints (169.254.169.254) and loopback admin ports that no outside client can reach.',
  fix:
    'Fetch only URLs whose scheme and host are on an allow-list; resolve the host and refuse private, ' +
    'loopback and link-local addresses (re-check after redirects, or disable them); use an egress proxy.',
  fixExample:
    "const u = new URL(input)\nif (u.protocol !== 'https:' || !ALLOWED_HOSTS.has(u.hostname)) throw badRequest()\n" +
    'const { address } = await dns.lookup(u.hostname)\nif (isPrivate(address)) throw badRequest()',
  async run(ctx) {
    const user = firstUser(ctx)
    const list = targets(ctx)
    if (list.length === 0) throw new SkipCheck('no URL-valued input in the spec')
    const findings: Finding[] = []
    const done = new Set<string>()
    let probes = 0
    for (const t of list) {
      if (probes >= MAX_PROBES) break
      const key = `${t.op.method} ${t.op.path}`
      if (done.has(key)) continue
      let path: string | undefined
      if ((t.op.method === 'PUT' || t.op.method === 'PATCH') && ctx.safe) {
        path = ctx.objects.find(
          (o) => o.owner === user && o.createdByScanner && templateRegex(t.op.path).test(o.path),
        )?.path
      } else path = concretePath(ctx, t.op, user)
      if (!path) continue
      const canary = await ctx.canary()
      const query = { ...requiredQuery(ctx, t.op), ...(t.where === 'query' ? { [t.field]: canary.url } : {}) }
      const body =
        t.where === 'body'
          ? { ...(exampleBody(ctx, t.op) ?? {}), [t.field]: canary.url }
          : exampleBody(ctx, t.op)
      probes++
      const res = await ctx.send(user, { method: t.op.method, path, query, ...(body ? { json: body } : {}) })
      const hit = await canary.wasHit(WAIT_MS)
      if (t.op.method === 'POST') {
        const created = findResources(ctx.operations).find((r) => r.create === t.op)
        await deleteCreated(ctx, user, res, created?.delete)
      }
      if (!hit) continue
      done.add(key)
      findings.push(
        finding(this, {
          operation: opOf(t.op),
          ...(user ? { identity: user } : {}),
          summary: `The API fetched the URL given in ${t.where === 'body' ? 'the body field' : 'the query parameter'} "${t.field}" of ${t.op.method} ${t.op.path}: the scanner's canary on 127.0.0.1 received the request, so clients can make the server call loopback and internal addresses.`,
          evidence: [
            {
              note: `"${t.field}" = canary URL on 127.0.0.1 → the canary was requested by the target`,
              exchanges: [res.exchange],
            },
          ],
        }),
      )
    }
    return findings
  },
}
