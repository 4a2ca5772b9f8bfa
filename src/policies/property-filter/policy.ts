import { compileRolesOf } from '../../auth/principal.js'
import { parseParams } from '../../gateway/query.js'
import { dirname, isAbsolute, resolve } from 'node:path'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyInstance, PolicyConfigError } from '../../gateway/pipeline/policy.js'
import { formatProblem, loadOpenApi, PathMatcher, SpecError } from '../../openapi/index.js'
import { DEFAULT_JSON_LIMITS, JsonGuardError } from '../../openapi/json-guard.js'
import { forgetJson, guardedJsonOf, jsonOf, rememberJson } from '../../openapi/shared-json.js'
import { compileLinear } from '../../util/linear-regex.js'
import { mediaTypeOf } from '../openapi-validation/request.js'
import {
  checkRequest,
  filterResponse,
  normalizeName,
  type RequestViolation,
  type SensitiveMatcher,
} from './filter.js'
import { type OperationPlans, PlanBuilder, responsePlans } from './plan.js'
import { PropertyFilterConfig } from './schema.js'

type RoleMap = ReadonlyMap<string, (readonly string[])[]>

/** One operation's compiled settings. */
interface OpEntry {
  id: string
  plans: OperationPlans | undefined
  allowSensitive: ReadonlySet<string>
  restricted: RoleMap
  reserved: RoleMap
}

/** Longest piece of client input one problem document repeats (in total). */
const ECHO_BUDGET = 100
const STATE = 'property-filter'

function isJsonType(t: string): boolean {
  return t === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.-]+\+json$/.test(t)
}

/**
 * Object property level authorization (OWASP API3, BOPLA): sensitive and role-restricted
 * properties removed from JSON responses; read-only and reserved properties refused in JSON
 * requests (mass assignment). See docs/policies/property-filter.md.
 */
/** One gateway log line per route and operation in this interval; the audit log has every removal. */
const LOG_INTERVAL_MS = 60_000

export const propertyFilter = definePolicy({
  id: 'property-filter',
  // After authorize (6500): a caller who may not call the operation at all gets no detail about
  // its fields. Before openapi-validation (6000): a mass-assignment attempt is answered with the
  // field it names (GW_ERR_PROPERTY_NOT_ALLOWED), not as a generic validation failure. Responses
  // run in reverse order, so openapi-validation's response check sees the body first.
  priority: 6200,
  checkByBuilding: true,
  description:
    'Object property level authorization (BOPLA): sensitive properties (names, patterns) always removed from JSON responses, properties restricted to roles (`x-portcullis-roles` in the spec, or config) removed for other principals; on requests, `readOnly` and role-reserved properties refused with 400 naming the field (mass assignment).',
  schema: PropertyFilterConfig,
  create(config, deps) {
    const problems: string[] = []
    const logger = deps.logger
    /** When the removal line was last logged per route and operation (bounded: the spec's operations), and removals since. */
    const logged = new Map<string, { at: number; since: number }>()
    const audit = deps.audit

    // Sensitive names and patterns.
    const patterns = config.sensitive.patterns.flatMap((p, i) => {
      try {
        return [compileLinear(p, 'i')]
      } catch (err) {
        problems.push(`sensitive.patterns[${i}]: ${(err as Error).message}`)
        return []
      }
    })
    const sensitive: SensitiveMatcher = {
      names: new Set(config.sensitive.names.map(normalizeName)),
      patterns,
    }
    const roleMap = (...maps: (Readonly<Record<string, readonly string[]>> | undefined)[]): RoleMap => {
      const out = new Map<string, (readonly string[])[]>()
      for (const m of maps) {
        for (const [name, roles] of Object.entries(m ?? {})) {
          const k = normalizeName(name)
          out.set(k, [...(out.get(k) ?? []), roles])
        }
      }
      return out
    }
    const globalRestricted = roleMap(config.restricted)
    const globalReserved = roleMap(config.reserved)
    const entryFor = (id: string, plans: OperationPlans | undefined): OpEntry => {
      const o = config.operations[id]
      return {
        id,
        plans,
        allowSensitive: new Set((o?.allowSensitive ?? []).map(normalizeName)),
        restricted: o?.restricted ? roleMap(config.restricted, o.restricted) : globalRestricted,
        reserved: o?.reserved ? roleMap(config.reserved, o.reserved) : globalReserved,
      }
    }

    // Operations: from the spec, or from the `METHOD /path` keys of `operations`.
    const matcher = new PathMatcher<OpEntry>()
    if (config.spec !== undefined) {
      const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
      try {
        const spec = loadOpenApi(file, { rootDir: dirname(file) })
        for (const w of spec.warnings) deps.logger.warn({ spec: file }, `openapi: ${w}`)
        const builder = new PlanBuilder(spec)
        const ids = new Set<string>()
        for (const op of spec.operations) {
          ids.add(op.id)
          matcher.add(op.path, op.method, entryFor(op.id, builder.operation(op)))
        }
        problems.push(...builder.problems)
        for (const id of Object.keys(config.operations))
          if (!ids.has(id)) problems.push(`operations.${id}: no such operation in ${file}`)
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        problems.push(...err.problems.map(formatProblem))
      }
    } else {
      for (const key of Object.keys(config.operations)) {
        const m = /^([A-Za-z]+) (\/\S*)$/.exec(key)
        if (!m) {
          problems.push(`operations.${key}: without \`spec\`, keys are \`METHOD /path/{template}\``)
          continue
        }
        try {
          const method = (m[1] as string).toUpperCase()
          const e = entryFor(key, undefined)
          matcher.add(m[2] as string, method, e)
          if (method === 'GET') matcher.add(m[2] as string, 'HEAD', e)
        } catch (err) {
          problems.push(`operations.${key}: ${(err as Error).message}`)
        }
      }
    }
    if (problems.length > 0) throw configError(deps.routeName, problems)
    const fallback = entryFor('', undefined)
    const base = config.basePath
    const limits = { ...DEFAULT_JSON_LIMITS, ...config.json }

    const rolesOf = compileRolesOf(config.rolesClaims)

    function operation(ctx: RequestContext): OpEntry {
      let path = ctx.path
      if (base !== '') {
        if (path === base) path = '/'
        else if (path.startsWith(`${base}/`)) path = path.slice(base.length)
        else return fallback
      }
      const m = matcher.match(path, ctx.method)
      return m.kind === 'found' ? m.match.value : fallback
    }

    function refuse(ctx: RequestContext, entry: OpEntry, violations: RequestViolation[]): never {
      let budget = ECHO_BUDGET
      const list = violations.map((v) => {
        const take = v.pointer.slice(0, Math.max(0, budget))
        budget -= take.length
        return { in: 'body', pointer: take.length < v.pointer.length ? `${take}…` : take, reason: v.reason }
      })
      logger.info(
        { requestId: ctx.id, route: ctx.routeName, operationId: entry.id || undefined, violations: list },
        'property-filter: request refused (mass assignment)',
      )
      throw new GatewayError('GW_ERR_PROPERTY_NOT_ALLOWED', {
        extensions: { violations: list },
        cause: new Error(`${violations.length} property violation(s)`),
      })
    }

    function check(ctx: RequestContext, entry: OpEntry, bytes: Buffer): void {
      if (bytes.length === 0) return
      const mt = mediaTypeOf(ctx.req.headers['content-type'])
      const type = mt?.type ?? ''
      let value: unknown
      if (type === 'application/x-www-form-urlencoded') {
        value = formAsObject(bytes.toString('latin1'))
      } else {
        const json = type === '' || isJsonType(type)
        try {
          value = guardedJsonOf(bytes, limits)
        } catch (err) {
          if (!(err instanceof JsonGuardError)) throw err
          // Declared JSON that does not parse is refused; another type that is not JSON passes
          // (a binary upload), since no JSON parser upstream will read properties from it.
          if (!json) return
          throw new GatewayError('GW_ERR_MALFORMED_BODY', { cause: err })
        }
      }
      const violations = checkRequest(
        value,
        entry.plans?.request ?? [],
        { reserved: entry.reserved, roles: rolesOf(ctx.principal) },
        config.maxViolations,
      )
      if (violations.length > 0) refuse(ctx, entry, violations)
    }

    const instance: PolicyInstance = {
      onRequest(ctx) {
        const entry = operation(ctx)
        ctx.state[STATE] = entry
        // Responses must arrive uncompressed to be filtered (a compressed one is refused).
        ctx.setUpstreamHeader('accept-encoding', 'identity')
        if (config.requests === 'off') return
        if (entry.reserved.size === 0 && !entry.plans?.requestMarked) return
        const h = ctx.req.headers
        const hasBody =
          h['transfer-encoding'] !== undefined ||
          (h['content-length'] !== undefined && h['content-length'] !== '0')
        if (!hasBody) return
        if (config.maxBodyBytes < ctx.bodyLimit) ctx.bodyLimit = config.maxBodyBytes
        return ctx.readBody().then((bytes) => check(ctx, entry, bytes))
      },

      onResponseBody(ctx, head, body) {
        if (head.local || ctx.method === 'HEAD' || body.length === 0) return body
        const ct = head.headers['content-type']
        const mt = mediaTypeOf(typeof ct === 'string' ? ct : undefined)
        if (!mt || !isJsonType(mt.type)) return body
        const entry = (ctx.state[STATE] as OpEntry | undefined) ?? fallback
        const enc = head.headers['content-encoding']
        if (enc !== undefined && enc !== 'identity') {
          logger.warn(
            { requestId: ctx.id, route: ctx.routeName, status: head.status },
            'property-filter: compressed JSON response refused (cannot filter it)',
          )
          throw new GatewayError('GW_ERR_RESPONSE_NOT_FILTERED')
        }
        if (body.length > config.maxBodyBytes) {
          if (config.onOversize === 'pass') {
            logger.warn(
              { requestId: ctx.id, route: ctx.routeName, status: head.status, bytes: body.length },
              'property-filter: response over maxBodyBytes passed unfiltered (onOversize: pass)',
            )
            return body
          }
          logger.warn(
            { requestId: ctx.id, route: ctx.routeName, status: head.status, bytes: body.length },
            'property-filter: response over maxBodyBytes refused',
          )
          throw new GatewayError('GW_ERR_RESPONSE_NOT_FILTERED')
        }
        let value: unknown
        try {
          value = jsonOf(body)
        } catch {
          logger.warn(
            { requestId: ctx.id, route: ctx.routeName, status: head.status },
            'property-filter: response declared as JSON does not parse; refused',
          )
          throw new GatewayError('GW_ERR_RESPONSE_NOT_FILTERED')
        }
        const filtered = filterResponse(value, entry.plans ? responsePlans(entry.plans, head.status) : [], {
          sensitive,
          allowSensitive: entry.allowSensitive,
          restricted: entry.restricted,
          roles: rolesOf(ctx.principal),
        })
        const removal = filtered.removal
        if (removal.count === 0) return body
        // filterResponse replaced objects inside the shared parse (src/openapi/shared-json.ts).
        forgetJson(body)
        // One log line per operation and minute (with how many removals it stands for); every
        // removal is an audit event. A line per response cost ~10% of the gateway's CPU under load.
        const key = `${ctx.routeName}\0${entry.id}`
        const seen = logged.get(key)
        const now = Date.now()
        if (seen === undefined || now - seen.at >= LOG_INTERVAL_MS) {
          logged.set(key, { at: now, since: 0 })
          logger.info(
            {
              requestId: ctx.id,
              route: ctx.routeName,
              operationId: entry.id || undefined,
              removed: removal.names,
              count: removal.count,
              ...(seen !== undefined && seen.since > 0 ? { moreResponsesSinceLastLine: seen.since } : {}),
            },
            'property-filter: properties removed from the response',
          )
        } else seen.since++
        audit.emit({
          type: 'property.removed',
          ...requestFields(ctx),
          operation: entry.id || undefined,
          decision: 'allow',
          status: head.status,
          data: { properties: removal.names, count: removal.count },
        })
        let out: string
        try {
          out = JSON.stringify(filtered.value)
        } catch {
          throw new GatewayError('GW_ERR_RESPONSE_NOT_FILTERED') // nesting too deep to serialize
        }
        const filteredBody = Buffer.from(out)
        // The filtered value is the parse of the new body: openapi-validation (whose body hook runs
        // next) validates it without parsing the body again.
        rememberJson(filteredBody, filtered.value)
        return filteredBody
      },
    }
    return instance
  },
})

/**
 * A form body as an object for the reserved-name check: `a[b][c]=1` and `a.b=1` become nested
 * keys (the conventions of common form parsers), so `user[role]=admin` is caught like JSON.
 */
function formAsObject(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = Object.create(null)
  // The gateway's one urlencoded reader (src/gateway/query.ts): text it refuses is a 400 here too.
  for (const { name } of parseParams(text, { what: 'form body' }).list) {
    const segs = name.split(/[[\].]+/).filter((s) => s !== '')
    let cur = root
    for (const s of segs.slice(0, 32)) {
      const next = Object.hasOwn(cur, s) ? cur[s] : undefined
      if (next !== null && typeof next === 'object') cur = next as Record<string, unknown>
      else {
        const o: Record<string, unknown> = Object.create(null)
        cur[s] = o
        cur = o
      }
    }
  }
  return root
}

/** A config error (the CLI prints its message without a stack, exit code 2). */
function configError(route: string, problems: string[]): Error {
  return new PolicyConfigError('property-filter', route, problems)
}
