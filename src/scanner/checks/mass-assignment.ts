/**
 * API3 mass assignment: writes privileged or read-only properties (`role: admin`,
 * `isAdmin: true`, the schema's readOnly fields) to the caller's own profile and to objects the
 * scanner created, then reads the object back. A finding needs the value to have stuck. The
 * original value is written back afterwards.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources, idKeys, type Resource } from '../resources.js'
import { isObject, readOnlyProperties, responseSchema } from '../schema-tools.js'
import type { Check, Exchange, Finding, ScanContext, SeededObject } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, noOpWriteBody, ok } from './common.js'
import { firstUser } from './targets.js'

const PRIVILEGED: Record<string, unknown> = { role: 'admin', isAdmin: true }
const MAX_PROPS = 8

function changed(v: unknown): unknown {
  if (typeof v === 'number') return v + 1000
  if (typeof v === 'string') return `${v}-portcullis`
  if (typeof v === 'boolean') return !v
  return undefined
}

interface Target {
  op: Operation
  object: SeededObject
  /** Where the object is read back. */
  readPath: string
  resource: Resource
}

async function readBack(
  ctx: ScanContext,
  who: string,
  path: string,
): Promise<{ body: unknown; exchange: Exchange } | undefined> {
  const res = await ctx.send(who, { method: 'GET', path })
  return ok(res) && isObject(res.json) ? { body: res.json, exchange: res.exchange } : undefined
}

export const massAssignment: Check = {
  id: 'mass-assignment',
  title: 'Mass assignment: privileged or read-only properties can be written',
  owasp: 'API3:2023',
  severity: 'high',
  destructive: true,
  description:
    'Sends PATCH/PUT requests for the caller’s own profile (`…/me`) and for objects the scanner created, each adding one property the caller must not set: `role: "admin"`, `isAdmin: true`, or a property the response schema marks `readOnly`. The object is then read back; a finding needs the value to have stuck. The scanner writes the original value back afterwards.',
  why: 'Frameworks that bind a request body straight onto a model let a user set any field of it: their own role, an account balance, the owner of an object. One PATCH turns an ordinary user into an admin (OWASP API3).',
  fix: 'Bind only an explicit allow-list of writable properties per operation, and reject (400) or drop every other property. Describe the writable properties in the request schema with `additionalProperties: false` and validate requests against it, for example with Portcullis’s openapi-validation or property-filter policy.',
  fixExample: `// Copy only what a user may change
const { displayName, email } = req.body
await db.users.update({ where: { id: req.user.id }, data: { displayName, email } })`,
  async run(ctx) {
    const who = firstUser(ctx)
    if (!who) throw new SkipCheck('needs a user identity in auth.yaml')
    const targets: Target[] = []
    for (const r of findResources(ctx.operations)) {
      const profile = ctx.objects.find((o) => o.owner === who && o.type === r.type && o.profile)
      if (profile && r.meWrite && r.me) {
        for (const op of r.meWrite) targets.push({ op, object: profile, readPath: r.me.path, resource: r })
      }
      const own = ctx.objects.find(
        (o) => o.owner === who && o.type === r.type && (o.createdByScanner || (!ctx.safe && !o.profile)),
      )
      if (own && r.get) {
        for (const op of [r.patch, r.put])
          if (op) targets.push({ op, object: own, readPath: own.path, resource: r })
      }
    }
    if (targets.length === 0)
      throw new SkipCheck('no own profile or scanner-created object with a PATCH/PUT operation')
    const findings: Finding[] = []
    for (const t of targets) {
      const before = await readBack(ctx, who, t.readPath)
      if (!before) continue
      const original = before.body as Record<string, unknown>
      const getOp = t.resource.me && t.readPath === t.resource.me.path ? t.resource.me : t.resource.get
      const schema = getOp ? responseSchema(ctx.spec, getOp, 200) : undefined
      const ids = new Set(idKeys(t.resource.type))
      const candidates: [string, unknown][] = []
      for (const [k, v] of Object.entries(PRIVILEGED)) if (original[k] !== v) candidates.push([k, v])
      for (const k of schema ? readOnlyProperties(schema) : []) {
        if (ids.has(k) || k in PRIVILEGED || /owner/i.test(k)) continue
        const v = changed(original[k])
        if (v !== undefined) candidates.push([k, v])
      }
      const stuck: { prop: string; exchanges: Exchange[] }[] = []
      for (const [prop, value] of candidates.slice(0, MAX_PROPS)) {
        const path = t.op.path === t.readPath ? t.readPath : t.object.path
        const base = noOpWriteBody(ctx, t.op, original, t.op.method === 'PATCH')
        const body = { ...(isObject(base) ? base : {}), [prop]: value }
        const res = await ctx.send(who, { method: t.op.method, path, json: body })
        if (!ok(res)) continue
        const after = await readBack(ctx, who, t.readPath)
        const now = after ? (after.body as Record<string, unknown>)[prop] : undefined
        if (
          after &&
          JSON.stringify(now) === JSON.stringify(value) &&
          JSON.stringify(original[prop]) !== JSON.stringify(value)
        ) {
          stuck.push({ prop, exchanges: [res.exchange, after.exchange] })
        }
        if (after && JSON.stringify(now) !== JSON.stringify(original[prop])) {
          // Restore: the original value (false for a flag that was not there).
          const restore =
            original[prop] === undefined ? (typeof value === 'boolean' ? false : null) : original[prop]
          const back = await ctx.send(who, {
            method: t.op.method,
            path,
            json: { ...(isObject(base) ? base : {}), [prop]: restore },
          })
          ctx.debug(`mass-assignment: restored ${prop} on ${t.readPath} → ${back.status}`)
        }
      }
      if (stuck.length === 0) continue
      const privileged = stuck.some((s) => s.prop in PRIVILEGED)
      findings.push({
        ...baseFinding(massAssignment, t.op),
        severity: privileged ? 'high' : 'medium',
        identity: who,
        summary: `${t.op.method} ${t.op.path} lets ${who} set ${stuck.map((s) => `"${s.prop}"`).join(', ')} on ${t.object.profile ? 'their own profile' : `their ${t.resource.type} object ${t.object.id}`}: reading it back shows the new value${stuck.length > 1 ? 's' : ''}. (The scanner wrote the original values back.)`,
        evidence: stuck.map((s) => ({
          note: `${who} writes "${s.prop}", then reads the object back`,
          exchanges: s.exchanges,
        })),
      })
    }
    return findings
  },
}
