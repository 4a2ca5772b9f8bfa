/**
 * API5 BFLA: an ordinary user calls operations meant for admins (tag `admin`,
 * `x-portcullis-roles` without any of the user's roles, `/admin` or `/internal` paths) and
 * succeeds. In safe mode a write is only sent when it changes nothing: the target is the
 * caller's own object and every body property is set to its current value; deletes are only sent
 * for objects the scanner created.
 */
import type { Operation } from '../../openapi/index.js'
import { isAdminOperation, requiredRoles } from '../resources.js'
import { generateValue, isObject, requestBody } from '../schema-tools.js'
import type { Check, Finding, IdentityInfo } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, ok } from './common.js'
import { profileOf, requestFor } from './targets.js'

function meantForOthers(op: Operation, who: IdentityInfo): boolean {
  const roles = requiredRoles(op)
  if (roles && roles.length > 0) return !roles.some((r) => who.roles.includes(r))
  return isAdminOperation(op)
}

export const bfla: Check = {
  id: 'bfla',
  title: 'Broken function level authorization: a user can call an admin operation',
  owasp: 'API5:2023',
  severity: 'high',
  description:
    'Finds operations meant for other roles (tag `admin`, `x-portcullis-roles` without the user’s roles, `/admin`, `/internal` or `/manage` paths) and calls each as every ordinary user. A 2xx answer is a finding. In safe mode writes are sent only when they change nothing (the caller’s own object, every body property set to its current value) and deletes only for objects the scanner created.',
  why: 'Admin functions are often protected only by being hard to find: the UI hides the button, but the endpoint only checks that the caller is logged in. Paths such as /admin are guessed in seconds, and one call promotes a user, reads every account or deletes data (OWASP API5).',
  fix: 'Check the caller’s role or permission on every function, on the server, deny by default, in one place (middleware or the gateway) rather than in each handler. Portcullis’s authorize policy enforces the operation’s `x-portcullis-roles`.',
  fixExample: `# OpenAPI: declare who may call it, and let the gateway enforce it
post:
  operationId: setUserRole
  x-portcullis-roles: [admin]`,
  async run(ctx) {
    const users = ctx.identities.filter((i) => !i.anonymous && !i.roles.includes('admin'))
    if (users.length === 0)
      throw new SkipCheck('needs a user identity (not admin, not anonymous) in auth.yaml')
    const findings: Finding[] = []
    let candidates = 0
    for (const op of ctx.operations) {
      for (const who of users) {
        if (!meantForOthers(op, who)) continue
        candidates++
        const req = requestFor(ctx, op, who.name)
        if (!req) {
          ctx.debug(`bfla: cannot fill ${op.method} ${op.path} for ${who.name}`)
          continue
        }
        let json: unknown
        const shape = requestBody(ctx.spec, op)
        if (op.method !== 'GET' && op.method !== 'HEAD') {
          const own = req.object ?? profileOf(ctx, who.name)
          if (op.method === 'DELETE') {
            if (ctx.safe && !req.object?.createdByScanner) {
              ctx.debug(`bfla: safe mode, not sending DELETE ${op.path}`)
              continue
            }
          } else if (shape) {
            const base = shape.example ?? generateValue(shape.schema)
            if (isObject(base)) {
              const current = isObject(own?.body) ? own.body : {}
              const body: Record<string, unknown> = {}
              let noOp = req.object !== undefined
              for (const [k, v] of Object.entries(base)) {
                if (Object.hasOwn(current, k)) body[k] = current[k]
                else {
                  body[k] = v
                  noOp = false
                }
              }
              if (ctx.safe && !noOp) {
                ctx.debug(`bfla: safe mode, ${op.method} ${op.path} would change data`)
                continue
              }
              json = body
            } else if (ctx.safe) continue
            else json = base
          } else if (ctx.safe && !req.object?.createdByScanner) {
            ctx.debug(`bfla: safe mode, not sending ${op.method} ${op.path} without a no-op body`)
            continue
          }
        }
        const res = await ctx.send(who.name, {
          method: op.method,
          path: req.path,
          query: req.query,
          ...(json !== undefined ? { json } : {}),
        })
        if (!ok(res)) continue
        const roles = requiredRoles(op)
        findings.push({
          ...baseFinding(bfla, op),
          identity: who.name,
          summary: `${who.name} (roles: ${who.roles.join(', ') || 'none'}) called ${op.method} ${op.path}, an operation for ${roles?.length ? `role ${roles.join('/')}` : 'admins'}, and got ${res.status}.${json !== undefined ? ' The scanner sent the caller’s own current values, so nothing changed.' : ''}`,
          evidence: [
            { note: `${who.name}'s token on an admin operation: ${res.status}`, exchanges: [res.exchange] },
          ],
        })
        break
      }
    }
    if (candidates === 0)
      throw new SkipCheck(
        'the spec marks no operation as admin-only (tags, x-portcullis-roles, /admin paths)',
      )
    return findings
  },
}
