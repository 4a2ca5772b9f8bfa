/**
 * API3 mass assignment: privileged or read-only properties (`role: admin`, `isAdmin`/`admin:
 * true`, the schema's readOnly fields) written where the caller must not set them, then read back:
 * - updates (PATCH/PUT) of the caller's own profile and of objects the scanner created; in safe
 *   mode a profile only gets properties it already has, so the original value can be written back
 *   exactly (it is, after each probe);
 * - creates: an object created with those properties, read back, then deleted (safe mode: only
 *   where the scanner can delete it);
 * - sign-up: a throwaway account registered with them, logged in afresh (claims cached in tokens
 *   are re-read) and its own profile read; the account deletes itself at the end.
 * A finding needs the value to have stuck.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources, idKeys, type Resource, selfOperations, unwrap } from '../resources.js'
import { isObject, readOnlyProperties, responseSchema } from '../schema-tools.js'
import { tryCreate } from '../seed.js'
import type { Check, Exchange, Finding, ScanContext, SeededObject } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, noOpWriteBody, ok } from './common.js'
import { firstUser } from './targets.js'

/** Privileged properties and the value that would escalate. */
const PRIVILEGED: Record<string, unknown> = { role: 'admin', isAdmin: true, admin: true, is_admin: true }
const MAX_PROPS = 8

function changed(v: unknown): unknown {
  if (typeof v === 'number') return v + 1000
  if (typeof v === 'string') return `${v}-portcullis`
  if (typeof v === 'boolean') return !v
  return undefined
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
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
): Promise<{ body: Record<string, unknown>; exchange: Exchange } | undefined> {
  const res = await ctx.send(who, { method: 'GET', path })
  const body = unwrap(res.json)
  return ok(res) && isObject(body) ? { body, exchange: res.exchange } : undefined
}

/** The properties to try on an object: privileged ones, then readOnly ones of its schema. */
function candidates(
  original: Record<string, unknown>,
  schemaProps: readonly string[],
  type: string,
  onlyExisting: boolean,
): [string, unknown][] {
  const ids = new Set(idKeys(type))
  const out: [string, unknown][] = []
  for (const [k, v] of Object.entries(PRIVILEGED)) {
    if (onlyExisting && !Object.hasOwn(original, k)) continue
    if (Object.hasOwn(original, k) && typeof original[k] !== typeof v) continue
    if (!same(original[k], v)) out.push([k, v])
  }
  for (const k of schemaProps) {
    if (ids.has(k) || k in PRIVILEGED || /owner|^id$|_id$|Id$/.test(k)) continue
    if (onlyExisting && !Object.hasOwn(original, k)) continue
    const v = changed(original[k])
    if (v !== undefined) out.push([k, v])
  }
  return out.slice(0, MAX_PROPS)
}

export const massAssignment: Check = {
  id: 'mass-assignment',
  title: 'Mass assignment: privileged or read-only properties can be written',
  owasp: 'API3:2023',
  severity: 'high',
  destructive: true,
  description:
    'Adds properties the caller must not set (`role: "admin"`, `isAdmin`/`admin: true`, or a property the response schema marks `readOnly`) to updates of the caller’s own profile and of objects the scanner created, to creates (the object is read back, then deleted), and to a sign-up (a throwaway account, logged in afresh, reads its own profile; it deletes itself at the end). A finding needs the value to have stuck. In safe mode a profile only gets properties it already has, and the original value is written back after each probe.',
  why: 'Frameworks that bind a request body straight onto a model let a user set any field of it: their own role, an account balance, the owner of an object. One PATCH, or one sign-up, turns an ordinary user into an admin (OWASP API3).',
  fix: 'Bind only an explicit allow-list of writable properties per operation, and reject (400) or drop every other property. Describe the writable properties in the request schema with `additionalProperties: false` and validate requests against it, for example with Portcullis’s openapi-validation or property-filter policy.',
  fixExample: `// Copy only what a user may change
const { displayName, email } = req.body
await db.users.update({ where: { id: req.user.id }, data: { displayName, email } })`,
  async run(ctx) {
    const who = firstUser(ctx)
    if (!who) throw new SkipCheck('needs a user identity in auth.yaml')
    const findings: Finding[] = []
    let tried = 0
    const resources = findResources(ctx.operations)

    // 1. Updates of the own profile and of scanner-created objects.
    const targets: Target[] = []
    for (const r of resources) {
      const profile = ctx.objects.find((o) => o.owner === who && o.template === r.itemPath && o.profile)
      if (profile && r.meWrite && r.me) {
        for (const op of r.meWrite) targets.push({ op, object: profile, readPath: r.me.path, resource: r })
      }
      const own = ctx.objects.find(
        (o) =>
          o.owner === who && o.template === r.itemPath && (o.createdByScanner || (!ctx.safe && !o.profile)),
      )
      if (own && r.get)
        for (const op of [r.patch, r.put])
          if (op) targets.push({ op, object: own, readPath: own.path, resource: r })
    }
    for (const t of targets) {
      const before = await readBack(ctx, who, t.readPath)
      if (!before) continue
      tried++
      const original = before.body
      const getOp = t.resource.me && t.readPath === t.resource.me.path ? t.resource.me : t.resource.get
      const schema = getOp ? responseSchema(ctx.spec, getOp, 200) : undefined
      const props = schema ? readOnlyProperties(unwrapSchema(schema)) : []
      const onlyExisting = ctx.safe && !t.object.createdByScanner
      const stuck: { prop: string; exchanges: Exchange[] }[] = []
      const path = t.op.path === t.readPath ? t.readPath : t.object.path
      for (const [prop, value] of candidates(original, props, t.resource.type, onlyExisting)) {
        const base = noOpWriteBody(ctx, t.op, original, t.op.method === 'PATCH')
        const body = { ...(isObject(base) ? base : {}), [prop]: value }
        const res = await ctx.send(who, { method: t.op.method, path, json: body })
        if (!ok(res)) continue
        const after = await readBack(ctx, who, t.readPath)
        const now = after?.body[prop]
        if (after && same(now, value) && !same(original[prop], value))
          stuck.push({ prop, exchanges: [res.exchange, after.exchange] })
        if (after && !same(now, original[prop])) {
          // Restore: the original value (false for a flag that was not there, outside safe mode).
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
      findings.push(
        report(
          t.op,
          who,
          stuck,
          `${t.object.profile ? 'their own profile' : `their ${t.resource.type} object ${t.object.id}`}`,
          ' (The scanner wrote the original values back.)',
        ),
      )
    }

    // 2. Creates: the object is made with the properties, read back and deleted.
    for (const r of resources) {
      if (!r.create || !r.get || (ctx.safe && !r.delete)) continue
      const normal = ctx.objects.find(
        (o) => o.template === r.itemPath && o.createdByScanner && o.owner === who,
      )
      if (!isObject(normal?.body)) continue
      const schema = responseSchema(ctx.spec, r.get, 200)
      const props = schema ? readOnlyProperties(unwrapSchema(schema)) : []
      const extra: Record<string, unknown> = {}
      for (const [k, v] of candidates(normal.body as Record<string, unknown>, props, r.type, false))
        extra[k] = v
      if (Object.keys(extra).length === 0) continue
      tried++
      const made = await tryCreate(ctx, r, who, [], extra)
      if (!made.object) continue
      ;(ctx.objects as SeededObject[]).push(made.object)
      const back = await readBack(ctx, who, made.object.path)
      const stuckProps = back
        ? Object.entries(extra).filter(
            ([k, v]) => same(back.body[k], v) && !same((normal.body as Record<string, unknown>)[k], v),
          )
        : []
      if (r.delete) await ctx.send(who, { method: 'DELETE', path: made.object.path })
      if (!back || stuckProps.length === 0 || !made.exchange) continue
      findings.push(
        report(
          r.create,
          who,
          stuckProps.map(([prop]) => ({ prop, exchanges: [made.exchange as Exchange, back.exchange] })),
          `a new ${r.type} object`,
          r.delete ? ' (The scanner deleted the object.)' : '',
        ),
      )
    }

    // 3. Sign-up: a throwaway account registered with privileged properties reads its own profile.
    const me = selfOperations(ctx.operations)[0]
    if (ctx.throwaway && me) {
      const schema = responseSchema(ctx.spec, me, 200)
      const props = schema ? readOnlyProperties(unwrapSchema(schema)) : []
      const extra: Record<string, unknown> = { ...PRIVILEGED }
      for (const k of props)
        if (/admin|role|verified|premium|tier|credit|balance|points|plan/i.test(k) && !(k in extra))
          extra[k] = k.match(/admin|verified|premium/i) ? true : 1000
      const account = await ctx.throwaway({ extra })
      if (account) {
        tried++
        const profile = await readBack(ctx, account.identity, me.path)
        const stuckProps = profile ? Object.entries(extra).filter(([k, v]) => same(profile.body[k], v)) : []
        if (profile && stuckProps.length > 0) {
          const op = ctx.operations.find(
            (o) => o.method === account.operation.method && o.path === account.operation.path,
          )
          if (op)
            findings.push(
              report(
                op,
                account.identity,
                stuckProps.map(([prop]) => ({ prop, exchanges: [...account.exchanges, profile.exchange] })),
                'a new account (registered by the scanner, logged in afresh)',
                ' (The account is deleted at the end of the scan.)',
              ),
            )
        }
      }
    }
    if (tried === 0)
      throw new SkipCheck(
        'no own profile, scanner-created object or sign-up to write privileged properties to',
      )
    return findings
  },
}

function report(
  op: Operation,
  who: string,
  stuck: { prop: string; exchanges: Exchange[] }[],
  what: string,
  tail: string,
): Finding {
  const privileged = stuck.some((s) => s.prop in PRIVILEGED)
  return {
    ...baseFinding(massAssignment, op),
    severity: privileged ? 'high' : 'medium',
    identity: who,
    summary: `${op.method} ${op.path} lets ${who.replace(/^throwaway-.*/, 'a new account')} set ${stuck.map((s) => `"${s.prop}"`).join(', ')} on ${what}: reading it back shows the new value${stuck.length > 1 ? 's' : ''}.${tail}`,
    evidence: stuck
      .slice(0, 4)
      .map((s) => ({ note: `"${s.prop}" written, then read back`, exchanges: s.exchanges })),
  }
}

/** The object schema inside a `{data: …}` or one-property wrapper. */
function unwrapSchema(schema: Record<string, unknown>): Record<string, unknown> {
  let s = schema
  for (let i = 0; i < 2; i++) {
    const props = isObject(s.properties) ? s.properties : undefined
    if (!props) return s
    const keys = Object.keys(props).filter((k) => !/^(meta|links|_links|status|success|message)$/.test(k))
    const inner = keys.length === 1 ? props[keys[0] as string] : undefined
    if (!isObject(inner) || !isObject(inner.properties)) return s
    s = inner
  }
  return s
}
