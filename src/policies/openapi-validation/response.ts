/**
 * Response validation against the matched operation: the status must be declared (exact, `2XX`
 * range, or `default`), the content type must be one the response lists, and a JSON body must
 * match its (closed) schema. Arrays longer than `maxItems` are validated on a sample so the cost
 * stays bounded; strip mode visits everything, since what it does not visit it cannot clean.
 */
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import type { CompiledOperation, CompiledResponse } from './compiled.js'
import { forgetJson, jsonOf } from '../../openapi/shared-json.js'
import { mediaTypeOf, pickMedia, schemaViolations, type Violation } from './request.js'

export interface ResponseResult {
  violations: Violation[]
  /** The re-serialized body when strip removed something. */
  body: Buffer | undefined
  /** Items left unvalidated by sampling. */
  skipped: number
  /**
   * The body was not checked against a schema: its status is not declared, or the spec gives the
   * response no `content` (a response described without content is "not described", not "must be
   * empty": specs leave it out). What the policy does with such a body depends on the mode and
   * the status class (see `responseVerdict`).
   */
  undescribed?: boolean
}

function declared(op: CompiledOperation, status: number): CompiledResponse | undefined {
  const s = String(status)
  return (
    op.responses.find((r) => r.status === s) ??
    op.responses.find((r) => r.status === `${s[0]}XX`) ??
    op.responses.find((r) => r.status === 'default')
  )
}

const v = (expected: string, pointer = ''): Violation => ({ kind: 'schema', in: 'body', pointer, expected })

export function validateResponse(
  op: CompiledOperation,
  head: ResponseHead,
  body: Buffer,
  strip: boolean,
  maxItems: number,
): ResponseResult {
  const none: ResponseResult = { violations: [], body: undefined, skipped: 0 }
  if (op.responses.length === 0) return none
  const resp = declared(op, head.status)
  if (!resp)
    return {
      ...none,
      violations: [v(`a declared status (not ${head.status})`)],
      undescribed: body.length > 0,
    }
  if (resp.media.length === 0) return body.length === 0 ? none : { ...none, undescribed: true }
  if (body.length === 0)
    return head.status === 204 || head.status === 304 ? none : { ...none, violations: [v('a response body')] }
  const ct = head.headers['content-type']
  const mt = mediaTypeOf(typeof ct === 'string' ? ct : undefined)
  const media = mt && mt.type !== '' ? pickMedia(resp.media, mt.type) : undefined
  if (!media) return { ...none, violations: [v(`Content-Type ${resp.media.map((m) => m.type).join(', ')}`)] }
  if (!media.json || !media.validate) return none
  const enc = head.headers['content-encoding']
  if (enc !== undefined && enc !== 'identity')
    return { ...none, violations: [v('an uncompressed body (cannot validate)')] }
  let value: unknown
  try {
    value = jsonOf(body)
  } catch {
    return { ...none, violations: [v('valid JSON')] }
  }
  const validate = media.validate
  if (strip) {
    if (validate(value)) return none
    // The parse is shared with the route's other policies: it is edited below.
    forgetJson(body)
    let removed = false
    for (const e of validate.errors ?? []) {
      if (e.keyword === 'false schema' && e.instancePath !== '') {
        // A writeOnly property (its schema compiled to `false` for responses): removed.
        const cut = e.instancePath.lastIndexOf('/')
        const parent = at(value, e.instancePath.slice(0, cut))
        const prop = e.instancePath
          .slice(cut + 1)
          .replace(/~1/g, '/')
          .replace(/~0/g, '~')
        if (parent && typeof parent === 'object' && !Array.isArray(parent) && Object.hasOwn(parent, prop)) {
          delete (parent as Record<string, unknown>)[prop]
          removed = true
        }
        continue
      }
      if (e.keyword !== 'additionalProperties' && e.keyword !== 'unevaluatedProperties') continue
      const parent = at(value, e.instancePath)
      const p = e.params as { additionalProperty?: string; unevaluatedProperty?: string }
      const prop = p.additionalProperty ?? p.unevaluatedProperty
      if (parent && typeof parent === 'object' && prop !== undefined && Object.hasOwn(parent, prop)) {
        delete (parent as Record<string, unknown>)[prop]
        removed = true
      }
    }
    const rest = validate(value) ? [] : schemaViolations('body', undefined, validate.errors)
    return { violations: rest, body: removed ? Buffer.from(JSON.stringify(value)) : undefined, skipped: 0 }
  }
  const samples = new Map<unknown[], number[]>()
  const counter = { skipped: 0 }
  const view = sample(value, maxItems, samples, counter, 0)
  if (validate(view)) return { ...none, skipped: counter.skipped }
  const violations = schemaViolations('body', undefined, validate.errors).map((x) => ({
    ...x,
    pointer: originalPointer(view, x.pointer, samples),
  }))
  return { violations, body: undefined, skipped: counter.skipped }
}

/** A view of `value` where every array longer than `max` is cut to a sample of `max` items. */
function sample(
  value: unknown,
  max: number,
  samples: Map<unknown[], number[]>,
  counter: { skipped: number },
  depth: number,
): unknown {
  if (value === null || typeof value !== 'object' || depth > 200) return value
  if (Array.isArray(value)) {
    if (value.length <= max) return value.map((x) => sample(x, max, samples, counter, depth + 1))
    const head = Math.ceil(max / 2)
    const idx: number[] = []
    for (let i = 0; i < head; i++) idx.push(i)
    const rest = max - head
    const span = value.length - head
    for (let k = 0; k < rest; k++) idx.push(head + Math.floor(((k + 1) * span) / (rest + 1)))
    counter.skipped += value.length - idx.length
    const out = idx.map((i) => sample(value[i], max, samples, counter, depth + 1))
    samples.set(out, idx)
    return out
  }
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(value)) {
    out[k] = sample((value as Record<string, unknown>)[k], max, samples, counter, depth + 1)
  }
  return out
}

function originalPointer(view: unknown, pointer: string, samples: Map<unknown[], number[]>): string {
  if (pointer === '' || samples.size === 0) return pointer
  let cur = view
  const out: string[] = []
  for (const tok of pointer.slice(1).split('/')) {
    let t = tok
    if (Array.isArray(cur)) {
      const idx = samples.get(cur)
      if (idx) t = String(idx[Number(tok)] ?? tok)
    }
    out.push(t)
    const key = tok.replace(/~1/g, '/').replace(/~0/g, '~')
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined
  }
  return `/${out.join('/')}`
}

function at(value: unknown, pointer: string): unknown {
  let cur = value
  if (pointer === '') return cur
  for (const raw of pointer.slice(1).split('/')) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined
    cur = (cur as Record<string, unknown>)[k]
  }
  return cur
}

/**
 * What a response validation result means for the client, by mode and status class
 * (docs/policies/openapi-validation.md has the table):
 * - `pass`: sent (with undeclared properties removed in strip mode);
 * - `log`: sent, the violations logged and recorded;
 * - `refuse`: replaced by 502 GW_ERR_UPSTREAM_RESPONSE_INVALID (the upstream's body never leaves).
 *
 * A 5xx body reaches the client only when the spec describes it and it matches (in block and strip
 * modes): an upstream's stack trace is exactly what a 5xx body the spec does not describe holds.
 * Strip repairs undeclared properties; what it cannot repair is refused for 2xx and 5xx, and
 * logged for 4xx (frameworks' own 401/404/429 bodies are often missing from specs). Block refuses
 * every violation, and an undescribed 5xx body.
 */
export function responseVerdict(
  mode: 'monitor' | 'block' | 'strip',
  status: number,
  r: ResponseResult,
): 'pass' | 'log' | 'refuse' {
  const unrepaired = r.violations.filter((x) => mode !== 'strip' || x.kind !== 'undeclared-property')
  const server = status >= 500
  if (mode === 'monitor') return unrepaired.length > 0 ? 'log' : 'pass'
  if (server && (unrepaired.length > 0 || r.undescribed)) return 'refuse'
  if (unrepaired.length === 0) return 'pass'
  if (mode === 'block') return 'refuse'
  return status >= 400 ? 'log' : 'refuse'
}
