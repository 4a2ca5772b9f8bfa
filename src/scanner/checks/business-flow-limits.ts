/**
 * API6 sensitive business flows: operations whose path or operationId names a sensitive flow
 * (sign-up, password reset, order, coupon, checkout, …) get a bounded burst of identical calls;
 * no 429 (and the calls succeeding) is a finding. In safe mode only POSTs that create objects the
 * scanner can delete again are tried, and every object created is deleted.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources, itemPathFor } from '../resources.js'
import { createdId, exampleBody } from '../seed.js'
import type { Check, Exchange, Finding } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, ok } from './common.js'
import { firstUser } from './targets.js'

export const BURST = 15

const SENSITIVE_FLOW =
  /sign-?up|register|registration|reset|forgot|recover|order|coupon|voucher|redeem|promo|checkout|purchase|payment|transfer|invite|booking|reserv/i

export function isSensitiveFlow(op: Operation): boolean {
  return op.method === 'POST' && SENSITIVE_FLOW.test(`${op.path} ${op.operationId ?? ''}`)
}

export const businessFlowLimits: Check = {
  id: 'business-flow-limits',
  title: 'Sensitive business flow without limits',
  owasp: 'API6:2023',
  severity: 'medium',
  destructive: true,
  description: `Finds POST operations for sensitive business flows (sign-up, password reset, orders, coupons, checkout, payments, transfers, invitations, bookings) by their path or operationId and sends a bounded burst of ${BURST} identical calls as one user. When no call gets 429 and most succeed, the flow has no limit. In safe mode only operations that create an object the scanner can delete again are tried, and every object created is deleted.`,
  why: 'Automation abuses flows that are harmless one at a time: bots buy up limited stock, create thousands of accounts, redeem a coupon again and again or flood a user with password reset mails. Without a limit per user, per account or per device, nothing stops them (OWASP API6).',
  fix: 'Put a quota on each sensitive flow, keyed by what the abuser cannot easily multiply (user, account, payment instrument), answer 429 with Retry-After beyond it, and add friction (CAPTCHA, device checks) where a flow is anonymous. With Portcullis, a rate-limit policy on the operation does the first part.',
  fixExample: `# portcullis.yaml: at most 10 orders per hour per session
routes:
  - name: orders
    match: { pathPrefix: /api/v2/orders }
    upstream: api
    policies:
      rate-limit:
        limits:
          - { name: orders, rate: 10, per: hour, key: [{ header: authorization }], methods: [POST] }`,
  async run(ctx) {
    const who = firstUser(ctx)
    if (!who) throw new SkipCheck('needs a user identity in auth.yaml')
    const resources = findResources(ctx.operations)
    const flows = ctx.operations.filter(isSensitiveFlow)
    if (flows.length === 0)
      throw new SkipCheck('no sensitive business flow (sign-up, reset, order, coupon, checkout) in the spec')
    const findings: Finding[] = []
    for (const op of flows) {
      const r = resources.find((x) => x.create === op)
      if (ctx.safe && !(r?.delete && r.get)) {
        ctx.debug(
          `business-flow-limits: safe mode, ${op.method} ${op.path} creates nothing the scanner can delete`,
        )
        continue
      }
      if (op.path.includes('{')) continue
      const body = exampleBody(ctx, op)
      const created: string[] = []
      const statuses: number[] = []
      const exchanges: Exchange[] = []
      try {
        const results = await Promise.all(
          Array.from({ length: BURST }, () =>
            ctx.send(who, { method: 'POST', path: op.path, ...(body !== undefined ? { json: body } : {}) }),
          ),
        )
        for (const res of results) {
          statuses.push(res.status)
          if (r && ok(res)) {
            const id = createdId(r.type, res.json, res.headers.location)
            if (id !== undefined) created.push(itemPathFor(r, id))
          }
        }
        const okCount = results.filter(ok).length
        const limited = statuses.includes(429)
        const first = results[0]
        const last = results[results.length - 1]
        if (first) exchanges.push(first.exchange)
        if (last && last !== first) exchanges.push(last.exchange)
        if (!limited && okCount >= Math.ceil(BURST * 0.8)) {
          findings.push({
            ...baseFinding(businessFlowLimits, op),
            identity: who,
            summary: `${BURST} calls to ${op.method} ${op.path} as ${who} in a burst: ${okCount} succeeded and none was refused with 429, so nothing limits how often one user runs this flow.${created.length > 0 ? ` The scanner deleted the ${created.length} objects it created.` : ''}`,
            evidence: [
              {
                note: `statuses of the burst: ${statuses.join(' ')} (first and last exchanges shown)`,
                exchanges,
              },
            ],
          })
        }
      } finally {
        await Promise.all(created.map((path) => ctx.send(who, { method: 'DELETE', path })))
      }
    }
    return findings
  },
}
