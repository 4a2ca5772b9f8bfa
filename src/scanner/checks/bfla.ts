/**
 * API5 BFLA: ordinary users call operations meant for other roles and succeed. "Meant for other
 * roles": `x-portcullis-roles` without the user's roles, an admin tag or path, or (no marker at
 * all) a privileged function's name or description: freeze, audit, role changes, refunds,
 * "support desk", "staff only", … (resources.ts adminReason). The lowest-privilege identity goes
 * first. In safe mode a write is only sent on an object the scanner created for the caller, or
 * when it changes nothing (the caller's own object with its current values); deletes only on
 * objects the scanner created.
 */
import type { Operation } from '../../openapi/index.js'
import { byPrivilege } from '../roles.js'
import { adminReason, requiredRoles, unwrap } from '../resources.js'
import { generateValue, isObject, requestBody } from '../schema-tools.js'
import type { Check, Finding, IdentityInfo } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, ok } from './common.js'
import { fillOperation, profileOf } from './targets.js'

/** Why `who` should not be able to call `op`, or undefined. */
function meantForOthers(op: Operation, who: IdentityInfo): string | undefined {
  const roles = requiredRoles(op)
  if (roles && roles.length > 0)
    return roles.some((r) => who.roles.includes(r)) ? undefined : `x-portcullis-roles: ${roles.join(', ')}`
  if (who.rank >= 2) return undefined
  return adminReason(op)
}

export const bfla: Check = {
  id: 'bfla',
  title: 'Broken function level authorization: a user can call an admin operation',
  owasp: 'API5:2023',
  severity: 'high',
  description:
    'Finds operations meant for other roles, marked (`x-portcullis-roles` without the user’s roles, an `admin` tag, `/admin`, `/internal` or `/manage` paths) or not (a privileged function’s name or description: freeze, suspend, audit, role changes, refunds, “support desk”, “staff only”), and calls each as the ordinary users, lowest privilege first. A 2xx answer is a finding. In safe mode writes are sent only on objects the scanner created for the caller or when they change nothing (the caller’s own object, every body property set to its current value), and deletes only on objects the scanner created.',
  why: 'Admin functions are often protected only by being hard to find: the UI hides the button, but the endpoint only checks that the caller is logged in. Paths and names are guessed in seconds, and one call promotes a user, reads every account, freezes someone else’s account or deletes data (OWASP API5).',
  fix: 'Check the caller’s role or permission on every function, on the server, deny by default, in one place (middleware or the gateway) rather than in each handler. Portcullis’s authorize policy enforces the operation’s `x-portcullis-roles`.',
  fixExample: `# OpenAPI: declare who may call it, and let the gateway enforce it
post:
  operationId: setUserRole
  x-portcullis-roles: [admin]`,
  async run(ctx) {
    const users = byPrivilege(ctx).filter((i) => i.rank <= 1)
    if (users.length === 0)
      throw new SkipCheck('needs an ordinary user identity (not privileged, not anonymous) in auth.yaml')
    const findings: Finding[] = []
    let candidates = 0
    for (const op of ctx.operations) {
      for (const who of users) {
        const why = meantForOthers(op, who)
        if (!why) continue
        candidates++
        const req = fillOperation(ctx, op, who.name, { strict: op.method !== 'GET' })
        if (!req) {
          ctx.debug(`bfla: cannot fill ${op.method} ${op.path} for ${who.name}`)
          continue
        }
        const onCreated = req.object?.createdByScanner === true
        let json: unknown
        let noOp = false
        const shape = requestBody(ctx.spec, op)
        if (op.method === 'DELETE') {
          if (ctx.safe && !onCreated) {
            ctx.debug(`bfla: safe mode, not sending DELETE ${op.path}`)
            continue
          }
        } else if (op.method !== 'GET' && op.method !== 'HEAD') {
          const base = shape ? (shape.example ?? generateValue(shape.schema)) : undefined
          if (onCreated) json = base
          else if (isObject(base)) {
            const own = req.object ?? profileOf(ctx, who.name)
            const current = unwrap(own?.body)
            const cur = isObject(current) ? current : {}
            const body: Record<string, unknown> = {}
            noOp = req.object !== undefined
            for (const [k, v] of Object.entries(base)) {
              if (Object.hasOwn(cur, k)) body[k] = cur[k]
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
          } else if (ctx.safe) {
            ctx.debug(
              `bfla: safe mode, not sending ${op.method} ${op.path} (not on an object the scanner created)`,
            )
            continue
          } else json = base
        }
        const res = await ctx.send(who.name, {
          method: op.method,
          path: req.path,
          query: req.query,
          ...(json !== undefined ? { json } : {}),
        })
        if (!ok(res)) continue
        const roles = requiredRoles(op)
        const marked = roles !== undefined || !/in its (name|description)$/.test(why)
        findings.push({
          ...baseFinding(bfla, op),
          severity: marked ? 'high' : bfla.severity,
          identity: who.name,
          summary:
            `${who.name} (roles: ${who.roles.join(', ') || 'none'}) called ${op.method} ${op.path}, an operation for ${roles?.length ? `role ${roles.join('/')}` : 'admins or staff'} (${why}), and got ${res.status}.` +
            (noOp ? ' The scanner sent the caller’s own current values, so nothing changed.' : '') +
            (onCreated
              ? ` It was called on ${req.object?.type ?? 'an'} object ${req.object?.id ?? ''} the scanner created for the test.`
              : ''),
          evidence: [
            {
              note: `${who.name}'s credentials on an operation for other roles: ${res.status}`,
              exchanges: [res.exchange],
            },
          ],
        })
        break
      }
    }
    if (candidates === 0)
      throw new SkipCheck('no operation looks meant for admins or staff (markers, names or descriptions)')
    return findings
  },
}
