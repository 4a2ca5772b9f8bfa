/**
 * API4: resource exhaustion by a pathological input (ReDoS). String inputs the server likely
 * checks with a regular expression (a `pattern` or `format` in the spec, or names such as email,
 * url, phone, search) get a short control value and then longer "aaaa…!" values; when the answer
 * time explodes with the length (seconds against the control's milliseconds, each step several
 * times slower than the one before) or the request hangs, and the short control answers fast
 * again once the target recovered, that is the finding. The scan then backs off: it waits for
 * the target and sends no further pathological input.
 */
import type { Operation } from '../../openapi/index.js'
import { loginOperation } from '../logins.js'
import { flatten, isObject, requestBody, resolveSchema, type Schema } from '../schema-tools.js'
import { withBody } from '../seed.js'
import type { Check, Finding, ScanContext, ScanRequest, ScanResponse } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, opOf } from './probe.js'
import { fillOperation, firstUser } from './targets.js'

/** Lengths of the "aaaa…!" values: short steps first (exponential backtracking), then long strings (polynomial). */
export const REDOS_LENGTHS = [16, 20, 24, 27, 30, 33, 1000, 10_000, 50_000]
const CONTROL_LENGTH = 8
/** An answer this slow, and 10 times the control, counts as an explosion. */
export const SLOW_MS = 1500
const PROBE_TIMEOUT_MS = 8000
const MAX_TARGETS = 6
const NAME =
  /(^|_|-)(e-?mail|mail|url|uri|link|phone|tel|mobile|username|user_?name|handle|slug|search|query|q|filter|zip|postal|postcode|domain|host|hostname|ip|version|date|color|colour|pattern|regex)($|_|-)|Email$|Url$|Phone$|Name$/i

interface Target {
  op: Operation
  where: 'query' | 'body'
  name: string
  build(value: string): ScanRequest
  why: string
}

function likelyRegexChecked(name: string, schema: Schema | undefined): string | undefined {
  const s = schema ? flatten(schema) : undefined
  if (s && (s.enum !== undefined || s.const !== undefined)) return undefined
  if (
    s &&
    s.type !== undefined &&
    s.type !== 'string' &&
    !(Array.isArray(s.type) && s.type.includes('string'))
  )
    return undefined
  if (typeof s?.pattern === 'string') return `its pattern ${String(s.pattern).slice(0, 60)}`
  if (typeof s?.format === 'string' && !['password', 'binary', 'byte'].includes(s.format))
    return `format ${s.format}`
  if (NAME.test(name)) return `its name "${name}"`
  return undefined
}

function targets(ctx: ScanContext, user: string | undefined): Target[] {
  const out: Target[] = []
  const logins = new Set((ctx.logins ?? []).map((l) => loginOperation(ctx.operations, l)).filter(Boolean))
  for (const op of ctx.operations) {
    if (logins.has(op)) continue
    const filled = fillOperation(ctx, op, user)
    if (!filled) continue
    if (op.method === 'GET') {
      for (const p of op.parameters) {
        if (p.in !== 'query') continue
        const why = likelyRegexChecked(p.name, resolveSchema(ctx.spec, p.schema, p.schemaLocation) as Schema)
        if (!why) continue
        out.push({
          op,
          where: 'query',
          name: p.name,
          why,
          build: (v) => ({ method: 'GET', path: filled.path, query: { ...filled.query, [p.name]: v } }),
        })
      }
      continue
    }
    if (op.method !== 'POST' && op.method !== 'PUT' && op.method !== 'PATCH') continue
    // Safe mode: updates only of objects the scanner created.
    if (ctx.safe && op.method !== 'POST' && !filled.object?.createdByScanner) continue
    const shape = requestBody(ctx.spec, op)
    const props = shape?.schema ? flatten(shape.schema).properties : undefined
    if (!isObject(props)) continue
    const base = shape?.example ?? {}
    for (const [name, p] of Object.entries(props)) {
      if (!isObject(p) || p.readOnly === true) continue
      const why = likelyRegexChecked(name, p as Schema)
      // Safe mode: a POST only where the spec says the value is validated (junk is refused, nothing created).
      if (!why || (ctx.safe && op.method === 'POST' && !/pattern|format/.test(why))) continue
      out.push({
        op,
        where: 'body',
        name,
        why,
        build: (v) => ({
          method: op.method,
          path: filled.path,
          query: filled.query,
          ...withBody(ctx, op, { ...(isObject(base) ? base : {}), [name]: v }),
        }),
      })
    }
  }
  // Declared patterns first, then formats, then names.
  const rank = (t: Target) => (t.why.startsWith('its pattern') ? 0 : t.why.startsWith('format') ? 1 : 2)
  return out.sort((a, b) => rank(a) - rank(b)).slice(0, MAX_TARGETS)
}

const value = (n: number) => `${'a'.repeat(n)}!`

export const redos: Check = {
  id: 'redos',
  title: 'Resource exhaustion by a pathological input (ReDoS)',
  owasp: 'API4:2023',
  severity: 'high',
  timingEvidence: true,
  description:
    'Sends a short control value and then longer "aaaa…!" values to string inputs the server likely checks with a regular expression (a pattern or format in the spec, or names like email, url, phone, search), and times the answers. A finding needs the time to explode with the length (seconds against milliseconds, several times slower at each step) or the request to hang, and the short control to answer fast again afterwards. The scan then waits for the target and sends no further pathological input.',
  why: 'A regular expression with nested or overlapping quantifiers (`^(\\w+\\s?)*$`, `([a-z0-9]+)*@…`) backtracks exponentially on a near-match: one request with 30 characters occupies a CPU for seconds or minutes, and in Node.js it blocks every other request of the process. A handful of requests take the API down.',
  fix: 'Use regular expressions without nested quantifiers, or a linear-time engine (RE2, re2js), bound the input length before matching, and validate formats with a maintained library.',
  fixExample:
    "import { RE2JS } from 're2js'\nconst EMAIL = RE2JS.compile('^[^@\\\\s]{1,64}@[^@\\\\s]{1,255}$')\nif (input.length > 254 || !EMAIL.matches(input)) return res.status(400).end()",
  async run(ctx) {
    const user = firstUser(ctx)
    const list = targets(ctx, user)
    if (list.length === 0)
      throw new SkipCheck('no string input that is likely checked with a regular expression')
    const findings: Finding[] = []
    const probeTimeout = Math.min(PROBE_TIMEOUT_MS, ctx.options?.timeoutMs ?? PROBE_TIMEOUT_MS)
    for (const t of list) {
      const send = (v: string, timeoutMs?: number) =>
        ctx.send(user, {
          ...t.build(v),
          retry429: false,
          relogin: false,
          expectSlow: true,
          ...(timeoutMs ? { timeoutMs } : {}),
        })
      const c1 = await send(value(CONTROL_LENGTH))
      const c2 = await send(value(CONTROL_LENGTH))
      if (c1.status === 0 || c2.status === 0 || c1.blocked) continue
      const control = Math.max(c1.durationMs, c2.durationMs, 1)
      let prev: ScanResponse = c2
      let hit: ScanResponse | undefined
      let hitLength = 0
      for (const n of REDOS_LENGTHS) {
        const res = await send(value(n), probeTimeout)
        if (res.blocked) break
        hitLength = n
        if (res.status === 0) {
          hit = res
          break
        }
        if (
          res.durationMs >= SLOW_MS &&
          res.durationMs >= 10 * control &&
          res.durationMs >= 2 * Math.max(prev.durationMs, 1)
        ) {
          hit = res
          break
        }
        prev = res
      }
      if (!hit) continue
      const first = hit
      const fast = (r: ScanResponse | undefined) =>
        r !== undefined && r.status !== 0 && r.durationMs <= Math.max(500, 5 * control)
      // Back off: wait until the target answers again; the short control must be fast again.
      const recovered = ctx.waitForTarget ? await ctx.waitForTarget(60_000) : true
      const after = recovered ? await send(value(CONTROL_LENGTH)) : undefined
      // Confirm (one slow answer may be the machine, not the input): the next length explodes
      // further (at least 1.5 times, or hangs); after a hang, or at the last length, the same
      // value hangs or is as slow again. Then the control is fast once more.
      let again: ScanResponse | undefined
      let final: ScanResponse | undefined
      let againLength = hitLength
      if (fast(after)) {
        const next = REDOS_LENGTHS[REDOS_LENGTHS.indexOf(hitLength) + 1]
        againLength = first.status !== 0 && next !== undefined ? next : hitLength
        again = await send(value(againLength), probeTimeout)
        const back = ctx.waitForTarget ? await ctx.waitForTarget(60_000) : true
        final = back ? await send(value(CONTROL_LENGTH)) : undefined
      }
      const confirmed =
        again !== undefined &&
        (again.status === 0 ||
          (again.durationMs >= SLOW_MS &&
            again.durationMs >= 10 * control &&
            again.durationMs >= (againLength === hitLength ? 0.5 : 1.5) * first.durationMs))
      const hang = hit.status === 0
      if (!after || !fast(after) || !again || !confirmed || !fast(final)) {
        ctx.note?.(
          `redos: ${t.op.method} ${t.op.path} "${t.name}" ${hang ? 'hung' : 'answered slowly'} once, but ${!fast(after) || !fast(final) ? 'the short control was not fast afterwards' : 'the value did not stay slow'}: no verdict, and no further pathological input sent`,
        )
        break
      }
      const done = final as ScanResponse
      const twice = again.status === 0 ? `no answer within ${probeTimeout} ms` : `${again.durationMs} ms`
      findings.push(
        finding(this, {
          operation: opOf(t.op),
          ...(user ? { identity: user } : {}),
          summary: `The ${t.where} ${t.where === 'query' ? 'parameter' : 'field'} "${t.name}" of ${t.op.method} ${t.op.path} (likely regex-checked: ${t.why}) ${hang ? `hung the target: no answer within ${probeTimeout} ms` : `took ${hit.durationMs} ms`} for ${hitLength} "a"s ending in "!" (${againLength === hitLength ? 'again' : `${againLength}`}: ${twice}), against ${control} ms for a short one and ${prev.durationMs} ms for the step before; the short control answered in ${(after as ScanResponse).durationMs} and ${done.durationMs} ms in between. A few such requests exhaust the server.`,
          evidence: [
            {
              note: `short control "${value(CONTROL_LENGTH)}": ${c2.status} in ${control} ms`,
              exchanges: [c2.exchange],
            },
            { note: `the step before: ${prev.status} in ${prev.durationMs} ms`, exchanges: [prev.exchange] },
            {
              note: hang
                ? `longer value: no answer within ${probeTimeout} ms`
                : `longer value: ${hit.status} in ${hit.durationMs} ms`,
              exchanges: [hit.exchange],
            },
            {
              note: `short control again, after the target recovered: ${(after as ScanResponse).status} in ${(after as ScanResponse).durationMs} ms`,
              exchanges: [(after as ScanResponse).exchange],
            },
            {
              note: `${againLength === hitLength ? 'the same value again' : `${againLength} characters`}: ${twice}`,
              exchanges: [again.exchange],
            },
            {
              note: `short control once more: ${done.status} in ${done.durationMs} ms`,
              exchanges: [done.exchange],
            },
          ],
        }),
      )
      // The scan backs off from the target: no further pathological input.
      break
    }
    return findings
  },
}
