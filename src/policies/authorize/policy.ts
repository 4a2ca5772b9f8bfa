import { compileRolesOf } from '../../auth/principal.js'
import { isAbsolute, resolve, dirname } from 'node:path'
import type { Static } from '@sinclair/typebox'
import { compileClaimPath, stringList } from '../../auth/principal.js'
import { GatewayError } from '../../gateway/errors.js'
import { overriddenFrom } from '../../gateway/method-override.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import {
  definePolicy,
  type PolicyInstance,
  PolicyConfigError,
  logRefusal,
} from '../../gateway/pipeline/policy.js'
import { formatProblem, loadOpenApi, type Operation, PathMatcher, SpecError } from '../../openapi/index.js'
import { compileLinear } from '../../util/linear-regex.js'
import { type AuthorizeCondition, AuthorizeConfig, type AuthorizeRule } from './schema.js'

/** Headers that ask a server to treat the request as another method. Never obeyed. */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const
const METHOD_OVERRIDE_QUERY = '_method'

type Condition = Static<typeof AuthorizeCondition>
type Rule = Static<typeof AuthorizeRule>

/** What the policy leaves in `ctx.state.authorize` for later policies. */
export interface AuthorizeDecision {
  /** The spec operation the request matched, when a spec is configured. */
  operationId: string | undefined
  /** Names of the checks that applied (spec security, admin, rules). */
  checks: string[]
}

interface Params {
  /** Decoded path parameters: of the rule's own `path` template, else of the spec operation. */
  spec: Readonly<Record<string, string>> | undefined
}

/** One compiled check; `undefined` from `run` means it passed. */
interface Check {
  name: string
  /** True when a request without a principal can pass. */
  anonymous: boolean
  run(
    ctx: RequestContext,
    p: Principal | undefined,
    roles: () => ReadonlySet<string>,
    params: Params,
  ): Denial | undefined
}

type Denial =
  | { kind: 'scope'; scopes: string[] }
  | { kind: 'forbidden'; reason: string }
  | { kind: 'unauthenticated' }

interface SpecOp {
  op: Operation
  checks: Check[]
}

interface CompiledRule {
  check: Check
  operations: Set<Operation> | undefined
  methods: Set<string> | undefined
  template: PathMatcher<true> | undefined
  prefix: string | undefined
}

/** RFC 6749 §3.3 scope-token: safe inside the quoted `scope` of a WWW-Authenticate challenge. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']

/**
 * Function-level authorization (OWASP API5, BFLA): default deny; the spec's `security`
 * requirements (scopes), administrative operations (tags, `x-portcullis-roles`, path prefixes)
 * and configured rules (scopes, roles, conditions on claims and request values). Method override
 * headers are refused or stripped, never obeyed. See docs/policies/authorize.md.
 */
export const authorize = definePolicy({
  id: 'authorize',
  // After authentication (7900–8100, the principal) and rate limits (7000); before
  // openapi-validation (6000): a caller who may not call an operation gets no validation detail
  // about it and its body is never parsed. The spec is matched here, independently.
  priority: 6500,
  checkByBuilding: true,
  description:
    'Function-level authorization (BFLA), default deny: OpenAPI `security` scopes (403 insufficient_scope), administrative operations (tags, `x-portcullis-roles`, path prefixes) need their role, rules per operation (operationId, tags, method and path) with scopes, roles and conditions on claims and request values; method override headers refused or stripped.',
  schema: AuthorizeConfig,
  create(config, deps) {
    const problems: string[] = []
    const rolesOf = compileRolesOf(config.rolesClaims)

    // The spec, when configured: operations by id, a matcher, and each operation's own checks.
    let matcher: PathMatcher<SpecOp> | undefined
    const byId = new Map<string, SpecOp>()
    if (config.spec !== undefined) {
      const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
      let ops: Operation[]
      let schemes: Map<string, readonly string[]>
      try {
        const spec = loadOpenApi(file, { rootDir: dirname(file) })
        ops = spec.operations
        schemes = schemeMethods(spec.documents.root)
        for (const w of spec.warnings) deps.logger.warn({ spec: file }, `openapi: ${w}`)
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        throw configError(deps.routeName, err.problems.map(formatProblem))
      }
      matcher = new PathMatcher<SpecOp>()
      for (const op of ops) {
        const so: SpecOp = { op, checks: [] }
        if (config.specSecurity === 'enforce' && op.security !== undefined) {
          for (const r of op.security)
            for (const s of Object.values(r).flat())
              if (!SCOPE_TOKEN.test(s))
                problems.push(`${op.id}: security scope "${s.slice(0, 40)}" is not a valid scope token`)
          so.checks.push(specSecurityCheck(op, schemes))
        }
        const ext = op.raw['x-portcullis-roles']
        if (ext !== undefined) {
          const roles = stringList(ext, false)
          if (roles.length === 0 || !Array.isArray(ext) || roles.length !== ext.length)
            problems.push(`${op.id}: x-portcullis-roles must be a non-empty list of strings`)
          else so.checks.push(roleCheck('x-portcullis-roles', roles))
        }
        if (op.tags.some((t) => config.admin.tags.includes(t)))
          so.checks.push(roleCheck('admin', config.admin.roles))
        byId.set(op.id, so)
        matcher.add(op.path, op.method, so)
      }
    }

    const rules: CompiledRule[] = config.rules.map((r, i) => compileRule(r, i))
    const adminPrefixes = config.admin.pathPrefixes.map((p) => trimSlash(p).toLowerCase())
    const adminCheck = roleCheck('admin', config.admin.roles)
    if (problems.length > 0) throw configError(deps.routeName, problems)

    function compileRule(r: Rule, i: number): CompiledRule {
      const at = `rules[${i}]${r.name ? ` (${r.name})` : ''}`
      const m = r.match
      if (Object.keys(m).length === 0) problems.push(`${at}.match: give at least one key`)
      let operations: Set<Operation> | undefined
      if (m.operationIds || m.tags) {
        if (config.spec === undefined) problems.push(`${at}.match: operationIds and tags need \`spec\``)
        operations = new Set()
        for (const id of m.operationIds ?? []) {
          const so = byId.get(id)
          if (so) operations.add(so.op)
          else if (config.spec !== undefined)
            problems.push(`${at}.match.operationIds: no operation "${id}" in the spec`)
        }
        if (m.tags) {
          const tagged = [...byId.values()].filter((so) => so.op.tags.some((t) => m.tags?.includes(t)))
          if (tagged.length === 0 && config.spec !== undefined)
            problems.push(`${at}.match.tags: no operation in the spec has any of these tags`)
          // operationIds and tags together: operations in both.
          if (m.operationIds)
            operations = new Set(tagged.map((so) => so.op).filter((o) => operations?.has(o)))
          else operations = new Set(tagged.map((so) => so.op))
        }
      }
      const methods = m.methods ? new Set(m.methods.map((x) => x.toUpperCase())) : undefined
      if (methods?.has('GET')) methods.add('HEAD')
      let template: PathMatcher<true> | undefined
      if (m.path !== undefined) {
        template = new PathMatcher<true>()
        for (const meth of ALL_METHODS) template.add(m.path, meth, true)
      }
      const checks: Check[] = []
      if (r.anonymous && (r.scopes || r.roles))
        problems.push(`${at}: an anonymous rule cannot require scopes or roles`)
      for (const s of r.scopes ?? [])
        if (!SCOPE_TOKEN.test(s)) problems.push(`${at}.scopes: "${s}" is not a valid scope token`)
      if (r.scopes) checks.push(scopeCheck(r.scopes))
      if (r.roles) checks.push(roleCheck('roles', r.roles))
      for (const [j, c] of (r.conditions ?? []).entries()) {
        const cc = compileCondition(c, `${at}.conditions[${j}]`, problems, m.path)
        if (cc) checks.push(cc)
      }
      const name = r.name ?? `rule ${i}`
      const anonymous = r.anonymous
      const check: Check = {
        name,
        anonymous,
        run(ctx, p, roles, params) {
          if (!p) {
            if (!anonymous) return { kind: 'unauthenticated' }
          }
          for (const c of checks) {
            const d = c.run(ctx, p, roles, params)
            if (d) return d
          }
          return undefined
        },
      }
      return {
        check,
        operations,
        methods,
        template,
        prefix: m.pathPrefix ? trimSlash(m.pathPrefix).toLowerCase() : undefined,
      }
    }

    const refusal = logRefusal(deps)
    function denied(ctx: RequestContext, op: Operation | undefined, check: string, reason: string): void {
      refusal(
        `authorize:${check}`,
        { requestId: ctx.id, route: ctx.routeName, operationId: op?.id, method: ctx.method, check, reason },
        'authorize: request denied',
      )
    }

    const methodOverride = config.methodOverride
    const byDefault = config.default
    const base = config.basePath

    const instance: PolicyInstance = {
      // Always removed before the upstream, in both modes: an upstream framework must never see them.
      stripRequestHeaders: METHOD_OVERRIDE_HEADERS,
      stripQueryParams: [METHOD_OVERRIDE_QUERY],
      onRequest(ctx) {
        // An override the gateway applied (the route opted in) made ctx.method the real method,
        // which is what is authorized below; the headers are not forwarded.
        if (methodOverride === 'reject' && overriddenFrom(ctx) === undefined) {
          const h = ctx.req.headers
          for (const name of METHOD_OVERRIDE_HEADERS) {
            if (h[name] !== undefined)
              throw new GatewayError('GW_ERR_METHOD_OVERRIDE', {
                detail: `the ${name} header is not accepted`,
              })
          }
          if (
            ctx.query !== '' &&
            ctx.queryParams().list.some((x) => x.name.toLowerCase() === METHOD_OVERRIDE_QUERY)
          )
            throw new GatewayError('GW_ERR_METHOD_OVERRIDE', {
              detail: 'the _method query parameter is not accepted',
            })
        }

        const checks: Check[] = []
        let specParams: Readonly<Record<string, string>> | undefined
        let op: Operation | undefined
        if (matcher) {
          let path: string | undefined = ctx.path
          if (base !== '') {
            if (path === base) path = '/'
            else if (path.startsWith(`${base}/`)) path = path.slice(base.length)
            else path = undefined
          }
          const m = path === undefined ? undefined : matcher.match(path, ctx.method)
          if (m?.kind === 'found') {
            op = m.match.value.op
            specParams = m.match.params
            for (const c of m.match.value.checks) checks.push(c)
          }
        }
        if (adminPrefixes.length > 0) {
          const lower = ctx.path.toLowerCase()
          if (adminPrefixes.some((p) => underPrefix(lower, p)) && !checks.includes(adminCheck))
            checks.push(adminCheck)
        }
        let lowerPath: string | undefined
        // Path parameters of a rule's own template, for its `path` conditions (else the spec's).
        let ruleParams: Map<Check, Readonly<Record<string, string>>> | undefined
        for (const r of rules) {
          if (r.methods && !r.methods.has(ctx.method)) continue
          if (r.operations && (op === undefined || !r.operations.has(op))) continue
          if (r.prefix !== undefined) {
            lowerPath ??= ctx.path.toLowerCase()
            if (!underPrefix(lowerPath, r.prefix)) continue
          }
          if (r.template) {
            const m = r.template.match(ctx.path, ctx.method)
            if (m.kind !== 'found') continue
            ruleParams ??= new Map()
            ruleParams.set(r.check, m.match.params)
          }
          checks.push(r.check)
        }

        ctx.state.authorize = {
          operationId: op?.id,
          checks: checks.map((c) => c.name),
        } satisfies AuthorizeDecision
        if (checks.length === 0) {
          if (byDefault === 'allow') return
          denied(ctx, op, 'default', 'no rule covers this request (default deny)')
          throw new GatewayError('GW_ERR_FORBIDDEN', {
            cause: new Error(
              `authorize: no rule covers ${ctx.method} ${op ? op.id : 'this path'} (default deny)`,
            ),
          })
        }
        const p = ctx.principal
        const specOnly: Params = { spec: specParams }
        let roleSet: ReadonlySet<string> | undefined
        const roles = (): ReadonlySet<string> => {
          roleSet ??= p ? rolesOf(p) : new Set()
          return roleSet
        }
        // Unauthenticated first (401 before any 403), then the first failing check decides.
        if (!p && checks.some((c) => !c.anonymous)) {
          throw new GatewayError('GW_ERR_AUTH_MISSING', { headers: { 'WWW-Authenticate': 'Bearer' } })
        }
        for (const c of checks) {
          const own = ruleParams?.get(c)
          const d = c.run(ctx, p, roles, own ? { spec: own } : specOnly)
          if (d === undefined) continue
          denied(
            ctx,
            op,
            c.name,
            d.kind === 'forbidden' ? d.reason : d.kind === 'scope' ? 'missing scope' : 'no principal',
          )
          if (d.kind === 'unauthenticated')
            throw new GatewayError('GW_ERR_AUTH_MISSING', { headers: { 'WWW-Authenticate': 'Bearer' } })
          if (d.kind === 'scope') {
            const scope = d.scopes.join(' ')
            throw new GatewayError('GW_ERR_INSUFFICIENT_SCOPE', {
              headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
              extensions: { requiredScopes: d.scopes },
              cause: new Error(`authorize: ${c.name}: missing scope`),
            })
          }
          throw new GatewayError('GW_ERR_FORBIDDEN', {
            cause: new Error(`authorize: ${c.name}: ${d.reason}`),
          })
        }
      },
    }
    return instance
  },
})

/** The spec's requirements: OR of requirement objects, AND of the scopes inside one. */
function specSecurityCheck(op: Operation, schemes: Map<string, readonly string[]>): Check {
  const reqs = (op.security ?? []).map((r) => ({
    scopes: [...new Set(Object.values(r).flat())],
    // Every scheme of the requirement must be one the principal's authentication can stand for.
    methods: Object.keys(r).map((name) => schemes.get(name)),
  }))
  const anonymous = reqs.length === 0 || (op.security ?? []).some((r) => Object.keys(r).length === 0)
  return {
    name: 'spec security',
    anonymous,
    run(_ctx, p) {
      if (anonymous) return undefined
      if (!p) return { kind: 'unauthenticated' }
      const have = p.scopes
      const usable = reqs.filter((r) => r.methods.every((m) => m === undefined || m.includes(p.authMethod)))
      if (usable.length === 0)
        return { kind: 'forbidden', reason: `no security requirement accepts ${p.authMethod} authentication` }
      for (const r of usable) if (r.scopes.every((s) => have.includes(s))) return undefined
      // The smallest requirement the principal could meet is the one to name in the challenge.
      const first = usable.reduce((a, b) => (b.scopes.length < a.scopes.length ? b : a))
      return { kind: 'scope', scopes: first.scopes }
    },
  }
}

/**
 * Which authentication methods (Principal.authMethod) each security scheme of the spec stands
 * for, by its type; schemes of other types (http basic, a `$ref`) accept any principal.
 */
function schemeMethods(root: unknown): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>()
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  const schemes = obj(obj(obj(root)?.components)?.securitySchemes) ?? {}
  for (const [name, v] of Object.entries(schemes)) {
    const s = obj(v)
    const type = s?.type
    const scheme = typeof s?.scheme === 'string' ? s.scheme.toLowerCase() : ''
    if (type === 'apiKey') out.set(name, ['api-key'])
    else if (type === 'mutualTLS') out.set(name, ['mtls'])
    else if (type === 'oauth2' || type === 'openIdConnect' || (type === 'http' && scheme === 'bearer'))
      // A bearer token checked by any bearer-token policy: a JWT, an introspected or a userinfo token.
      out.set(name, ['jwt', 'oauth2-introspection', 'userinfo'])
  }
  return out
}

function scopeCheck(scopes: readonly string[]): Check {
  return {
    name: 'scopes',
    anonymous: false,
    run(_ctx, p) {
      if (!p) return { kind: 'unauthenticated' }
      return scopes.every((s) => p.scopes.includes(s)) ? undefined : { kind: 'scope', scopes: [...scopes] }
    },
  }
}

function roleCheck(name: string, roles: readonly string[]): Check {
  return {
    name,
    anonymous: false,
    run(_ctx, p, have) {
      if (!p) return { kind: 'unauthenticated' }
      const set = have()
      return roles.some((r) => set.has(r))
        ? undefined
        : { kind: 'forbidden', reason: `needs one of the roles ${roles.join(', ')}` }
    },
  }
}

const OPERATORS = ['equals', 'in', 'contains', 'matches', 'gt', 'gte', 'lt', 'lte'] as const
const NUMBER = /^-?(0|[1-9]\d{0,15})(\.\d{1,15})?$/

function compileCondition(
  c: Condition,
  at: string,
  problems: string[],
  ruleTemplate: string | undefined,
): Check | undefined {
  const sources = (['claim', 'path', 'query', 'header'] as const).filter((k) => c[k] !== undefined)
  if (sources.length !== 1) {
    problems.push(`${at}: give exactly one of claim, path, query, header`)
    return undefined
  }
  const ops = OPERATORS.filter((k) => c[k] !== undefined)
  if (ops.length === 0) {
    problems.push(`${at}: give at least one operator (${OPERATORS.join(', ')})`)
    return undefined
  }
  if (c.path !== undefined && ruleTemplate !== undefined && !ruleTemplate.includes(`{${c.path}}`))
    problems.push(`${at}.path: the rule's path template has no variable {${c.path}}`)
  const source = sources[0] as 'claim' | 'path' | 'query' | 'header'
  const claim = c.claim !== undefined ? compileClaimPath(c.claim) : undefined
  const name = (c[source] as string).toLowerCase()
  const rawName = c[source] as string
  const get = (ctx: RequestContext, p: Principal | undefined, params: Params): unknown => {
    switch (source) {
      case 'claim':
        return p && claim ? claim(p.claims) : undefined
      case 'path':
        return params.spec && Object.hasOwn(params.spec, rawName) ? params.spec[rawName] : undefined
      case 'query': {
        if (ctx.query === '') return undefined
        return ctx.queryParams().single(rawName) // repeated or spelled another way: refused
      }
      case 'header': {
        const v = ctx.req.headers[name]
        return typeof v === 'string' ? v : undefined
      }
    }
  }
  const fromRequest = source !== 'claim'
  const tests: ((v: unknown) => boolean)[] = []
  if (c.equals !== undefined) {
    const e = String(c.equals)
    tests.push((v) => isScalar(v) && String(v) === e)
  }
  if (c.in !== undefined) {
    const set = new Set(c.in.map(String))
    tests.push((v) => isScalar(v) && set.has(String(v)))
  }
  if (c.contains !== undefined) {
    const e = String(c.contains)
    tests.push((v) => {
      if (Array.isArray(v)) return v.some((x) => isScalar(x) && String(x) === e)
      if (fromRequest && typeof v === 'string') return v.split(',').some((x) => x.trim() === e)
      return false
    })
  }
  if (c.matches !== undefined) {
    try {
      const re = compileLinear(c.matches)
      tests.push((v) => isScalar(v) && re.test(String(v)))
    } catch (err) {
      problems.push(`${at}.matches: ${(err as Error).message}`)
      return undefined
    }
  }
  const num = (v: unknown): number | undefined => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
    if (typeof v === 'string' && NUMBER.test(v)) return Number(v)
    return undefined
  }
  const cmp = (f: (n: number) => boolean) => (v: unknown) => {
    const n = num(v)
    return n !== undefined && f(n)
  }
  if (c.gt !== undefined) {
    const x = c.gt
    tests.push(cmp((n) => n > x))
  }
  if (c.gte !== undefined) {
    const x = c.gte
    tests.push(cmp((n) => n >= x))
  }
  if (c.lt !== undefined) {
    const x = c.lt
    tests.push(cmp((n) => n < x))
  }
  if (c.lte !== undefined) {
    const x = c.lte
    tests.push(cmp((n) => n <= x))
  }
  const label = `${source} ${rawName}`
  return {
    name: 'condition',
    anonymous: source !== 'claim',
    run(ctx, p, _roles, params) {
      const v = get(ctx, p, params)
      if (v === undefined || v === null)
        return { kind: 'forbidden', reason: `condition on ${label}: no value` }
      for (const t of tests) if (!t(v)) return { kind: 'forbidden', reason: `condition on ${label} not met` }
      return undefined
    },
  }
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
}

function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true
  return path === prefix || path.startsWith(`${prefix}/`)
}

function configError(route: string, problems: string[]): Error {
  return new PolicyConfigError('authorize', route, problems)
}
