/**
 * API1 BOLA: a second user reaches the first user's objects by swapping ids in the path (every
 * GET whose path parameters the owner's objects fill: items, nested lists, `/users/{self}`), in
 * id query parameters, and in body members (top level or nested), and writes and deletes them by
 * path. A finding needs proof: the attacker gets what the owner gets for the same request and
 * not what the attacker gets for their own (sameAsOwner), or, for a delete, the owner can no
 * longer read the object. In safe mode only objects the scanner created are written or deleted.
 */
import type { Operation } from '../../openapi/index.js'
import { userIdentities } from '../roles.js'
import {
  fillFrom,
  fillPath,
  findResources,
  idKeys,
  type Resource,
  templateParams,
  typeOf,
  unwrap,
} from '../resources.js'
import { flatten, isObject, requestBody } from '../schema-tools.js'
import { createObject } from '../seed.js'
import type { Check, Finding, ScanContext, ScanResponse, SeededObject } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, noOpWriteBody, ok, proveOwnerObject, sameAsOwner } from './common.js'
import { exampleOf, ownedObjects, typeOfIdParam } from './targets.js'

const FILLS_PER_OPERATION = 2
const READ_LIKE = /(lookup|search|get|read|find|query|fetch|view|export|download|show|detail|list)/i

function idParamNames(type: string): RegExp {
  const keys = idKeys(type).map((k) => k.toLowerCase())
  const plural = keys.map((k) => `${k}s`)
  return new RegExp(`^(${[...keys, ...plural].map((k) => k.replace(/[^a-z0-9_]/g, '')).join('|')})$`, 'i')
}

/** Id-like members of a JSON body schema, top level or one object deep: `["noteId"]`, `["order", "id"]`. */
function idMembers(schema: unknown, type: string): string[][] {
  if (!isObject(schema)) return []
  const pattern = idParamNames(type)
  const out: string[][] = []
  const props = flatten(schema).properties
  if (!isObject(props)) return out
  for (const [k, v] of Object.entries(props)) {
    if (k !== 'id' && pattern.test(k)) out.push([k])
    if (!isObject(v)) continue
    const inner = flatten(v).properties
    if (!isObject(inner)) continue
    const nestedType = typeOf(`/${k}`)
    for (const ik of Object.keys(inner)) {
      if (pattern.test(ik) || (ik === 'id' && nestedType !== undefined && pattern.test(`${nestedType}Id`)))
        out.push([k, ik])
    }
  }
  return out
}

function setMember(body: Record<string, unknown>, member: string[], value: unknown): Record<string, unknown> {
  const out = { ...body }
  if (member.length === 1) out[member[0] as string] = value
  else {
    const [outer, inner] = member as [string, string]
    out[outer] = { ...(isObject(out[outer]) ? out[outer] : {}), [inner]: value }
  }
  return out
}

/** Which of an owner's objects fill a GET's path (created ones first), at most a few distinct fills. */
function ownerFills(op: Operation, objects: readonly SeededObject[]): Record<string, string>[] {
  const out: Record<string, string>[] = []
  const seen = new Set<string>()
  const ordered = [
    ...objects.filter((o) => o.createdByScanner),
    ...objects.filter((o) => !o.createdByScanner),
  ]
  for (const first of ordered) {
    const v = fillFrom(op.path, [first, ...ordered])
    if (!v) continue
    const key = JSON.stringify(v)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(v)
    if (out.length >= FILLS_PER_OPERATION) break
  }
  return out
}

export const bola: Check = {
  id: 'bola',
  title: 'Broken object level authorization: another user’s object is reachable by id',
  owasp: 'API1:2023',
  severity: 'high',
  destructive: true,
  description:
    'Seeds objects as each user, then has a second user send the first user’s requests: every GET whose path the owner’s objects fill (items, nested lists such as `/users/{id}/addresses`, `/users/{username}`), id query parameters (`?accountId=`, `?ids=`), id members of read-like request bodies (nested ones too), and PUT, PATCH and DELETE by path. A finding needs proof: the second user gets what the owner gets for the same request and not what they get for their own objects, or after a DELETE the owner can no longer read the object. In safe mode only objects the scanner created are written or deleted.',
  why: 'Object ids are easy to guess or enumerate (sequential numbers, ids in URLs and logs). When the API only checks that the caller is logged in, and not that the object belongs to them, any user reads, changes or deletes every other user’s data: the most common and most damaging API flaw (OWASP API1).',
  fix: 'Check ownership (or an explicit sharing rule) on every access to an object, in the data layer query itself, for every verb and for ids from the path, the query and the body alike. Answer 404 for objects the caller may not see, so ids cannot be probed.',
  fixExample: `// Look the object up WITH the owner in the query, never by id alone
const order = await db.orders.findFirst({ where: { id: req.params.id, ownerId: req.user.id } })
if (!order) return res.status(404).json({ title: 'Not Found' })`,
  async run(ctx) {
    const users = userIdentities(ctx)
    if (users.length < 2)
      throw new SkipCheck('needs two ordinary user identities (not privileged, not anonymous) in auth.yaml')
    const resources = findResources(ctx.operations)
    const findings: Finding[] = []
    const reported = new Set<string>()
    const report = (
      op: Operation,
      attacker: string,
      f: Omit<Finding, 'checkId' | 'title' | 'owasp' | 'severity'> & { severity?: Finding['severity'] },
    ) => {
      const key = `${op.method} ${op.path} ${attacker}`
      if (reported.has(key)) return
      reported.add(key)
      findings.push({
        ...baseFinding(bola, op),
        ...f,
        identity: attacker,
        severity: f.severity ?? bola.severity,
      })
    }
    const typeOfOp = (op: Operation) => typeOf(op.path.replace(/\/\{[^}]+\}$/, '')) ?? 'item'

    for (let i = 0; i < users.length; i++) {
      const owner = (users[i] as { name: string }).name
      const attacker = (users[(i + 1) % users.length] as { name: string }).name
      const ownerObjs = ownedObjects(ctx, owner)
      const attackerObjs = ownedObjects(ctx, attacker)
      if (ownerObjs.length === 0) continue

      // 1. Reads by path: every GET whose parameters the owner's objects fill.
      for (const op of ctx.operations) {
        if (op.method !== 'GET' || templateParams(op.path).length === 0) continue
        if (op.parameters.some((p) => p.in === 'query' && p.required)) continue
        const type = typeOfOp(op)
        const mineFill = fillFrom(op.path, attackerObjs)
        const minePath = mineFill ? fillPath(op.path, mineFill) : undefined
        let contrast: ScanResponse | undefined
        for (const fill of ownerFills(op, ownerObjs)) {
          const path = fillPath(op.path, fill)
          if (!path || path === minePath) continue
          const asOwner = await ctx.send(owner, { method: 'GET', path })
          if (!ok(asOwner) || asOwner.json === undefined) continue
          const res = await ctx.send(attacker, { method: 'GET', path })
          if (!ok(res)) continue
          if (minePath && !contrast) contrast = await ctx.send(attacker, { method: 'GET', path: minePath })
          const param = /\{([^}]+)\}$/.exec(op.path)?.[1]
          const proof = sameAsOwner(
            res.json,
            asOwner.json,
            contrast && ok(contrast) ? contrast.json : undefined,
            type,
            owner,
            param,
          )
          if (!proof) {
            ctx.debug(`bola: ${attacker} on ${owner}'s ${path}: ${res.status}, not ${owner}'s data`)
            continue
          }
          report(op, attacker, {
            summary: `${attacker} read ${owner}'s data at ${path}: the answer is ${proof.replace("the owner's", `${owner}'s`).replace("the caller's", `${attacker}'s`)}.`,
            evidence: [
              { note: `${owner} reads ${path} (reference)`, exchanges: [asOwner.exchange] },
              {
                note: `${attacker}'s credentials on ${owner}'s ${path}: ${res.status} with ${owner}'s data`,
                exchanges: [res.exchange],
              },
              ...(contrast
                ? [{ note: `${attacker}'s own ${minePath}: different data`, exchanges: [contrast.exchange] }]
                : []),
            ],
          })
          break
        }
      }

      for (const r of resources) {
        const mine = ownerObjs.filter((o) => o.template === r.itemPath)
        const contrastObj = attackerObjs.find((o) => o.template === r.itemPath)?.body
        // 2. Writes by path (PUT/PATCH) with the object's own values (a write that changes nothing).
        for (const o of mine.filter((x) => x.createdByScanner || !ctx.safe).slice(0, 1)) {
          const ref =
            o.body ??
            (r.get ? unwrap((await ctx.send(owner, { method: 'GET', path: o.path })).json) : undefined)
          for (const op of [r.put, r.patch]) {
            if (!op || !isObject(ref)) continue
            const body = noOpWriteBody(ctx, op, ref, op.method === 'PATCH')
            if (body === undefined && op.requestBody?.required) continue
            const res = await ctx.send(attacker, {
              method: op.method,
              path: o.path,
              ...(body !== undefined ? { json: body } : {}),
            })
            if (!ok(res)) continue
            let proof = proveOwnerObject(res.json, o.id, r.type, ref, contrastObj, r.itemParam)
            const exchanges = [res.exchange]
            if (!proof && (res.json === undefined || res.text === '')) {
              // No body: the 2xx alone is the write; show the owner's object is still theirs.
              const after = await ctx.send(owner, { method: 'GET', path: o.path })
              if (ok(after) && proveOwnerObject(after.json, o.id, r.type, ref, contrastObj, r.itemParam)) {
                proof = ['(write accepted)']
                exchanges.push(after.exchange)
              }
            }
            if (proof) {
              report(op, attacker, {
                severity: 'critical',
                summary: `${attacker} wrote to ${owner}'s ${r.type} object ${o.id} with ${op.method} (the scanner sent the object's own values, so nothing changed); the API accepted it (${res.status}).`,
                evidence: [
                  {
                    note: `${attacker}'s credentials, ${op.method} on ${owner}'s ${r.type} ${o.id}: ${res.status}`,
                    exchanges,
                  },
                ],
              })
            }
          }
        }
        // 3. DELETE on a fresh object the scanner creates for it (any object when --unsafe);
        // proof: the owner can no longer read it.
        if (r.delete && r.get) {
          const victim =
            (r.create ? await createObject(ctx, r, owner) : undefined) ?? (ctx.safe ? undefined : mine[0])
          if (victim) {
            if (victim.createdByScanner) (ctx.objects as SeededObject[]).push(victim)
            const res = await ctx.send(attacker, { method: 'DELETE', path: victim.path })
            const after = await ctx.send(owner, { method: 'GET', path: victim.path })
            if (ok(res) && (after.status === 404 || after.status === 410)) {
              report(r.delete, attacker, {
                severity: 'critical',
                summary: `${attacker} deleted ${owner}'s ${r.type} object ${victim.id}: the DELETE answered ${res.status} and ${owner} now gets ${after.status} for it.`,
                evidence: [
                  {
                    note: `${attacker} deletes ${owner}'s ${r.type} ${victim.id} (created by the scanner for this test); ${owner} reads it afterwards`,
                    exchanges: [res.exchange, after.exchange],
                  },
                ],
              })
            } else if (victim.createdByScanner && ok(after)) {
              await ctx.send(owner, { method: 'DELETE', path: victim.path })
            }
          }
        }
      }

      // 4. Query parameters naming an object (`?accountId=`, `?ids=`) on GETs without path parameters.
      for (const op of ctx.operations) {
        if (op.method !== 'GET' || op.path.includes('{')) continue
        for (const param of op.parameters.filter((p) => p.in === 'query')) {
          // A generic `?id=`/`?ids=` names the collection's own type.
          const type = /^(ids?|uuids?|_id)$/i.test(param.name)
            ? resources.find((r) => r.collectionPath === op.path)?.type
            : (typeOfIdParam(ctx, param.name.replace(/s$/, '')) ?? typeOfIdParam(ctx, param.name))
          if (!type) continue
          const own =
            attackerObjs.find((o) => o.type === type && !o.createdByScanner) ??
            attackerObjs.find((o) => o.type === type)
          const others: Record<string, string> = {}
          for (const p of op.parameters)
            if (p.in === 'query' && p.required && p !== param)
              others[p.name] = String(exampleOf(ctx, p) ?? '1')
          const q = (id: string) => ({ ...others, [param.name]: id })
          let contrast: ScanResponse | undefined
          // Objects that existed before the scan first: they are the ones with data attached.
          const victims = [
            ...ownerObjs.filter((o) => o.type === type && !o.createdByScanner),
            ...ownerObjs.filter((o) => o.type === type && o.createdByScanner),
          ].slice(0, 3)
          for (const victim of victims) {
            const asOwner = await ctx.send(owner, { method: 'GET', path: op.path, query: q(victim.id) })
            if (!ok(asOwner)) continue
            const res = await ctx.send(attacker, { method: 'GET', path: op.path, query: q(victim.id) })
            if (!ok(res)) continue
            if (own && !contrast)
              contrast = await ctx.send(attacker, { method: 'GET', path: op.path, query: q(own.id) })
            const proof =
              sameAsOwner(
                res.json,
                asOwner.json,
                contrast && ok(contrast) ? contrast.json : undefined,
                type,
                owner,
              ) ??
              (proveOwnerObject(res.json, victim.id, type, victim.body, own?.body)
                ? `${owner}'s ${type} object ${victim.id}`
                : undefined)
            if (!proof) continue
            report(op, attacker, {
              summary: `${attacker} read ${owner}'s data by passing ${owner}'s ${type} id in the query parameter "${param.name}": the answer is ${proof.replace("the owner's", `${owner}'s`).replace("the caller's", `${attacker}'s`)}.`,
              evidence: [
                {
                  note: `${owner} with ?${param.name}=${victim.id} (reference)`,
                  exchanges: [asOwner.exchange],
                },
                {
                  note: `${attacker}'s credentials, ?${param.name}=${victim.id}: ${owner}'s data`,
                  exchanges: [res.exchange],
                },
                ...(contrast
                  ? [{ note: `${attacker} with their own ${type} id`, exchanges: [contrast.exchange] }]
                  : []),
              ],
            })
            break
          }
        }
      }

      // 5. Body members naming an object (read-like POSTs only in safe mode), top level or nested.
      for (const op of ctx.operations) {
        if (op.method !== 'POST' || op.path.includes('{')) continue
        if (resources.some((r) => r.create === op)) continue
        if (ctx.safe && !READ_LIKE.test(`${op.path} ${op.operationId ?? ''}`)) continue
        const schema = requestBody(ctx.spec, op)?.schema
        for (const r of resources) {
          const victim = ownerObjs.find((o) => o.template === r.itemPath && o.type === r.type)
          if (!victim) continue
          const member = idMembers(schema, r.type)[0]
          if (!member) continue
          const value = /^\d+$/.test(victim.id) ? Number(victim.id) : victim.id
          const body = setMember({}, member, value)
          const asOwner = await ctx.send(owner, { method: 'POST', path: op.path, json: body })
          const res = await ctx.send(attacker, { method: 'POST', path: op.path, json: body })
          if (!ok(res)) continue
          const own = attackerObjs.find((o) => o.template === r.itemPath)
          const proofFields = proveOwnerObject(
            res.json,
            victim.id,
            r.type,
            ok(asOwner) ? asOwner.json : victim.body,
            own?.body,
            r.itemParam,
          )
          if (!proofFields) continue
          report(op, attacker, {
            summary: `${attacker} read ${owner}'s ${r.type} object ${victim.id} by putting its id in the body member "${member.join('.')}" (same id, same ${proofFields.join(', ')}).`,
            evidence: [
              {
                note: `${attacker}'s credentials, {"${member.join('.')}": ${victim.id}}: ${owner}'s object in the answer`,
                exchanges: [res.exchange],
              },
            ],
          })
          break
        }
      }
    }
    return findings
  },
}

export type { Resource, ScanContext }
