import { Counter, type Registry } from 'prom-client'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import { definePolicy, type PolicyInstance } from '../../gateway/pipeline/policy.js'
import { BUILTIN_DETECTORS } from '../../secrets/detectors/index.js'
import { maskValue as maskOf } from '../../secrets/engine.js'
import { scannerFor } from '../../secrets/mask.js'
import { mediaTypeOf } from '../openapi-validation/request.js'
import { pointersAt } from './json-pointer.js'
import { LeakGuardConfig } from './schema.js'

type Labels = 'route' | 'detector' | 'action'

/** `portcullis_leaks_detected_total`, registered once per registry (it outlives reloads). */
function leaksCounter(registry: Registry): Counter<Labels> {
  const name = 'portcullis_leaks_detected_total'
  const have = registry.getSingleMetric(name)
  if (have) return have as Counter<Labels>
  return new Counter({
    name,
    help: 'Credentials and private keys found in upstream responses by leak-guard, by route, detector and action (block, mask, monitor).',
    labelNames: ['route', 'detector', 'action'] as const,
    registers: [registry],
  })
}

/** Most findings named in one log line and one audit event. */
const MAX_REPORTED = 20

/**
 * Response leak guard: scans upstream response bodies (JSON and text) with the secret detectors
 * and blocks, masks or reports credentials and private keys before they reach the client. The
 * body is the buffered response (`onResponseBody`), scanned up to `maxScanBytes` with the
 * engine's work budget. See docs/policies/leak-guard.md.
 */
export const leakGuard = definePolicy({
  id: 'leak-guard',
  // The highest priority of the response-body policies: body hooks run in reverse priority
  // order, so it sees the body last, as the client would get it (after property-filter).
  priority: 9400,
  description:
    'Scans upstream response bodies (JSON and text) for credentials and private keys (the `portcullis secrets` detectors) and blocks the response (502 GW_ERR_RESPONSE_LEAK), masks the values in place, or only reports them; each finding is audited (`leak.detected`, detector and JSON pointer or offset, never the value) and counted.',
  schema: LeakGuardConfig,
  create(config, deps) {
    const excluded = new Set(config.exclude)
    const known = new Set(BUILTIN_DETECTORS.map((d) => d.id))
    const unknown = config.exclude.filter((id) => !known.has(id))
    if (unknown.length > 0) {
      const err = new Error(
        `invalid config: route ${deps.routeName}, leak-guard: exclude: unknown detector(s) ${unknown.join(', ')}`,
      )
      err.name = 'ConfigError'
      throw err
    }
    const detectors = BUILTIN_DETECTORS.filter(
      (d) => !excluded.has(d.id) && (config.generic || (d.specificity ?? 2) > 0),
    )
    // One scanner per detector set, shared across routes and reloads (see secrets/mask.ts).
    const scanner = scannerFor(detectors)
    const counter = deps.metrics ? leaksCounter(deps.metrics) : undefined
    const { logger, audit } = deps
    const types = config.contentTypes.map((t) => t.toLowerCase())
    const matchesType = (ct: string): boolean => {
      const t = mediaTypeOf(ct)?.type ?? ''
      return types.some((p) =>
        p.startsWith('+') ? t.endsWith(p) : p.endsWith('/') ? t.startsWith(p) : t === p,
      )
    }
    // The answers for the Content-Type values seen (an API sends a handful): no header parsing per
    // response. Bounded: past 64 values it is emptied and filled again.
    const typeAnswers = new Map<string, boolean>()
    const scanned = (ct: string | undefined): boolean => {
      if (ct === undefined) return true
      let yes = typeAnswers.get(ct)
      if (yes === undefined) {
        yes = matchesType(ct)
        if (typeAnswers.size >= 64) typeAnswers.clear()
        typeAnswers.set(ct, yes)
      }
      return yes
    }

    const instance: PolicyInstance = {
      onRequest(ctx) {
        // Bodies must arrive uncompressed to be scanned.
        ctx.setUpstreamHeader('accept-encoding', 'identity')
      },
      onResponseBody(ctx, head, body) {
        if (head.local || body.length === 0) return body
        const ct = head.headers['content-type']
        if (!scanned(typeof ct === 'string' ? ct : undefined)) return body
        const fields = { requestId: ctx.id, route: ctx.routeName, status: head.status }
        const enc = head.headers['content-encoding']
        if (enc !== undefined && enc !== 'identity') {
          logger.warn(
            { ...fields, encoding: String(enc) },
            `leak-guard: encoded response ${config.onEncoded === 'block' ? 'refused' : 'passed unscanned'}`,
          )
          if (config.onEncoded === 'block')
            throw new GatewayError('GW_ERR_RESPONSE_LEAK', { cause: new Error('encoded body') })
          return body
        }
        if (body.length > config.maxScanBytes) {
          logger.warn(
            { ...fields, bytes: body.length },
            `leak-guard: response over maxScanBytes ${config.onOversize === 'block' ? 'refused' : 'passed unscanned'}`,
          )
          if (config.onOversize === 'block')
            throw new GatewayError('GW_ERR_RESPONSE_LEAK', { cause: new Error('body over maxScanBytes') })
          return body
        }
        const { matches, stats } = scanner.scan(body)
        if (stats.truncated && config.mode === 'block') {
          logger.warn(fields, 'leak-guard: response not fully scanned (work budget); refused')
          throw new GatewayError('GW_ERR_RESPONSE_LEAK', { cause: new Error('scan budget') })
        }
        if (matches.length === 0) return body
        const json = typeof ct === 'string' && /json/i.test(ct)
        const pointers = json
          ? pointersAt(
              body.toString('latin1'),
              matches.map((m) => m.start),
            )
          : []
        const where = matches.slice(0, MAX_REPORTED).map((m, i) => ({
          detector: m.detector.id,
          ...(pointers[i] !== undefined ? { pointer: pointers[i] } : { offset: m.start }),
          ...(m.encodings.length ? { encodings: m.encodings } : {}),
        }))
        const action = config.mode
        for (const m of matches) counter?.labels(ctx.routeName, m.detector.id, action).inc()
        logger.warn(
          { ...fields, findings: where, count: matches.length, action },
          'leak-guard: credential in an upstream response',
        )
        audit.emit({
          type: 'leak.detected',
          ...requestFields(ctx),
          decision: action === 'block' ? 'deny' : 'allow',
          status: head.status,
          data: { action, count: matches.length, findings: where },
        })
        if (action === 'block') {
          throw new GatewayError('GW_ERR_RESPONSE_LEAK', {
            cause: new Error(`${matches.length} credential(s) in the response`),
          })
        }
        if (action === 'monitor') return body
        const parts: Buffer[] = []
        let pos = 0
        for (const m of matches) {
          parts.push(body.subarray(pos, m.start), Buffer.from(maskOf(m), 'latin1'))
          pos = m.end
        }
        parts.push(body.subarray(pos))
        return Buffer.concat(parts)
      },
    }
    return instance
  },
})
