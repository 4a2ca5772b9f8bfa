/**
 * The inventory as readers see it (admin API, dashboard, CLI): operations with their statistics,
 * data classes and flags against the spec, built from the merged field records (op-stats.ts).
 */
import { type DataClassId, dataClass, isDataClassId, type Regulation } from './classify/classes.js'
import { HLL_M, hllCount, quantile } from './sketch.js'
import { declaredResponseFields, type SpecIndex, type SpecOperation } from './spec-index.js'
import { isParamSegment } from './templater.js'

export type InventoryFlag =
  | 'shadow'
  | 'zombie'
  | 'unused'
  | 'unauthenticated'
  | 'undeclared-sensitive'
  | 'blocked'

export interface DataClassUse {
  class: DataClassId
  label: string
  /** Where it was seen: `request`, `response`, `query`, `request-headers`, `response-headers`. */
  in: string[]
  /** Field paths (`$.user.email`, `?email`, `header:cookie`), at most 20. */
  paths: string[]
  /** Sampled messages it was seen in. */
  count: number
  regulations: Partial<Record<Regulation, string>>
  /** Seen in a response field the spec does not declare. */
  undeclared: boolean
}

export interface InventoryOperation {
  /** `METHOD /template`. */
  id: string
  method: string
  path: string
  operationId?: string
  inSpec: boolean
  deprecated: boolean
  requests: number
  /** Requests refused by the gateway (a policy's denial). */
  denied: number
  /** Requests that failed (upstream errors, 5xx from the gateway). */
  errors: number
  statuses: Record<string, number>
  /** Gateway error codes (`GW_ERR_*`) answered, with counts. */
  errorCodes: Record<string, number>
  firstSeen?: string
  lastSeen?: string
  /** Share of requests that carried credentials (0–1). */
  authenticatedShare: number
  /** Distinct principals (HyperLogLog estimate). */
  principals: number
  latencyMs: { p50?: number; p99?: number }
  contentTypes: { request: string[]; response: string[] }
  queryParams: { name: string; count: number; types: string[] }[]
  pathParams: { name: string; types: string[] }[]
  fields: { where: string; path: string; types: Record<string, number> }[]
  samples: Record<string, number>
  dataClasses: DataClassUse[]
  flags: InventoryFlag[]
  /** Why each flag is set, in words. */
  reasons: Partial<Record<InventoryFlag, string>>
}

export interface InventoryView {
  generatedAt: string
  /** When this inventory started observing (the shared one: the first gateway). */
  observingSince: string
  specs: { operations: number; problems: string[] }
  store: 'memory' | 'redis'
  /** Operations dropped from a full inventory into overflow entries. */
  bounds: { maxOperations: number; operations: number; collapsedSegments: string[] }
  operations: InventoryOperation[]
}

const WHERE_LABEL: Record<string, string> = {
  req: 'request',
  res: 'response',
  query: 'query',
  reqh: 'request-headers',
  resh: 'response-headers',
}

interface Parsed {
  statuses: Record<string, number>
  errorCodes: Record<string, number>
  latency: Map<number, number>
  hll: Uint8Array
  ctReq: Map<string, number>
  ctRes: Map<string, number>
  query: Map<string, number>
  queryTypes: Map<string, Set<string>>
  pathTypes: Map<number, Set<string>>
  samples: Record<string, number>
  fields: Map<string, Map<string, Record<string, number>>>
  classes: Map<
    string,
    { in: Set<string>; paths: Set<string>; count: number; resPaths: { status: string; path: string }[] }
  >
}

function parse(f: Readonly<Record<string, number>>): Parsed {
  const p: Parsed = {
    statuses: {},
    errorCodes: {},
    latency: new Map(),
    hll: new Uint8Array(HLL_M),
    ctReq: new Map(),
    ctRes: new Map(),
    query: new Map(),
    queryTypes: new Map(),
    pathTypes: new Map(),
    samples: {},
    fields: new Map(),
    classes: new Map(),
  }
  const cls = (id: string) => {
    let c = p.classes.get(id)
    if (c === undefined) {
      c = { in: new Set(), paths: new Set(), count: 0, resPaths: [] }
      p.classes.set(id, c)
    }
    return c
  }
  for (const k of Object.keys(f)) {
    const v = f[k] as number
    const i = k.indexOf(':')
    if (i === -1) continue
    const pre = k.slice(0, i)
    const rest = k.slice(i + 1)
    switch (pre) {
      case 's':
        p.statuses[rest] = v
        break
      case 'e':
        p.errorCodes[rest] = v
        break
      case 'l':
        p.latency.set(Number(rest), v)
        break
      case 'h': {
        const idx = Number(rest)
        if (idx >= 0 && idx < HLL_M) p.hll[idx] = Math.min(255, v)
        break
      }
      case 'ct':
        if (rest.startsWith('req:')) p.ctReq.set(rest.slice(4), v)
        else if (rest.startsWith('res:')) p.ctRes.set(rest.slice(4), v)
        break
      case 'q':
        p.query.set(rest, v)
        break
      case 'qt': {
        const bar = rest.lastIndexOf('|')
        const name = rest.slice(0, bar)
        let s = p.queryTypes.get(name)
        if (!s) {
          s = new Set()
          p.queryTypes.set(name, s)
        }
        s.add(rest.slice(bar + 1))
        break
      }
      case 'pp': {
        const bar = rest.indexOf('|')
        const pos = Number(rest.slice(0, bar))
        let s = p.pathTypes.get(pos)
        if (!s) {
          s = new Set()
          p.pathTypes.set(pos, s)
        }
        s.add(rest.slice(bar + 1))
        break
      }
      case 'sm':
        p.samples[rest] = v
        break
      case 'f': {
        const a = rest.indexOf('|')
        const b = rest.lastIndexOf('|')
        if (a === -1 || b <= a) break
        const where = rest.slice(0, a)
        const path = rest.slice(a + 1, b)
        const type = rest.slice(b + 1)
        let m = p.fields.get(where)
        if (!m) {
          m = new Map()
          p.fields.set(where, m)
        }
        let t = m.get(path)
        if (!t) {
          t = {}
          m.set(path, t)
        }
        t[type] = (t[type] ?? 0) + v
        break
      }
      case 'c': {
        const bar = rest.indexOf('|')
        const where = rest.slice(0, bar)
        const id = rest.slice(bar + 1)
        // Counted once per message under req/res/query/reqh/resh (a status-qualified `where` is a
        // path record's, not a count).
        if (!isDataClassId(id) || where.includes(':')) break
        const c = cls(id)
        c.in.add(WHERE_LABEL[where.split(':')[0] as string] ?? where)
        c.count += v
        break
      }
      case 'cp': {
        const a = rest.indexOf('|')
        const b = rest.indexOf('|', a + 1)
        if (a === -1 || b === -1) break
        const where = rest.slice(0, a)
        const id = rest.slice(a + 1, b)
        const path = rest.slice(b + 1)
        if (!isDataClassId(id)) break
        const c = cls(id)
        if (c.paths.size < 20) c.paths.add(path)
        if (where.startsWith('res:')) c.resPaths.push({ status: where.slice(4), path })
        break
      }
    }
  }
  return p
}

function top(m: Map<string, number>, n: number): string[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, n)
    .map(([k]) => k)
}

/** Version segment (`v2`, `v2.1`) → comparable number, or undefined. */
function versionOf(seg: string): number | undefined {
  const m = /^v(\d+)(?:\.(\d+))?$/i.exec(seg)
  return m ? Number(m[1]) + Number(m[2] ?? 0) / 1000 : undefined
}

/**
 * Older API versions: templates with a version segment (`/api/v1/…`) while a template with the
 * same segments before it and a higher version exists (in a spec or in traffic).
 */
export function newerVersionOf(template: string, known: readonly string[]): string | undefined {
  const segs = template.split('/')
  for (let i = 0; i < segs.length; i++) {
    const v = versionOf(segs[i] as string)
    if (v === undefined) continue
    const head = segs.slice(0, i).join('/')
    for (const other of known) {
      const o = other.split('/')
      if (o.length <= i || o.slice(0, i).join('/') !== head) continue
      const ov = versionOf(o[i] as string)
      if (ov !== undefined && ov > v) return o.slice(0, i + 1).join('/')
    }
  }
  return undefined
}

export interface BuildOptions {
  now: number
  observingSince: number
  unusedAfterMs: number
  spec: SpecIndex
}

/** Builds the operations (observed ones from field records, plus spec operations never seen). */
export function buildOperations(
  records: ReadonlyMap<string, Record<string, number>>,
  o: BuildOptions,
): InventoryOperation[] {
  const out: InventoryOperation[] = []
  const observedTemplates: string[] = []
  for (const [id, f] of records) if ((f.n ?? 0) > 0) observedTemplates.push(id.slice(id.indexOf(' ') + 1))
  const known = [...new Set([...observedTemplates, ...o.spec.operations.map((s) => s.template)])]
  const seenIds = new Set<string>()
  for (const [id, f] of records) {
    const sp = id.indexOf(' ')
    const method = id.slice(0, sp)
    const template = id.slice(sp + 1)
    const specOp =
      o.spec.byTemplate(method === 'HEAD' ? 'GET' : method, template) ?? o.spec.byTemplate(method, template)
    seenIds.add(id)
    out.push(operationView(id, method, template, f, specOp, known, o))
  }
  for (const s of o.spec.operations) {
    const id = `${s.method} ${s.template}`
    if (seenIds.has(id)) continue
    out.push(operationView(id, s.method, s.template, {}, s, known, o))
  }
  out.sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : a.method < b.method ? -1 : a.method > b.method ? 1 : 0,
  )
  return out
}

function operationView(
  id: string,
  method: string,
  template: string,
  f: Readonly<Record<string, number>>,
  specOp: SpecOperation | undefined,
  known: readonly string[],
  o: BuildOptions,
): InventoryOperation {
  const p = parse(f)
  const n = f.n ?? 0
  const flags: InventoryFlag[] = []
  const reasons: Partial<Record<InventoryFlag, string>> = {}
  const flag = (fl: InventoryFlag, why: string) => {
    flags.push(fl)
    reasons[fl] = why
  }
  const overflow = template === '(overflow)'
  if (!specOp && n > 0 && o.spec.size > 0 && !overflow) {
    const pathKnown = o.spec.match(
      method,
      template
        .split('/')
        .map((s) => (isParamSegment(s) ? 'x' : s))
        .join('/'),
    )
    flag(
      'shadow',
      pathKnown.kind === 'method'
        ? `the spec has ${pathKnown.template} but not ${method}`
        : 'not in any spec',
    )
  }
  if (n > 0) {
    if (specOp?.deprecated) flag('zombie', 'deprecated in the spec, still called')
    else {
      const newer = newerVersionOf(template, known)
      if (newer !== undefined) flag('zombie', `an older API version still called (newer: ${newer})`)
    }
  }
  const last = f.t1 ?? 0
  if (specOp) {
    const idle = last === 0 ? o.now - o.observingSince : o.now - last
    if (idle >= o.unusedAfterMs) {
      flag(
        'unused',
        last === 0 ? 'in the spec, never called' : `no traffic since ${new Date(last).toISOString()}`,
      )
    }
  }
  const uo = f.uo ?? 0
  if (uo > 0 && !specOp?.public) {
    flag(
      'unauthenticated',
      `${uo} request(s) answered without credentials${specOp?.secured ? ' although the spec requires them' : ''}`,
    )
  }
  const dataClasses: DataClassUse[] = []
  const undeclared: string[] = []
  for (const [cid, c] of p.classes) {
    const dc = dataClass(cid)
    if (!dc) continue
    let und = false
    if (c.in.has('response') && !specOp?.declaredClasses.has(cid)) {
      if (!specOp) und = true
      else {
        for (const { status, path } of c.resPaths) {
          const declared = declaredResponseFields(specOp, Number(status))
          if (declared === undefined || !declared.has(path)) {
            und = true
            break
          }
        }
      }
    }
    if (und) undeclared.push(cid)
    dataClasses.push({
      class: dc.id,
      label: dc.label,
      in: [...c.in].sort(),
      paths: [...c.paths].sort(),
      count: c.count,
      regulations: dc.regulations,
      undeclared: und,
    })
  }
  dataClasses.sort((a, b) => (a.class < b.class ? -1 : 1))
  if (undeclared.length > 0) {
    flag(
      'undeclared-sensitive',
      `${undeclared.join(', ')} in responses ${specOp ? 'at fields the spec does not declare' : 'of an operation no spec describes'}`,
    )
  }
  const dn = f.dn ?? 0
  if (n > 0 && dn === n) flag('blocked', 'every request was refused by the gateway')
  const fields: InventoryOperation['fields'] = []
  for (const [where, m] of p.fields) for (const [path, types] of m) fields.push({ where, path, types })
  fields.sort((a, b) => (a.where === b.where ? (a.path < b.path ? -1 : 1) : a.where < b.where ? -1 : 1))
  const params = template.split('/').filter(isParamSegment)
  const view: InventoryOperation = {
    id,
    method,
    path: template,
    inSpec: specOp !== undefined,
    deprecated: specOp?.deprecated ?? false,
    requests: n,
    denied: dn,
    errors: f.er ?? 0,
    statuses: p.statuses,
    errorCodes: p.errorCodes,
    authenticatedShare: n > 0 ? Math.round(((f.au ?? 0) / n) * 1000) / 1000 : 0,
    principals: hllCount(p.hll),
    latencyMs: { p50: quantile(p.latency, 0.5), p99: quantile(p.latency, 0.99) },
    contentTypes: { request: top(p.ctReq, 8), response: top(p.ctRes, 8) },
    queryParams: top(p.query, 64).map((name) => ({
      name,
      count: p.query.get(name) as number,
      types: [...(p.queryTypes.get(name) ?? [])].sort(),
    })),
    pathParams: params.map((s, i) => ({
      name: s.slice(1, -1),
      types: [...(p.pathTypes.get(i) ?? [])].sort(),
    })),
    fields,
    samples: p.samples,
    dataClasses,
    flags,
    reasons,
  }
  if (specOp?.operationId !== undefined) view.operationId = specOp.operationId
  if (f.t0) view.firstSeen = new Date(f.t0).toISOString()
  if (last) view.lastSeen = new Date(last).toISOString()
  return view
}
