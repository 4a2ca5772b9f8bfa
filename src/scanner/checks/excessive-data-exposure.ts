/**
 * API3 excessive data exposure: reads every GET operation it can fill (as an ordinary user, on
 * objects that user owns) and compares the JSON answer with the response schema: properties the
 * schema does not declare, and sensitive-looking names (password, hash, ssn, token, secret, …).
 */
import type { Operation } from '../../openapi/index.js'
import { declaredProperties, isObject, responseSchema, type Schema, schemaType } from '../schema-tools.js'
import type { Check, Finding, ScanResponse } from '../types.js'
import { SkipCheck } from '../types.js'
import { baseFinding, ok } from './common.js'
import { fillOperation, sendAsReachable } from './targets.js'

const SENSITIVE =
  /pass(word|wd|phrase)?$|^pass|password|pwd|secret|token|ssn|social_?security|api_?key|private_?key|hash|salt|credit_?card|card_?number|cvv|pin_?code|otp/i
const MAX_OPS = 200
const MAX_WALK = 5000

export interface Exposure {
  /** JSON path of the field, e.g. `$.user.passwordHash` or `$[0].internalNotes`. */
  path: string
  undeclared: boolean
  sensitive: boolean
}

/** Walks an answer against its schema (undefined: no schema, only names are checked). */
export function findExposures(value: unknown, schema: Schema | undefined): Exposure[] {
  const out: Exposure[] = []
  let budget = MAX_WALK
  const walk = (v: unknown, s: Schema | undefined, path: string, depth: number) => {
    if (--budget < 0 || depth > 32) return
    if (Array.isArray(v)) {
      const items = s && isObject(s.items) ? (s.items as Schema) : undefined
      for (const [i, x] of v.slice(0, 50).entries()) walk(x, items, `${path}[${i}]`, depth + 1)
      return
    }
    if (!isObject(v)) return
    const decl = s && schemaType(s) !== 'array' ? declaredProperties(s) : undefined
    for (const [k, x] of Object.entries(v)) {
      const p = `${path}.${k}`
      const undeclared = decl !== undefined && !decl.names.has(k)
      const sensitive = SENSITIVE.test(k) && (typeof x === 'string' ? x !== '' : typeof x === 'number')
      if (undeclared || sensitive) out.push({ path: p, undeclared, sensitive })
      walk(x, decl?.props[k], p, depth + 1)
    }
  }
  walk(value, schema, '$', 0)
  // A path under arrays repeats per item: keep one per field shape.
  const seen = new Set<string>()
  return out.filter((e) => {
    const key = e.path.replace(/\[\d+\]/g, '[]')
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Login/token operations answer a token on purpose. */
function isTokenOperation(op: Operation): boolean {
  return /login|sign-?in|token|session|auth/i.test(`${op.path} ${op.operationId ?? ''}`)
}

export const excessiveDataExposure: Check = {
  id: 'excessive-data-exposure',
  title: 'Excessive data exposure: the answer carries fields the contract does not declare',
  owasp: 'API3:2023',
  severity: 'medium',
  description:
    'Calls every GET operation it can fill (as an ordinary user, on objects that user owns) and compares each JSON answer with the operation’s response schema: properties the schema does not declare are reported, and so are sensitive-looking names (password, hash, ssn, token, secret, api key, card numbers) anywhere in the answer. Undeclared sensitive fields are high, other undeclared fields medium, declared sensitive fields low.',
  why: 'APIs often serialize whole database records and leave the filtering to the client. Whatever the client does not show is still on the wire: password hashes, internal notes, other users’ personal data. Attackers read the raw answers, not the UI (OWASP API3).',
  fix: 'Build responses from an explicit allow-list of properties per operation (a DTO or a serializer), never from the stored record. Keep the response schema closed (`additionalProperties: false`) and validate or filter responses against it, for example with Portcullis’s property-filter policy.',
  fixExample: `// Pick the public fields explicitly
const toPublicUser = (u) => ({ id: u.id, username: u.username, displayName: u.displayName })
res.json(toPublicUser(user))`,
  async run(ctx) {
    const findings: Finding[] = []
    let tried = 0
    for (const op of ctx.operations) {
      if (op.method !== 'GET' || tried >= MAX_OPS) continue
      const anonymous = Array.isArray(op.security) && op.security.length === 0
      let got: { who: string | undefined; res: ScanResponse; path: string } | undefined
      if (anonymous) {
        const req = fillOperation(ctx, op, undefined)
        if (req)
          got = {
            who: undefined,
            path: req.path,
            res: await ctx.send(undefined, { method: 'GET', path: req.path, query: req.query }),
          }
      } else {
        let path = ''
        const r = await sendAsReachable(ctx, op, (who) => {
          const req = fillOperation(ctx, op, who, { strict: true }) ?? fillOperation(ctx, op, who)
          if (!req) return undefined
          path = req.path
          return { method: 'GET', path: req.path, query: req.query }
        })
        if (r) got = { who: r.who, res: r.res, path }
      }
      if (!got) {
        ctx.debug(`excessive-data-exposure: cannot fill ${op.method} ${op.path}`)
        continue
      }
      tried++
      const { res, who: caller } = got
      if (!ok(res) || res.json === undefined) continue
      const schema = responseSchema(ctx.spec, op, res.status)
      let exposures = findExposures(res.json, schema)
      if (isTokenOperation(op)) exposures = exposures.filter((e) => e.undeclared)
      if (exposures.length === 0) continue
      const bad = exposures.filter((e) => e.undeclared || e.sensitive)
      const sensitiveUndeclared = bad.filter((e) => e.sensitive && e.undeclared)
      const undeclared = bad.filter((e) => e.undeclared)
      const severity = sensitiveUndeclared.length > 0 ? 'high' : undeclared.length > 0 ? 'medium' : 'low'
      const parts: string[] = []
      if (sensitiveUndeclared.length > 0)
        parts.push(
          `sensitive fields the schema does not declare: ${sensitiveUndeclared.map((e) => e.path).join(', ')}`,
        )
      const plain = undeclared.filter((e) => !e.sensitive)
      if (plain.length > 0) parts.push(`undeclared fields: ${plain.map((e) => e.path).join(', ')}`)
      const declaredSensitive = bad.filter((e) => e.sensitive && !e.undeclared)
      if (declaredSensitive.length > 0)
        parts.push(`sensitive-looking declared fields: ${declaredSensitive.map((e) => e.path).join(', ')}`)
      findings.push({
        ...baseFinding(excessiveDataExposure, op),
        severity,
        ...(anonymous || !caller ? {} : { identity: caller }),
        summary: `${op.method} ${op.path} answers with ${parts.join('; ')}.`,
        evidence: [
          {
            note: `${res.status} answer to ${got.path}${schema ? '' : ' (no response schema: names only)'}`,
            exchanges: [res.exchange],
          },
        ],
      })
    }
    if (tried === 0)
      throw new SkipCheck('no GET operation could be called (no identity or no object to read)')
    return findings
  },
}
