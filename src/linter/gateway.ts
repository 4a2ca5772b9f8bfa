/**
 * `portcullis lint SPEC --gateway portcullis.yaml`: for every operation of the spec, which route
 * of the gateway config serves it (the gateway's own router: host, longest prefix, methods) and
 * which policies apply there (global merged with the route's, `enabled: false` honoured), then
 * the protections the operation needs and does not get, each with the config lines to add.
 *
 * The config is loaded with the project's loader (src/config/load.ts `loadConfigFile`): the same
 * validation and defaults as `portcullis serve`.
 */
import { realpathSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { RouteConfig } from '../config/schema.js'
import { formatProblem, loadConfigFile } from '../config/load.js'
import { buildRouter } from '../gateway/router.js'
import { isObject, type LintContext, type Obj, type OpInfo } from './context.js'
import { isIdName, isUrlName } from './names.js'
import { isNumericIdSchema, serversOf } from './rules/util.js'
import type { Severity } from './types.js'

/** How much each gap weighs for `--fail-on`. */
export const GAP_SEVERITY: Record<GapId, Severity> = {
  'no-route': 'info',
  'no-authentication': 'critical',
  'admin-without-authorize': 'high',
  'object-without-ownership': 'high',
  'write-unvalidated': 'medium',
  'auth-flow-without-limit': 'high',
  'business-flow-without-limit': 'medium',
  'validation-monitor-only': 'medium',
  'responses-unvalidated': 'low',
  'ssrf-unguarded': 'high',
}

/** A protection the operation needs and the config does not give it. */
export interface Gap {
  id: GapId
  severity: Severity
  /** `POST /api/v2/users/me/avatar` (or `*` for the whole config). */
  operation: string
  route: string | undefined
  message: string
  /** YAML to add (under the route's or the global `policies:`), as lines. */
  fix: string
}

export type GapId =
  | 'no-route'
  | 'no-authentication'
  | 'admin-without-authorize'
  | 'object-without-ownership'
  | 'write-unvalidated'
  | 'auth-flow-without-limit'
  | 'business-flow-without-limit'
  | 'validation-monitor-only'
  | 'responses-unvalidated'
  | 'ssrf-unguarded'

export interface OperationCoverage {
  operation: string
  operationId: string | undefined
  /** The gateway path the operation was matched with (template filled with samples). */
  gatewayPath: string
  route: string | undefined
  policies: string[]
  gaps: Gap[]
}

export interface GatewayReport {
  config: string
  operations: OperationCoverage[]
  gaps: Gap[]
}

/** The config could not be loaded: every problem, formatted `file:line:col path: message`. */
export class GatewayConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid gateway config:\n  ${problems.join('\n  ')}`)
    this.name = 'GatewayConfigError'
  }
}

const AUTH_POLICIES = ['jwt-auth', 'api-key-auth', 'oauth2-introspection', 'userinfo-auth', 'mtls']
const SSRF_POLICY = 'ssrf-guard'

interface RouteView {
  config: RouteConfig
  policies: Map<string, Obj>
}

/**
 * @example
 * const ctx = new LintContext(loadOpenApi('openapi.yaml'))
 * const report = checkGateway(ctx, 'portcullis.yaml')
 * for (const g of report.gaps) console.log(g.operation, g.message, '\n', g.fix)
 */
export function checkGateway(ctx: LintContext, configFile: string): GatewayReport {
  const loaded = loadConfigFile(configFile)
  if (loaded.config === undefined) throw new GatewayConfigError(loaded.errors.map(formatProblem))
  const config = loaded.config as unknown as { routes: RouteConfig[]; policies?: Record<string, unknown> }
  const baseDir = dirname(resolve(configFile))
  const views: RouteView[] = config.routes.map((rc) => {
    const merged: Record<string, unknown> = {
      ...(config.policies ?? {}),
      ...((rc.policies as Record<string, unknown>) ?? {}),
    }
    const policies = new Map<string, Obj>()
    for (const [id, pc] of Object.entries(merged)) {
      if (pc === undefined || (isObject(pc) && pc.enabled === false)) continue
      policies.set(id, isObject(pc) ? pc : {})
    }
    return { config: rc, policies }
  })
  const router = buildRouter(
    views.map((v) => ({
      config: v.config,
      route: v,
      ...(v.config.match.openapi ? { resolve: () => v } : {}),
    })),
  )
  const sameSpec = (p: unknown): boolean => {
    if (typeof p !== 'string') return false
    try {
      return realpathSync(isAbsolute(p) ? p : resolve(baseDir, p)) === ctx.rootFile
    } catch {
      return false
    }
  }
  const base = basePathFor(ctx, views, sameSpec)
  const ssrfOps = new Set(ssrfOperations(ctx))
  const operations: OperationCoverage[] = []
  for (const o of ctx.ops) {
    const gatewayPath = `${base}${o.op.path}`.replace(/\/{2,}/g, '/')
    const sample = gatewayPath.replace(/\{[^{}/]+\}/g, '1')
    const hosts = [undefined, ...config.routes.flatMap((r) => r.match.hosts ?? [])]
    let view: RouteView | undefined
    for (const h of hosts) {
      const m = router.match(h ?? '', sample, o.op.method)
      if (m !== undefined && !('allow' in m)) {
        view = m
        break
      }
    }
    const cov: OperationCoverage = {
      operation: o.label,
      operationId: o.op.operationId,
      gatewayPath,
      route: view?.config.name,
      policies: view ? [...view.policies.keys()].sort() : [],
      gaps: [],
    }
    const gap = (id: GapId, message: string, fix: string) =>
      cov.gaps.push({
        id,
        severity: GAP_SEVERITY[id],
        operation: o.label,
        route: view?.config.name,
        message,
        fix,
      })
    if (view === undefined) {
      gap(
        'no-route',
        'no route of the config serves this operation (the gateway answers 404)',
        routeFix(gatewayPath),
      )
      operations.push(cov)
      continue
    }
    checkOperation(ctx, o, view, gatewayPath, sameSpec, ssrfOps.has(o), gap)
    operations.push(cov)
  }
  return { config: configFile, operations, gaps: operations.flatMap((c) => c.gaps) }
}

/** The prefix of gateway paths: a spec route's pathPrefix, else the first server URL's path. */
function basePathFor(ctx: LintContext, views: RouteView[], sameSpec: (p: unknown) => boolean): string {
  for (const v of views) {
    const oa = v.config.match.openapi
    if (oa && sameSpec(oa.spec)) return v.config.match.pathPrefix.replace(/\/$/, '')
  }
  const first = serversOf(ctx)[0]
  if (first) {
    try {
      return new URL(first.expanded[0] ?? first.url, 'http://x').pathname.replace(/\/$/, '')
    } catch {
      return ''
    }
  }
  return ''
}

function ssrfOperations(ctx: LintContext): OpInfo[] {
  const out: OpInfo[] = []
  for (const n of ctx.requestNodes()) {
    if (n.name === undefined || n.source === 'header') continue
    const f = n.schema.format
    if ((typeof f === 'string' && /^(uri|url|iri|uri-reference|hostname)$/.test(f)) || isUrlName(n.name))
      out.push(n.op)
  }
  return out
}

function templateKey(p: string): string {
  return p.replace(/\{[^{}/]+\}/g, '{}').replace(/\/$/, '')
}

function idBearing(ctx: LintContext, o: OpInfo): string | undefined {
  const vars = [...o.op.path.matchAll(/\{([^{}/]+)\}/g)].map((m) => m[1] as string)
  for (const p of o.op.parameters) {
    if (p.in === 'path' && (isIdName(p.name) || vars[vars.length - 1] === p.name))
      return `path parameter "${p.name}"`
    if (p.in === 'query' && isIdName(p.name) && p.schemaLocation) {
      const r = ctx.deref(p.schema, p.schemaLocation)
      if (r && isObject(r.value) && (isNumericIdSchema(r.value) || r.value.type === 'array'))
        return `query parameter "${p.name}"`
    }
  }
  return undefined
}

function limitApplies(policy: Obj | undefined, method: string): boolean {
  if (policy === undefined || !Array.isArray(policy.limits)) return false
  return policy.limits.some((l) => !isObject(l) || !Array.isArray(l.methods) || l.methods.includes(method))
}

function checkOperation(
  ctx: LintContext,
  o: OpInfo,
  view: RouteView,
  gatewayPath: string,
  sameSpec: (p: unknown) => boolean,
  ssrf: boolean,
  gap: (id: GapId, message: string, fix: string) => void,
): void {
  const has = (id: string) => view.policies.has(id)
  const at = `routes[name=${view.config.name}].policies (or the global policies:)`
  const needsAuth = o.security !== undefined && !o.anonymous
  if (needsAuth && !AUTH_POLICIES.some(has)) {
    gap(
      'no-authentication',
      'the spec requires authentication but no authentication policy runs on the route',
      `# ${at}\njwt-auth:\n  issuer: https://idp.example.com\n  audience: my-api\n  discovery: true`,
    )
  }
  if (o.admin !== undefined) {
    const az = view.policies.get('authorize')
    const admin = isObject(az?.admin) ? az.admin : {}
    const prefixes = Array.isArray(admin.pathPrefixes) ? admin.pathPrefixes.map(String) : []
    const covered =
      az !== undefined &&
      (sameSpec(az.spec) || prefixes.some((p) => gatewayPath.toLowerCase().startsWith(p.toLowerCase())))
    if (!covered)
      gap(
        'admin-without-authorize',
        `administrative operation (${o.admin}) with no authorize policy that knows it`,
        `# ${at}\nauthorize:\n  spec: ${specRef(ctx)}   # enforces x-portcullis-roles, admin tags and security scopes`,
      )
  }
  const ids = o.admin === undefined && !o.anonymous ? idBearing(ctx, o) : undefined
  if (ids !== undefined) {
    const oo = view.policies.get('object-ownership')
    const objects = oo && Array.isArray(oo.objects) ? oo.objects.filter(isObject) : []
    const want = templateKey(gatewayPath)
    const covered = objects.some((obj) =>
      (Array.isArray(obj.access) ? obj.access : []).some((a) => {
        if (!isObject(a) || !isObject(a.match)) return false
        const m = a.match
        if (
          Array.isArray(m.methods) &&
          !m.methods.includes(o.op.method) &&
          !(o.op.method === 'HEAD' && m.methods.includes('GET'))
        )
          return false
        if (typeof m.path === 'string') return templateKey(m.path) === want
        return (
          Array.isArray(m.operationIds) &&
          o.op.operationId !== undefined &&
          m.operationIds.includes(o.op.operationId)
        )
      }),
    )
    if (!covered)
      gap(
        'object-without-ownership',
        `the operation addresses objects by id (${ids}) and no object-ownership rule covers it`,
        `# ${at}\nobject-ownership:\n  objects:\n    - type: ${objectType(o)}\n      access:\n        - { match: { methods: [${o.op.method}], path: "${gatewayPath}" }, ids: [${idSelector(o)}] }\n      lookup: { url: "http://upstream.internal${gatewayPath.replace(/\{[^{}/]+\}$/, '{id}')}", forwardHeaders: [authorization], owner: /ownerId }`,
      )
  }
  const ov = view.policies.get('openapi-validation')
  const ovOn = ov !== undefined && sameSpec(ov.spec)
  const opCfg =
    ovOn && isObject(ov.operations) && o.op.operationId ? ov.operations[o.op.operationId] : undefined
  const mode = (isObject(opCfg) && opCfg.mode) || ov?.mode || 'block'
  const responses = (isObject(opCfg) && opCfg.responses) || ov?.responses || 'off'
  if (o.write && o.op.requestBody !== undefined) {
    const pf = view.policies.get('property-filter')
    const filtered = pf !== undefined && sameSpec(pf.spec)
    if (!filtered && !(ovOn && mode === 'block'))
      gap(
        'write-unvalidated',
        'the request body is neither validated against the spec nor filtered (mass assignment passes)',
        `# ${at}\nopenapi-validation:\n  spec: ${specRef(ctx)}\n  mode: block\n  undeclaredProperties: block\nproperty-filter:\n  spec: ${specRef(ctx)}   # readOnly and reserved properties refused`,
      )
  }
  if (ovOn && mode === 'monitor')
    gap(
      'validation-monitor-only',
      'openapi-validation runs in monitor mode here: violations are logged, not refused',
      `# ${at}\nopenapi-validation:\n  mode: block`,
    )
  const hasJsonResponse = o.op.responses.some(
    (r) => r.status.startsWith('2') && r.content.some((m) => m.schema !== undefined),
  )
  if (hasJsonResponse && (!ovOn || responses === 'off' || responses === 'monitor')) {
    const pf = view.policies.get('property-filter')
    const note = pf !== undefined ? ' (property-filter removes sensitive names only)' : ''
    gap(
      'responses-unvalidated',
      `responses are not checked against the spec${note}: undeclared properties reach the client`,
      `# ${at}\nopenapi-validation:\n  spec: ${specRef(ctx)}\n  responses: strip   # or block`,
    )
  }
  const limited = limitApplies(view.policies.get('rate-limit'), o.op.method)
  if (o.authFlow && (o.write || o.anonymous) && !limited && !has('brute-force-lockout'))
    gap(
      'auth-flow-without-limit',
      'an authentication flow with no rate limit or lockout on its route (password guessing, credential stuffing)',
      `# routes[...]: a route for ${o.op.method} ${gatewayPath}\nrate-limit:\n  limits:\n    - { name: per-ip, rate: 5, per: minute, key: [ip], methods: [${o.op.method}] }\nbrute-force-lockout: {}`,
    )
  if (o.businessFlow && !o.authFlow && !limited)
    gap(
      'business-flow-without-limit',
      'a business flow a bot can automate, with no rate limit or quota on its route',
      `# routes[...]: a route for ${o.op.method} ${gatewayPath}\nrate-limit:\n  limits:\n    - { name: quota, rate: 10, per: hour, key: [principal], methods: [${o.op.method}], code: quota-exceeded }`,
    )
  if (ssrf && !has(SSRF_POLICY))
    gap(
      'ssrf-unguarded',
      'the operation takes a URL the server may fetch and no ssrf-guard policy runs on the route',
      `# ${at}\n${SSRF_POLICY}: {}   # refuse loopback, private, link-local and metadata addresses`,
    )
}

function specRef(ctx: LintContext): string {
  return ctx.rootFile.split('/').pop() ?? 'openapi.yaml'
}

function objectType(o: OpInfo): string {
  const segs = o.op.path.split('/').filter((s) => s && !s.startsWith('{'))
  const last = segs[segs.length - 1] ?? 'object'
  return last.replace(/ies$/, 'y').replace(/s$/, '')
}

function idSelector(o: OpInfo): string {
  const p =
    o.op.parameters.find((x) => x.in === 'path') ??
    o.op.parameters.find((x) => x.in === 'query' && isIdName(x.name))
  if (p === undefined) return ''
  return p.in === 'path' ? `path.${p.name}` : `{ from: query.${p.name}, split: "," }`
}

function routeFix(gatewayPath: string): string {
  return `# routes:\n- name: api\n  match: { pathPrefix: ${gatewayPath.split('/').slice(0, 2).join('/') || '/'} }\n  upstream: <upstream>`
}
