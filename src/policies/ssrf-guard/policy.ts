import { dirname, isAbsolute, resolve } from 'node:path'
import { Counter, type Registry } from 'prom-client'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, PolicyConfigError } from '../../gateway/pipeline/policy.js'
import { type Params, parseParams } from '../../gateway/query.js'
import { formatProblem, loadOpenApi, PathMatcher, SpecError } from '../../openapi/index.js'
import { DEFAULT_JSON_LIMITS, JsonGuardError, parseJsonGuarded } from '../../openapi/json-guard.js'
import { HostResolver, type ResolverOptions } from '../../ssrf/resolver.js'
import { UrlGuard, type UrlVerdict } from '../../ssrf/url-guard.js'
import { CidrSet, cidrListProblems } from '../../util/cidr.js'
import {
  boundaryOf,
  DEFAULT_MULTIPART_LIMITS,
  MultipartError,
  MultipartParser,
} from '../openapi-validation/multipart.js'
import {
  configTargets,
  isEmpty,
  jsonCandidates,
  mergeTargets,
  needsBody,
  operationTargets,
  type Targets,
  type UrlCandidate,
} from './fields.js'
import { SsrfGuardConfig } from './schema.js'

/**
 * Resolvers shared by every route and config generation with the same DNS settings, so that the
 * cache survives reloads and is not split per route. Bounded (a config has few distinct settings).
 */
const resolvers = new Map<string, HostResolver>()
function sharedResolver(o: ResolverOptions): HostResolver {
  const key = JSON.stringify(o)
  let r = resolvers.get(key)
  if (r === undefined) {
    r = new HostResolver(o)
    resolvers.set(key, r)
    if (resolvers.size > 16) resolvers.delete(resolvers.keys().next().value as string)
  }
  return r
}

/** `portcullis_ssrf_blocked_total`, registered once per registry (it outlives reloads). */
function blockedCounter(registry: Registry): Counter<'route' | 'reason'> {
  const name = 'portcullis_ssrf_blocked_total'
  const have = registry.getSingleMetric(name)
  if (have) return have as Counter<'route' | 'reason'>
  return new Counter({
    name,
    help: 'Requests refused by ssrf-guard, by route and reason (loopback, private, metadata, ambiguous, …).',
    labelNames: ['route', 'reason'] as const,
    registers: [registry],
  })
}

const FORM = 'application/x-www-form-urlencoded'
const MULTIPART = 'multipart/form-data'

function mediaType(h: string | undefined): string {
  if (h === undefined) return ''
  const semi = h.indexOf(';')
  return (semi === -1 ? h : h.slice(0, semi)).trim().toLowerCase()
}

/**
 * API7 (server-side request forgery): URL-valued request inputs are checked before the request is
 * forwarded — scheme, host allow/deny lists, ambiguous forms, and the addresses the host resolves
 * to (no loopback, private, link-local, CGNAT, metadata, …). See docs/policies/ssrf-guard.md.
 */
export const ssrfGuard = definePolicy({
  id: 'ssrf-guard',
  priority: 5900, // after openapi-validation (6000): it checks the body as it will be forwarded
  description:
    'Refuses requests carrying URLs the API must not fetch (API7 SSRF): URL inputs from the spec (`format: uri|url`) and the config (names, JSON pointers, query, headers, form fields) must use an allowed scheme and host, be unambiguous, and resolve only to public addresses (400 GW_ERR_SSRF_BLOCKED naming the field).',
  schema: SsrfGuardConfig,
  checkByBuilding: true,
  create(config, deps) {
    const problems = [
      ...cidrListProblems('allowAddresses', config.allowAddresses),
      ...cidrListProblems('denyAddresses', config.denyAddresses),
    ]
    if (config.dns.minTtlSec > config.dns.maxTtlSec) problems.push('dns.minTtl: more than dns.maxTtl')
    if (problems.length > 0) throw new PolicyConfigError('ssrf-guard', deps.routeName, problems)
    const resolver = sharedResolver({
      servers: config.dns.servers,
      timeoutMs: config.dns.timeoutMs,
      tries: config.dns.tries,
      maxEntries: config.dns.cacheEntries,
      minTtlSec: config.dns.minTtlSec,
      maxTtlSec: config.dns.maxTtlSec,
      negativeTtlSec: config.dns.negativeTtlSec,
      hostsFile: config.dns.hostsFile,
    })
    const guard = new UrlGuard({
      schemes: config.schemes,
      allowHosts: config.allowHosts,
      denyHosts: config.denyHosts,
      addresses: {
        allow: config.allowAddresses.length > 0 ? CidrSet.from(config.allowAddresses) : undefined,
        deny: config.denyAddresses.length > 0 ? CidrSet.from(config.denyAddresses) : undefined,
      },
      ports: config.ports,
      allowUserinfo: config.allowUserinfo,
      maxLength: config.maxUrlLength,
      onDnsError: config.dns.onError,
      resolver,
    })

    const routeTargets = configTargets(config.fields)
    let matcher: PathMatcher<Targets> | undefined
    if (config.spec !== undefined) {
      const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
      try {
        const spec = loadOpenApi(file, { rootDir: dirname(file) })
        matcher = new PathMatcher<Targets>()
        for (const op of spec.operations)
          matcher.add(op.path, op.method, mergeTargets(routeTargets, operationTargets(spec, op)))
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        throw new PolicyConfigError(
          'ssrf-guard',
          deps.routeName,
          err.problems.map((p) => `spec: ${formatProblem(p)}`),
        )
      }
    }
    const base = config.basePath
    const counter = deps.metrics ? blockedCounter(deps.metrics) : undefined
    const { audit, logger } = deps

    const targetsOf = (ctx: RequestContext): Targets => {
      if (matcher === undefined) return routeTargets
      let path = ctx.path
      if (base !== '') {
        if (path === base) path = '/'
        else if (path.startsWith(`${base}/`)) path = path.slice(base.length)
        else return routeTargets
      }
      const m = matcher.match(path, ctx.method === 'HEAD' ? 'GET' : ctx.method)
      return m.kind === 'found' ? m.match.value : routeTargets
    }

    const refuse: (
      ctx: RequestContext,
      c: Pick<UrlCandidate, 'in' | 'field'>,
      v: UrlVerdict & { ok: false },
    ) => never = (
      ctx: RequestContext,
      c: Pick<UrlCandidate, 'in' | 'field'>,
      v: UrlVerdict & { ok: false },
    ): never => {
      counter?.labels(ctx.routeName, v.reason).inc()
      const field = c.field.slice(0, 256)
      audit.emit({
        type: 'ssrf.blocked',
        ...requestFields(ctx),
        decision: 'deny',
        code: 'GW_ERR_SSRF_BLOCKED',
        reason: v.reason,
        data: {
          in: c.in,
          field,
          ...(v.host !== undefined ? { host: v.host } : {}),
          ...(v.address ? { address: v.address } : {}),
        },
      })
      logger.info(
        { requestId: ctx.id, route: ctx.routeName, in: c.in, field, reason: v.reason, host: v.host },
        'ssrf-guard: URL refused',
      )
      // The client learns which field, never why (a reason would map the internal network for it).
      throw new GatewayError('GW_ERR_SSRF_BLOCKED', {
        detail: `${c.in} ${c.in === 'body' ? 'field' : 'parameter'} "${field}" holds a URL the API may not fetch`,
        extensions: { field: { in: c.in, name: field } },
      })
    }

    /** Checks the candidates in order; the first refused one decides. */
    const judge = (ctx: RequestContext, list: UrlCandidate[]): void | Promise<void> => {
      if (list.length === 0) return
      if (list.length > config.maxUrls)
        refuse(ctx, list[config.maxUrls] as UrlCandidate, { ok: false, reason: 'too-many-urls' })
      let pending: { c: UrlCandidate; p: Promise<UrlVerdict> }[] | undefined
      for (const c of list) {
        const v = guard.check(c.value, c.reference)
        if (v instanceof Promise) {
          pending ??= []
          pending.push({ c, p: v })
        } else if (!v.ok) {
          if (pending === undefined) refuse(ctx, c, v)
          // An earlier candidate is still resolving: report in order once it has.
          pending.push({ c, p: Promise.resolve(v) })
        }
      }
      if (pending === undefined) return
      const waiting = pending
      return Promise.all(waiting.map((x) => x.p)).then((verdicts) => {
        verdicts.forEach((v, i) => {
          if (!v.ok) refuse(ctx, (waiting[i] as { c: UrlCandidate }).c, v)
        })
      })
    }

    // Query strings and form bodies go through the gateway's one urlencoded reader: a malformed
    // escape is a 400, and a name spelled several ways (`imageUrl`, `IMAGEURL`, `imageUrl[]`: some
    // servers read them as one) is refused as parameter pollution rather than half-checked.
    const fromParams = (
      where: 'query' | 'form',
      params: Params,
      named: ReadonlyMap<string, { reference: boolean; list: boolean; explode: boolean }>,
      t: Targets,
      out: UrlCandidate[],
    ): void => {
      for (const name of new Set([...named.keys(), ...t.names])) {
        const target = named.get(name)
        for (const value of params.values(name)) {
          const parts = where === 'query' && target?.list && !target.explode ? value.split(',') : [value]
          for (const v of parts)
            out.push({ in: where, field: name, value: v, reference: target?.reference ?? false })
        }
      }
    }

    const fromQuery = (ctx: RequestContext, t: Targets, out: UrlCandidate[]): void => {
      if (ctx.query === '' || (t.query.size === 0 && t.names.size === 0)) return
      fromParams('query', ctx.queryParams(), t.query, t, out)
    }

    const fromHeaders = (ctx: RequestContext, t: Targets, out: UrlCandidate[]): void => {
      for (const [name, target] of t.headers) {
        const h = ctx.req.headers[name]
        if (h === undefined) continue
        for (const v of Array.isArray(h) ? h : [h])
          for (const part of target.list ? v.split(',').map((s) => s.trim()) : [v])
            out.push({ in: 'header', field: name, value: part, reference: target.reference })
      }
    }

    const fromForm = (t: Targets, fields: Iterable<[string, string]>, out: UrlCandidate[]) => {
      for (const [name, value] of fields) {
        const target = t.form.get(name)
        if (target === undefined && !t.names.has(name)) continue
        out.push({ in: 'form', field: name, value, reference: target?.reference ?? false })
      }
    }

    const fromBody = (ctx: RequestContext, t: Targets, body: Buffer, out: UrlCandidate[]): void => {
      if (body.length === 0) return
      const type = mediaType(ctx.req.headers['content-type'])
      if (type === FORM) {
        if (t.form.size > 0 || t.names.size > 0)
          fromParams('form', parseParams(body.toString('utf8'), { what: 'form body' }), t.form, t, out)
        return
      }
      if (type === MULTIPART) {
        const boundary = boundaryOf(ctx.req.headers['content-type'])
        const fields: [string, string][] = []
        try {
          if (boundary === undefined) throw new MultipartError(400, 'no valid boundary')
          const parser = new MultipartParser(
            boundary,
            DEFAULT_MULTIPART_LIMITS,
            (_n, filename) => filename !== undefined,
          )
          parser.write(body)
          for (const p of parser.end())
            if (p.text !== undefined) fields.push([p.name, p.text.toString('utf8')])
        } catch (err) {
          if (!(err instanceof MultipartError)) throw err
          if (t.form.size > 0 || t.names.size > 0)
            throw new GatewayError('GW_ERR_MALFORMED_BODY', {
              detail: 'the multipart body cannot be inspected for URLs',
            })
          return
        }
        fromForm(t, fields, out)
        return
      }
      if (t.pointers.length === 0 && t.names.size === 0) return
      // Whatever the Content-Type says: an upstream may parse JSON regardless of it.
      const text = body.toString('utf8')
      const first = text.trimStart().charCodeAt(0)
      if (first !== 0x7b && first !== 0x5b && first !== 0xfeff) return
      let value: unknown
      try {
        value = parseJsonGuarded(text, DEFAULT_JSON_LIMITS)
      } catch (err) {
        if (!(err instanceof JsonGuardError)) throw err
        let lenient = false
        try {
          JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
          lenient = true
        } catch {
          // not JSON for anyone: the upstream cannot read URLs from it either
        }
        if (!lenient) return
        // Duplicate keys, a byte order mark, hostile sizes: parsers would disagree on its content.
        throw new GatewayError('GW_ERR_MALFORMED_BODY', {
          detail: `the JSON body cannot be inspected for URLs: ${err.message}`,
        })
      }
      out.push(...jsonCandidates(value, t.pointers, t.names))
    }

    return {
      onRequest(ctx) {
        const t = targetsOf(ctx)
        if (isEmpty(t)) return
        const out: UrlCandidate[] = []
        fromQuery(ctx, t, out)
        fromHeaders(ctx, t, out)
        const h = ctx.req.headers
        const hasBody =
          needsBody(t) &&
          (h['transfer-encoding'] !== undefined ||
            (h['content-length'] !== undefined && h['content-length'] !== '0'))
        if (!hasBody) return judge(ctx, out)
        if (config.maxBodyBytes < ctx.bodyLimit) ctx.bodyLimit = config.maxBodyBytes
        return ctx.readBody().then((body) => {
          fromBody(ctx, t, body, out)
          return judge(ctx, out)
        })
      },
    }
  },
})
