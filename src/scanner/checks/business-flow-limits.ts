/**
 * API6 sensitive business flows: operations whose path or operationId names a sensitive flow
 * (sign-up, password reset, order, coupon, checkout, …) get a bounded burst of identical calls;
 * no 429 (and the calls succeeding) is a finding. In safe mode only POSTs that create objects the
 * scanner can delete again are tried, and every object created is deleted.
 */
import type { Operation } from '../../openapi/index.js'
import { findResources } from '../resources.js'
import { pointerGet } from '../schema-tools.js'
import { createdId, exampleBody, rememberCreated, withBody } from '../seed.js'
import type { Check, DeclaredFlow, Exchange, Finding, FlowStep, ScanContext, ScanResponse } from '../types.js'
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
    const declared = ctx.flows ?? []
    if (flows.length === 0 && declared.length === 0)
      throw new SkipCheck(
        'no sensitive business flow (sign-up, reset, order, coupon, checkout) in the spec, and no flow declared in auth.yaml',
      )
    const findings: Finding[] = []
    for (const flow of declared) {
      const f = await replayFlow(ctx, flow)
      if (f) findings.push(f)
    }
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
            ctx.send(who, { method: 'POST', path: op.path, ...withBody(ctx, op, body), retry429: false }),
          ),
        )
        for (const res of results) {
          statuses.push(res.status)
          if (r && ok(res)) {
            const id = createdId(r.type, res.json, res.headers.location, r)
            const path = id !== undefined ? rememberCreated(ctx, r, id, who) : undefined
            if (path) created.push(path)
          }
        }
        const okCount = results.filter(ok).length
        const limited = statuses.includes(429)
        const first = results[0]
        const last = results[results.length - 1]
        if (first) exchanges.push(first.exchange)
        if (last && last !== first) exchanges.push(last.exchange)
        const answered = statuses.every((st) => st !== 0)
        if (answered && !limited && okCount >= Math.ceil(BURST * 0.8)) {
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

/** `{{name}}` in a string (or in every string of a JSON value) replaced by a captured value; undefined when one is missing. */
function fill(value: unknown, vars: Record<string, string>): { value: unknown; missing: boolean } {
  let missing = false
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string')
      return v.replace(/\{\{([A-Za-z0-9_]+)\}\}/g, (_m, n: string) => {
        const x = vars[n]
        if (x === undefined) missing = true
        return x ?? ''
      })
    if (Array.isArray(v)) return v.map(walk)
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    return v
  }
  return { value: walk(value), missing }
}

async function step(
  ctx: ScanContext,
  flow: DeclaredFlow,
  s: FlowStep,
  vars: Record<string, string>,
): Promise<{ res?: ScanResponse; skipped: boolean }> {
  const path = fill(s.path, vars)
  const json = s.json === undefined ? undefined : fill(s.json, vars)
  const form = s.form === undefined ? undefined : fill(s.form, vars)
  if (path.missing || json?.missing || form?.missing) return { skipped: true }
  const res = await ctx.send(flow.identity, {
    method: s.method,
    path: path.value as string,
    ...(json ? { json: json.value } : {}),
    ...(form ? { form: form.value as Record<string, string> } : {}),
    ...(s.headers ? { headers: s.headers } : {}),
    retry429: false,
    declared: true,
  })
  for (const [name, pointer] of Object.entries(s.capture ?? {})) {
    const v = pointerGet(res.json, pointer)
    if (typeof v === 'string' || typeof v === 'number') vars[name] = String(v)
  }
  return { res, skipped: false }
}

/**
 * Replays a flow declared in auth.yaml `repeat` times (its cleanup after each run, whatever
 * happened). Every run succeeding, none refused with 429, is a finding: nothing limits how often
 * one user runs the whole flow.
 */
async function replayFlow(ctx: ScanContext, flow: DeclaredFlow): Promise<Finding | undefined> {
  const runs: { ok: boolean; statuses: number[]; last?: ScanResponse }[] = []
  let first: ScanResponse[] = []
  for (let i = 0; i < flow.repeat; i++) {
    const vars: Record<string, string> = {}
    const statuses: number[] = []
    const exchanges: ScanResponse[] = []
    let good = true
    let last: ScanResponse | undefined
    try {
      for (const s of flow.steps) {
        const r = await step(ctx, flow, s, vars)
        if (r.skipped || !r.res) {
          good = false
          break
        }
        statuses.push(r.res.status)
        exchanges.push(r.res)
        last = r.res
        const expected = s.expect ? s.expect.includes(r.res.status) : ok(r.res)
        if (!expected) {
          good = false
          break
        }
      }
    } finally {
      for (const c of flow.cleanup) await step(ctx, flow, c, vars)
    }
    if (i === 0) first = exchanges
    runs.push({ ok: good, statuses, ...(last ? { last } : {}) })
    if (!good) break
  }
  ctx.debug(`business-flow-limits: flow ${flow.name}: ${runs.map((r) => r.statuses.join('/')).join(' ')}`)
  if (runs.length < flow.repeat || !runs.every((r) => r.ok)) return undefined
  const lastStep = flow.steps[flow.steps.length - 1] as FlowStep
  const op = ctx.operations.find((o) => o.method === lastStep.method && templateMatch(o.path, lastStep.path))
  const last = runs[runs.length - 1]?.last
  return {
    ...baseFinding(businessFlowLimits, op),
    ...(op ? {} : { operation: { method: lastStep.method, path: lastStep.path } }),
    identity: flow.identity,
    summary: `The flow "${flow.name}" declared in auth.yaml (${flow.steps.map((s) => `${s.method} ${s.path}`).join(' → ')}) ran ${flow.repeat} times in a row as ${flow.identity}, every step succeeding and none refused with 429: nothing limits how often one user runs it.${flow.cleanup.length > 0 ? ' Its cleanup steps ran after each run.' : ''}`,
    evidence: [
      {
        note: `run 1 of ${flow.repeat}: ${runs[0]?.statuses.join(', ')}`,
        exchanges: first.map((r) => r.exchange),
      },
      ...(last
        ? [
            {
              note: `run ${flow.repeat}: ${runs[runs.length - 1]?.statuses.join(', ')}`,
              exchanges: [last.exchange],
            },
          ]
        : []),
    ],
  }
}

function templateMatch(template: string, path: string): boolean {
  const parts = template.split(/\{[^{}/]+\}/).map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^/]+')}$`).test(path.replace(/\{\{[^}]+\}\}/g, 'x'))
}
