import { withoutParams } from '../../gateway/query.js'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Counter, type Registry } from 'prom-client'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import {
  definePolicy,
  type PolicyInstance,
  PolicyConfigError,
  logRefusal,
} from '../../gateway/pipeline/policy.js'
import { checkBodyFields, checkFormBody, checkJsonBody } from '../../gateway/method-override.js'
import { formatProblem, SpecError } from '../../openapi/errors.js'
import { fetchRemoteRefs } from '../../openapi/remote.js'
import { DEFAULT_JSON_LIMITS, type JsonLimits } from '../../openapi/json-guard.js'
import { type CompiledOperation, compileApiCached } from './compiled.js'
import {
  mediaTypeOf,
  pickMedia,
  validateFormBody,
  isFilePart,
  validateJsonBody,
  validateMultipartBody,
  validateParams,
  validateTextBody,
  type Violation,
} from './request.js'
import {
  boundaryOf,
  DEFAULT_MULTIPART_LIMITS,
  MultipartError,
  type MultipartLimits,
  MultipartParser,
} from './multipart.js'
import { responseVerdict, validateResponse } from './response.js'
import { OpenApiValidationConfig } from './schema.js'

type Undeclared = 'block' | 'monitor' | 'strip'
interface Modes {
  mode: 'block' | 'monitor'
  query: Undeclared
  props: Undeclared
  responses: 'off' | 'monitor' | 'block' | 'strip'
}

/** What the policy leaves in `ctx.state['openapi-validation']` for later policies. */
export interface OperationInfo {
  /** operationId, or `METHOD /template` when the spec gives none. */
  operationId: string
  method: string
  /** The path template that matched. */
  template: string
  /** Decoded path parameters. */
  pathParams: Readonly<Record<string, string>>
  /** The operation object as written (security, `x-` extensions). */
  raw: Readonly<Record<string, unknown>>
  mode: 'block' | 'monitor'
}

/** The operation the request matched, when the openapi-validation policy ran on the route. */
export function operationOf(ctx: RequestContext): OperationInfo | undefined {
  return ctx.state['openapi-validation'] as OperationInfo | undefined
}

/**
 * Remote documents fetched by `prepare` (the latest fetch per spec file and host list): each load
 * and reload fetches anew, and `create` compiles with what that load fetched.
 */
const fetched = new Map<string, Map<string, string>>()
const remoteKey = (file: string, hosts: readonly string[]) => JSON.stringify([file, hosts])

/** The operation label of requests that match no operation of the spec. */
const NOT_IN_SPEC = '(not in spec)'

/** `portcullis_openapi_violations_total`, registered once per registry (it outlives reloads). */
function violationsCounter(registry: Registry): Counter<'route' | 'operation' | 'phase' | 'mode'> {
  const name = 'portcullis_openapi_violations_total'
  const have = registry.getSingleMetric(name)
  if (have) return have as Counter<'route' | 'operation' | 'phase' | 'mode'>
  return new Counter({
    name,
    help: 'Requests and responses that departed from the OpenAPI spec, by route, operation (operationId, or "(not in spec)"), phase (route, request, response) and mode (block: refused; monitor: passed and logged; strip: repaired and passed).',
    labelNames: ['route', 'operation', 'phase', 'mode'] as const,
    registers: [registry],
  })
}

/** Longest piece of client input any one problem document repeats (in total). */
const ECHO_BUDGET = 100

/**
 * The OpenAPI positive security model on the request side: the route and method must be in the
 * spec, parameters and JSON bodies must match their schemas; undeclared query parameters and
 * body properties are blocked, logged or stripped. See docs/policies/openapi-validation.md.
 */
export const openApiValidation = definePolicy({
  id: 'openapi-validation',
  priority: 6000, // after authentication and rate limits (a flood is refused before its body is parsed)
  checkByBuilding: true,
  description:
    'Validates requests against an OpenAPI 3.0/3.1 spec: undeclared routes and methods (404/405), path/query/header/cookie parameters (parameter pollution refused), JSON bodies (guarded parsing), content types (415); block, monitor or strip, per operation.',
  schema: OpenApiValidationConfig,
  async prepare(config, deps) {
    if (config.allowRemoteHosts.length === 0) return
    const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
    let remote: Map<string, string>
    try {
      remote = await fetchRemoteRefs(file, {
        allowRemoteHosts: config.allowRemoteHosts,
        rootDir: dirname(file),
        timeoutMs: config.remoteTimeoutMs,
      })
    } catch (err) {
      if (!(err instanceof SpecError)) throw err
      throw configError(deps.routeName, err.problems.map(formatProblem))
    }
    const key = remoteKey(file, config.allowRemoteHosts)
    fetched.delete(key)
    fetched.set(key, remote)
    if (fetched.size > 16) fetched.delete(fetched.keys().next().value as string)
  },
  create(config, deps) {
    const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
    const responsesUsed =
      config.responses !== 'off' ||
      Object.values(config.operations).some((o) => o.responses !== undefined && o.responses !== 'off')
    let api: ReturnType<typeof compileApiCached>
    try {
      api = compileApiCached(file, {
        allowRemoteHosts: config.allowRemoteHosts,
        rootDir: dirname(file),
        responses: responsesUsed,
        remote:
          config.allowRemoteHosts.length > 0
            ? fetched.get(remoteKey(file, config.allowRemoteHosts))
            : undefined,
      })
    } catch (err) {
      if (!(err instanceof SpecError)) throw err
      throw configError(deps.routeName, err.problems.map(formatProblem))
    }
    for (const w of api.warnings) deps.logger.warn({ spec: file }, `openapi: ${w}`)
    for (const id of Object.keys(config.operations)) {
      if (!api.byId.has(id))
        throw configError(deps.routeName, [`operations.${id}: no such operation in ${file}`])
    }
    const limits: JsonLimits = { ...DEFAULT_JSON_LIMITS, ...config.json }
    const multipartLimits: MultipartLimits = {
      maxParts: config.multipart.maxParts,
      maxHeaderBytes: config.multipart.maxHeaderBytes,
      maxHeaders: DEFAULT_MULTIPART_LIMITS.maxHeaders,
      maxFieldBytes: config.multipart.maxFieldBytes,
      maxFileBytes: config.multipart.maxFileBytes,
    }
    const base = config.basePath
    const logger = deps.logger
    const refusal = logRefusal(deps)

    const modes = new Map<CompiledOperation, Modes>()
    for (const [id, op] of api.byId) {
      const o = config.operations[id] ?? {}
      modes.set(op, {
        mode: o.mode ?? config.mode,
        query: o.unknownQueryParams ?? config.unknownQueryParams,
        props: o.undeclaredProperties ?? config.undeclaredProperties,
        responses: o.responses ?? config.responses,
      })
    }

    function render(violations: Violation[]): Record<string, unknown>[] {
      let budget = ECHO_BUDGET
      const echo = (s: string): string => {
        const take = s.slice(0, Math.max(0, budget))
        budget -= take.length
        return take.length < s.length ? `${take}…` : take
      }
      return violations.slice(0, config.maxViolations).map((v) => {
        const r: Record<string, unknown> = { in: v.in }
        if (v.name !== undefined) r.name = echo(v.name)
        r.pointer = echo(v.pointer)
        r.expected = v.expected.length > 200 ? `${v.expected.slice(0, 200)}…` : v.expected
        return r
      })
    }

    const counter = deps.metrics ? violationsCounter(deps.metrics) : undefined
    const audit = deps.audit

    /**
     * Every outcome that departs from the spec: the violations metric (by route, operation, phase
     * and mode) and an `openapi.violation` audit event carrying the mode. The event holds where and
     * what kind of violation, never the values or names sent.
     */
    function record(
      ctx: RequestContext,
      operation: string,
      phase: 'route' | 'request' | 'response',
      mode: 'block' | 'monitor' | 'strip',
      violations: readonly { in: string; kind: string }[],
      code?: string,
    ): void {
      counter?.labels(ctx.routeName, operation, phase, mode).inc()
      const seen = new Set<string>()
      const kinds: { in: string; kind: string }[] = []
      for (const v of violations) {
        const k = `${v.in} ${v.kind}`
        if (seen.has(k) || kinds.length >= 20) continue
        seen.add(k)
        kinds.push({ in: v.in, kind: v.kind })
      }
      audit.emit({
        type: 'openapi.violation',
        ...requestFields(ctx),
        operation,
        decision: mode === 'block' ? 'deny' : 'allow',
        ...(code ? { code } : {}),
        data: { mode, phase, violations: violations.length, kinds },
      })
    }

    function deny(ctx: RequestContext, op: CompiledOperation | undefined, violations: Violation[]): never {
      const kinds = new Set(violations.map((v) => v.kind))
      const code = kinds.has('pollution')
        ? 'GW_ERR_PARAMETER_POLLUTION'
        : kinds.has('media-type')
          ? 'GW_ERR_UNSUPPORTED_MEDIA_TYPE'
          : kinds.has('malformed')
            ? 'GW_ERR_MALFORMED_BODY'
            : 'GW_ERR_VALIDATION'
      const list = render(violations)
      refusal(
        `openapi-validation:${code}`,
        { requestId: ctx.id, route: ctx.routeName, operationId: op?.op.id, mode: 'block', violations: list },
        'openapi-validation: request refused',
      )
      record(ctx, op?.op.id ?? NOT_IN_SPEC, 'request', 'block', violations, code)
      throw new GatewayError(code, {
        extensions: { violations: list },
        cause: new Error(`${violations.length} violation(s)`),
      })
    }

    function monitor(
      ctx: RequestContext,
      op: CompiledOperation,
      violations: Violation[],
      what: string,
    ): void {
      record(ctx, op.op.id, 'request', 'monitor', violations)
      logger.warn(
        {
          requestId: ctx.id,
          route: ctx.routeName,
          operationId: op.op.id,
          mode: 'monitor',
          violations: render(violations),
        },
        `openapi-validation: ${what} (monitor mode, passed)`,
      )
    }

    /** A multipart body the parser refuses: too large (413, in every mode) or malformed (400, block mode). */
    function multipartRefusal(ctx: RequestContext, op: CompiledOperation, err: unknown): unknown {
      if (!(err instanceof MultipartError)) return err
      const mode = (modes.get(op) as Modes).mode
      refusal(
        'openapi-validation:multipart',
        { requestId: ctx.id, route: ctx.routeName, operationId: op.op.id, mode, reason: err.message },
        'openapi-validation: multipart body refused',
      )
      record(
        ctx,
        op.op.id,
        'request',
        'block',
        [{ in: 'body', kind: 'malformed' }],
        err.status === 413 ? 'GW_ERR_BODY_TOO_LARGE' : 'GW_ERR_MALFORMED_BODY',
      )
      if (err.status === 413)
        return new GatewayError('GW_ERR_BODY_TOO_LARGE', { detail: err.message, closeConnection: true })
      return new GatewayError('GW_ERR_MALFORMED_BODY', {
        extensions: { violations: [{ in: 'body', pointer: '', expected: err.message }] },
        closeConnection: true,
      })
    }

    const instance: PolicyInstance = {
      onRequest(ctx) {
        let path = ctx.path
        let inBase = true
        if (base !== '') {
          if (path === base) path = '/'
          else if (path.startsWith(`${base}/`)) path = path.slice(base.length)
          else inBase = false
        }
        const m = inBase ? api.matcher.match(path, ctx.method) : ({ kind: 'none' } as const)
        if (m.kind !== 'found') {
          const event = {
            requestId: ctx.id,
            route: ctx.routeName,
            method: ctx.method,
            path: ctx.path.slice(0, 256),
          }
          const where = [{ in: 'path' as const, kind: 'undeclared-route' }]
          if (config.undeclaredRoutes === 'monitor') {
            record(ctx, NOT_IN_SPEC, 'route', 'monitor', where)
            logger.warn(
              { ...event, event: 'shadow-api' },
              'openapi-validation: request not in the spec (monitor mode, passed)',
            )
            return
          }
          if (m.kind === 'method') {
            record(ctx, NOT_IN_SPEC, 'route', 'block', where, 'GW_ERR_METHOD_NOT_IN_SPEC')
            throw new GatewayError('GW_ERR_METHOD_NOT_IN_SPEC', { headers: { Allow: m.allowed.join(', ') } })
          }
          record(ctx, NOT_IN_SPEC, 'route', 'block', where, 'GW_ERR_ROUTE_NOT_IN_SPEC')
          throw new GatewayError('GW_ERR_ROUTE_NOT_IN_SPEC')
        }
        const op = m.match.value
        const mode = modes.get(op) as Modes
        const monitoring = mode.mode === 'monitor'
        const info: OperationInfo = {
          operationId: op.op.id,
          method: op.op.method,
          template: m.match.template,
          pathParams: m.match.params,
          raw: op.op.raw,
          mode: mode.mode,
        }
        ctx.state['openapi-validation'] = info

        const repairs: { in: string; kind: string }[] = []
        const { violations, unknownQuery } = validateParams(
          op,
          ctx.req,
          () => ctx.queryParams(),
          m.match.params,
        )
        if (unknownQuery.length > 0) {
          const unknown: Violation[] = unknownQuery.map((name) => ({
            kind: 'unknown-query',
            in: 'query',
            name,
            pointer: '',
            expected: 'no undeclared query parameter',
          }))
          if (monitoring || mode.query === 'block') violations.push(...unknown)
          else if (mode.query === 'monitor') monitor(ctx, op, unknown, 'undeclared query parameters')
          else {
            repairs.push(...unknown)
            ctx.query = withoutParams(ctx.query, new Set(unknownQuery))
          }
        }

        const h = ctx.req.headers
        const hasBody =
          h['transfer-encoding'] !== undefined ||
          (h['content-length'] !== undefined && h['content-length'] !== '0')
        const body = op.body
        if (!body) {
          if (hasBody)
            violations.push({ kind: 'schema', in: 'body', pointer: '', expected: 'no request body' })
          return finish(ctx, op, monitoring, violations, repairs)
        }
        if (!hasBody) {
          if (body.required)
            violations.push({ kind: 'schema', in: 'body', pointer: '', expected: 'a request body' })
          return finish(ctx, op, monitoring, violations, repairs)
        }
        const mt = mediaTypeOf(h['content-type'])
        const media = mt && mt.type !== '' ? pickMedia(body.media, mt.type) : undefined
        const expectedTypes = body.media.map((x) => x.type).join(', ')
        if (
          !media ||
          (media.kind !== 'other' &&
            mt?.charset !== undefined &&
            mt.charset !== 'utf-8' &&
            mt.charset !== 'utf8' &&
            !(media.kind !== 'json' && mt.charset === 'us-ascii'))
        ) {
          violations.push({
            kind: 'media-type',
            in: 'body',
            pointer: '',
            expected: `Content-Type ${expectedTypes}${media ? ' in UTF-8' : ''}`,
          })
          return finish(ctx, op, monitoring, violations, repairs)
        }
        if (media.kind === 'other') return finish(ctx, op, monitoring, violations, repairs)
        const stripProps = !monitoring && mode.props === 'strip'
        let stripped = false
        const replace = (out: Buffer) => {
          stripped = true
          ctx.body = out
          ctx.setUpstreamHeader('content-length', String(out.length))
        }
        let parser: MultipartParser | undefined
        let boundary = ''
        if (media.kind === 'multipart') {
          const b = boundaryOf(h['content-type'])
          if (b === undefined) {
            violations.push({
              kind: 'malformed',
              in: 'body',
              pointer: '',
              expected: 'a valid multipart boundary',
            })
            return finish(ctx, op, monitoring, violations, repairs)
          }
          boundary = b
          if (config.multipart.maxBodyBytes < ctx.bodyLimit) ctx.bodyLimit = config.multipart.maxBodyBytes
          parser = new MultipartParser(b, multipartLimits, (name, filename) =>
            isFilePart(media, name, filename),
          )
        } else if (config.maxBodyBytes < ctx.bodyLimit) ctx.bodyLimit = config.maxBodyBytes
        // Size limits (413) are refused in every mode; a malformed structure is a violation like
        // any other (monitor mode logs it and passes the body on as it came).
        let malformed: MultipartError | undefined
        const onChunk = parser
          ? (c: Buffer) => {
              if (malformed) return
              try {
                ;(parser as MultipartParser).write(c)
              } catch (err) {
                if (err instanceof MultipartError && err.status === 400 && monitoring) malformed = err
                else throw multipartRefusal(ctx, op, err)
              }
            }
          : undefined
        return ctx.readBody(onChunk).then((bytes) => {
          let r: { violations: Violation[] }
          if (parser) {
            let parts: ReturnType<MultipartParser['end']> = []
            if (!malformed) {
              try {
                parts = parser.end()
              } catch (err) {
                if (err instanceof MultipartError && monitoring) malformed = err
                else throw multipartRefusal(ctx, op, err)
              }
            }
            if (malformed) {
              violations.push({ kind: 'malformed', in: 'body', pointer: '', expected: malformed.message })
              return finish(ctx, op, monitoring, violations, repairs)
            }
            // method-override: a `_method` form field must name the method validated here.
            checkBodyFields(
              ctx,
              parts.map((p) => [p.name, p.file ? undefined : p.text?.toString('utf8')] as const),
            )
            const m = validateMultipartBody(bytes, parts, boundary, media, limits, stripProps)
            if (m.body) replace(m.body)
            r = m
          } else if (media.kind === 'text') r = { violations: validateTextBody(bytes, media, limits) }
          else if (media.kind === 'form') {
            checkFormBody(ctx, bytes.toString('latin1')) // method-override: as for multipart
            const f = validateFormBody(bytes, media, limits, stripProps)
            if (f.body) replace(f.body)
            r = f
          } else {
            const j = validateJsonBody(bytes, media.validate, limits, stripProps)
            checkJsonBody(ctx, j.value) // method-override: a top-level `_method` (Laravel reads it)
            if (j.stripped) replace(Buffer.from(JSON.stringify(j.value)))
            r = j
          }
          const undeclared = r.violations.filter((v) => v.kind === 'undeclared-property')
          let list = r.violations
          if (!monitoring && mode.props === 'monitor' && undeclared.length > 0) {
            monitor(ctx, op, undeclared, 'undeclared body properties')
            list = r.violations.filter((v) => v.kind !== 'undeclared-property')
          }
          violations.push(...list)
          if (stripped) repairs.push({ in: 'body', kind: 'undeclared-property' })
          finish(ctx, op, monitoring, violations, repairs)
        })
      },
    }

    if (responsesUsed) {
      instance.onResponseBody = (ctx, head, body) => {
        const info = operationOf(ctx)
        if (!info || head.local || ctx.method === 'HEAD') return body
        const op = api.byId.get(info.operationId) as CompiledOperation
        const mode = (modes.get(op) as Modes).responses
        if (mode === 'off') return body
        const r = validateResponse(op, head, body, mode === 'strip', config.maxResponseItems)
        const verdict = responseVerdict(mode, head.status, r)
        if (verdict !== 'pass') {
          const violations = r.violations.length > 0 ? r.violations : [undescribedBody(head.status)]
          logger.warn(
            {
              requestId: ctx.id,
              route: ctx.routeName,
              operationId: op.op.id,
              mode,
              status: head.status,
              violations: render(violations),
            },
            verdict === 'refuse'
              ? `openapi-validation: response violates the spec (${mode}): replaced by a 502`
              : `openapi-validation: response violates the spec (${mode}): passed`,
          )
          record(
            ctx,
            op.op.id,
            'response',
            verdict === 'refuse' ? 'block' : mode,
            violations.map((v) => ({ in: 'body', kind: v.kind })),
            verdict === 'refuse' ? 'GW_ERR_UPSTREAM_RESPONSE_INVALID' : undefined,
          )
          if (verdict === 'refuse') throw new GatewayError('GW_ERR_UPSTREAM_RESPONSE_INVALID')
        } else if (r.body)
          record(ctx, op.op.id, 'response', 'strip', [{ in: 'body', kind: 'undeclared-property' }])
        return r.body ?? body
      }
    }
    return instance

    function undescribedBody(status: number): Violation {
      return {
        kind: 'schema',
        in: 'body',
        pointer: '',
        expected: `a body the spec describes (status ${status})`,
      }
    }

    function finish(
      ctx: RequestContext,
      op: CompiledOperation,
      monitoring: boolean,
      violations: Violation[],
      repairs: readonly { in: string; kind: string }[],
    ): undefined {
      if (violations.length === 0) {
        // Only a request that passes was repaired; a refused one is recorded as refused.
        if (repairs.length > 0) record(ctx, op.op.id, 'request', 'strip', repairs)
        return undefined
      }
      if (monitoring) {
        monitor(ctx, op, violations, 'request violates the spec')
        return undefined
      }
      deny(ctx, op, violations)
    }
  },
})

/** A config error (the CLI prints its message without a stack, exit code 2). */
function configError(route: string, problems: string[]): Error {
  return new PolicyConfigError('openapi-validation', route, problems)
}
