/**
 * API1 BOLA: a second user reads, updates and deletes the first user's objects by swapping ids
 * in the path, in an id query parameter and in a body. A finding needs proof: the answer shows
 * the owner's object (same id and an owner-specific field), or, for a delete, the owner can no
 * longer read it. In safe mode only objects the scanner created are written or deleted.
 */
import type { Operation } from '../../openapi/index.js'
import { userIdentities } from '../engine.js'
import { findResources, idKeys, type Resource } from '../resources.js'
import { isObject, requestBody } from '../schema-tools.js'
import { createObject } from '../seed.js'
import type { Check, Finding, ScanContext, SeededObject } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, noOpWriteBody, ok, proveOwnerObject } from './common.js'

const OBJECTS_PER_OWNER = 2

async function ownerView(ctx: ScanContext, r: Resource, o: SeededObject): Promise<unknown> {
  if (r.get) {
    const res = await ctx.send(o.owner, { method: 'GET', path: o.path })
    if (ok(res) && isObject(res.json)) return res.json
  }
  if (o.selfPath) {
    const res = await ctx.send(o.owner, { method: 'GET', path: o.selfPath })
    if (ok(res) && isObject(res.json)) return res.json
  }
  return o.body
}

function idParamNames(type: string): RegExp {
  const keys = idKeys(type).map((k) => k.toLowerCase())
  const plural = keys.map((k) => `${k}s`)
  return new RegExp(`^(${[...keys, ...plural].map((k) => k.replace(/[^a-z0-9_]/g, '')).join('|')})$`, 'i')
}

export const bola: Check = {
  id: 'bola',
  title: 'Broken object level authorization: another user’s object is reachable by id',
  owasp: 'API1:2023',
  severity: 'high',
  destructive: true,
  description:
    'Seeds objects as each user, then has a second user request them by id: in the path (GET, PUT, PATCH, DELETE), in an id query parameter (`?id=`, `?ids=`) and in a request body. A finding is reported only with proof: the answer carries the owner’s object (same id and a field only the owner’s object has), or after a DELETE the owner can no longer read it. In safe mode only objects the scanner created are written or deleted.',
  why: 'Object ids are easy to guess or enumerate (sequential numbers, ids in URLs and logs). When the API only checks that the caller is logged in, and not that the object belongs to them, any user reads, changes or deletes every other user’s data: the most common and most damaging API flaw (OWASP API1).',
  fix: 'Check ownership (or an explicit sharing rule) on every access to an object, in the data layer query itself, for every verb and for ids from the path, the query and the body alike. Answer 404 for objects the caller may not see, so ids cannot be probed.',
  fixExample: `// Look the object up WITH the owner in the query, never by id alone
const order = await db.orders.findFirst({ where: { id: req.params.id, ownerId: req.user.id } })
if (!order) return res.status(404).json({ title: 'Not Found' })`,
  async run(ctx) {
    const users = userIdentities(ctx)
    if (users.length < 2)
      throw new SkipCheck('needs two user identities (not admin, not anonymous) in auth.yaml')
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

    for (let i = 0; i < users.length; i++) {
      const owner = (users[i] as { name: string }).name
      const attacker = (users[(i + 1) % users.length] as { name: string }).name
      for (const r of resources) {
        const mine = ctx.objects.filter((o) => o.owner === owner && o.type === r.type)
        const objs = [
          ...mine.filter((o) => o.createdByScanner),
          ...mine.filter((o) => !o.createdByScanner),
        ].slice(0, OBJECTS_PER_OWNER)
        if (objs.length === 0) continue
        const contrast = ctx.objects.find((o) => o.owner === attacker && o.type === r.type)?.body
        for (const o of objs) {
          const ref = await ownerView(ctx, r, o)
          if (!isObject(ref)) continue
          const mayWrite = o.createdByScanner || !ctx.safe

          // Path: GET
          if (r.get) {
            const res = await ctx.send(attacker, { method: 'GET', path: o.path })
            const proof = ok(res) ? proveOwnerObject(res.json, o.id, r.type, ref, contrast) : undefined
            if (proof) {
              report(r.get, attacker, {
                summary: `${attacker} read ${owner}'s ${r.type} object ${o.id} by putting its id in the path: the answer is ${owner}'s object (same id, same ${proof.join(', ')}).`,
                evidence: [
                  {
                    note: `${attacker}'s token, ${owner}'s ${r.type} id ${o.id}: ${res.status} with ${owner}'s data`,
                    exchanges: [res.exchange],
                  },
                ],
              })
            }
          }
          // Path: PUT / PATCH with the owner's current values (a write that changes nothing).
          for (const op of [r.put, r.patch]) {
            if (!op || !mayWrite) continue
            const body = noOpWriteBody(ctx, op, ref, op.method === 'PATCH')
            if (body === undefined && op.requestBody?.required) continue
            const res = await ctx.send(attacker, {
              method: op.method,
              path: o.path,
              ...(body !== undefined ? { json: body } : {}),
            })
            if (!ok(res)) continue
            let proof = proveOwnerObject(res.json, o.id, r.type, ref, contrast)
            const exchanges = [res.exchange]
            if (!proof && (res.json === undefined || res.text === '')) {
              // No body: the 2xx alone is the write; show the owner's object is still theirs.
              const after = await ctx.send(owner, { method: 'GET', path: o.path })
              if (ok(after) && proveOwnerObject(after.json, o.id, r.type, ref, contrast)) {
                proof = ['(write accepted)']
                exchanges.push(after.exchange)
              }
            }
            if (proof) {
              report(op, attacker, {
                severity: 'critical',
                summary: `${attacker} wrote to ${owner}'s ${r.type} object ${o.id} with ${op.method} (the scanner sent the object's own values, so nothing changed); the API accepted it and answered with ${owner}'s object.`,
                evidence: [
                  {
                    note: `${attacker}'s token, ${op.method} on ${owner}'s ${r.type} ${o.id}: ${res.status}`,
                    exchanges,
                  },
                ],
              })
            }
          }
          // Query: ?id= / ?ids= / ?orderId= on GET operations without path parameters.
          const pattern = idParamNames(r.type)
          for (const op of ctx.operations) {
            if (op.method !== 'GET' || op.path.includes('{')) continue
            const param = op.parameters.find((p) => p.in === 'query' && pattern.test(p.name))
            if (!param) continue
            const res = await ctx.send(attacker, {
              method: 'GET',
              path: op.path,
              query: { [param.name]: o.id },
            })
            const proof = ok(res) ? proveOwnerObject(res.json, o.id, r.type, ref, contrast) : undefined
            if (proof) {
              report(op, attacker, {
                summary: `${attacker} read ${owner}'s ${r.type} object ${o.id} by passing its id in the query parameter "${param.name}" (same id, same ${proof.join(', ')}).`,
                evidence: [
                  {
                    note: `${attacker}'s token, ?${param.name}=${o.id}: ${owner}'s object in the answer`,
                    exchanges: [res.exchange],
                  },
                ],
              })
            }
          }
          // Body: operations that take the id in a JSON body field (read-like POSTs only in safe mode).
          for (const op of ctx.operations) {
            if (op.method !== 'POST' || op.path.includes('{') || op === r.create) continue
            const shape = requestBody(ctx.spec, op)
            const props =
              shape?.schema && isObject(shape.schema.properties) ? Object.keys(shape.schema.properties) : []
            const field = props.find((p) => p !== 'id' && pattern.test(p))
            if (!field) continue
            if (
              ctx.safe &&
              !/(lookup|search|get|read|find|query|fetch|view|export|download)/i.test(
                `${op.path} ${op.operationId ?? ''}`,
              )
            )
              continue
            const res = await ctx.send(attacker, {
              method: 'POST',
              path: op.path,
              json: { [field]: /^\d+$/.test(o.id) ? Number(o.id) : o.id },
            })
            const proof = ok(res) ? proveOwnerObject(res.json, o.id, r.type, ref, contrast) : undefined
            if (proof) {
              report(op, attacker, {
                summary: `${attacker} read ${owner}'s ${r.type} object ${o.id} by putting its id in the body field "${field}" (same id, same ${proof.join(', ')}).`,
                evidence: [
                  {
                    note: `${attacker}'s token, {"${field}": ${o.id}}: ${owner}'s object in the answer`,
                    exchanges: [res.exchange],
                  },
                ],
              })
            }
          }
        }
        // Path: DELETE on a fresh object the scanner creates for it (any object when --unsafe);
        // proof: the owner can no longer read it.
        if (r.delete && r.get) {
          const victim =
            (r.create ? await createObject(ctx, r, owner) : undefined) ?? (ctx.safe ? undefined : objs[0])
          if (victim) {
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
    }
    return findings
  },
}
