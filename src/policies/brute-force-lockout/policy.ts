import { createHash } from 'node:crypto'
import { requestFields } from '../../audit/event.js'
import { GatewayError, toProblem } from '../../gateway/errors.js'
import type { RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { isStoreError } from '../../stores/types.js'
import { BruteForceLockoutConfig } from './schema.js'

const MAX_ACCOUNT_CHARS = 256

/**
 * Headers a uniform failure keeps: those gateway policies set (security headers, CORS, rate-limit
 * headers) and the framing the gateway sets itself. Everything else the upstream sent (an ETag of
 * its body, a cookie, an `x-user-found`, its own challenge) could tell the failures apart.
 */
const UNIFORM_KEEP = new Set([
  'x-content-type-options',
  'x-frame-options',
  'content-security-policy',
  'referrer-policy',
  'strict-transport-security',
  'permissions-policy',
  'cache-control',
  'vary',
  'ratelimit',
  'ratelimit-policy',
])

/** A short, non-reversible id for an account name: keys and logs never hold the name itself. */
function accountId(name: string): string {
  return createHash('sha256').update(name).digest('base64url').slice(0, 22)
}

/** Reads the account name from a JSON body field; undefined when absent or not JSON. */
function fromJson(body: Buffer, field: string): string | undefined {
  if (body.length === 0) return undefined
  try {
    const v = (JSON.parse(body.toString('utf8')) as Record<string, unknown> | null)?.[field]
    return typeof v === 'string' && v.length > 0 && v.length <= MAX_ACCOUNT_CHARS
      ? v.toLowerCase()
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Brute-force and credential-guessing lockout (OWASP API2/API4). Failed authentications — the
 * gateway's own 401s and the upstream's (a wrong password on a login route) — are counted per
 * client IP and per account in the shared store; after `maxFailures` in `windowSec` the source
 * is refused with 429 and Retry-After, for a lockout that grows with each repeat.
 */
export const bruteForceLockout = definePolicy({
  id: 'brute-force-lockout',
  priority: 9500, // before authentication: a locked-out source costs no signature check
  description:
    'Locks out a client IP or an account after repeated failed authentications (429 + Retry-After, growing lockouts), shared through the store.',
  schema: BruteForceLockoutConfig,
  create(config, { store, logger, now, audit }) {
    const failures = new Set(config.failureStatuses)
    const byIp = config.by.includes('ip')
    const jsonField = config.credential?.jsonField
    const header = config.credential?.header
    const byAccount = config.by.includes('credential') && (jsonField !== undefined || header !== undefined)
    const windowMs = config.windowSec * 1000

    /** The subjects a request is counted against: `ip:<ip>`, `acct:<hash>`. */
    const subjects = async (ctx: RequestContext): Promise<string[]> => {
      const out: string[] = []
      if (byIp) out.push(`ip:${ctx.clientIp}`)
      if (byAccount) {
        let name: string | undefined
        if (header !== undefined) {
          const h = ctx.req.headers[header]
          if (typeof h === 'string' && h.length > 0 && h.length <= MAX_ACCOUNT_CHARS) name = h.toLowerCase()
        }
        if (name === undefined && jsonField !== undefined && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
          const ct = ctx.req.headers['content-type'] ?? ''
          if (ct.toLowerCase().includes('json')) name = fromJson(await ctx.readBody(), jsonField)
        }
        if (name !== undefined) out.push(`acct:${accountId(name)}`)
      }
      return out
    }

    const lockout = async (subject: string, ctx: RequestContext): Promise<void> => {
      const level = (await store.counters.incr(`bfl:level:${subject}`, 1, config.historySec * 1000)).value
      const seconds = Math.min(
        config.maxLockoutSec,
        Math.ceil(config.lockoutSec * config.backoffFactor ** (level - 1)),
      )
      const until = now() + seconds * 1000
      await store.kv.set(`bfl:lock:${subject}`, String(until), seconds * 1000)
      await store.counters.reset(`bfl:fail:${subject}`)
      // The subject is `ip:<address>` or `acct:<hash>`: never the account name itself.
      audit.emit({
        type: 'lockout',
        ...requestFields(ctx),
        decision: 'deny',
        code: 'GW_ERR_LOCKED_OUT',
        data: { subject, level, seconds, until: new Date(until).toISOString() },
      })
      logger.warn(
        { event: 'lockout', subject, level, lockoutSec: seconds, requestId: ctx.id, route: ctx.routeName },
        'brute-force lockout',
      )
    }

    const uniform = config.uniformFailures
    const uniformStatuses = new Set(uniform?.statuses ?? [])
    let slowWarned = 0

    return {
      ...(uniform
        ? {
            async onResponseBody(ctx: RequestContext, head: ResponseHead, body: Buffer): Promise<Buffer> {
              if (head.local || !uniformStatuses.has(head.status)) return body
              const h = head.headers
              // Kept: the gateway's own headers, and the request id (the header whose value is ctx.id).
              const keep = (k: string) =>
                UNIFORM_KEEP.has(k) ||
                k.startsWith('access-control-') ||
                k.startsWith('cross-origin-') ||
                h[k] === ctx.id
              for (const k of Object.keys(h)) if (!keep(k)) delete h[k]
              head.status = uniform.status
              h['content-type'] = 'application/problem+json'
              h['cache-control'] = 'no-store'
              const out = Buffer.from(
                JSON.stringify(toProblem(new GatewayError('GW_ERR_AUTH_INVALID'), undefined).problem),
              )
              const wait = uniform.minDurationMs - (performance.now() - ctx.startTime)
              if (wait > 0) await new Promise((r) => setTimeout(r, wait))
              else if (uniform.minDurationMs > 0 && now() - slowWarned > 60_000) {
                slowWarned = now()
                logger.warn(
                  { route: ctx.routeName, overMs: Math.round(-wait), minDurationMs: uniform.minDurationMs },
                  'uniform failure over minDurationMs: raise it above the slowest failed login',
                )
              }
              return out
            },
          }
        : {}),
      async onRequest(ctx) {
        let list: string[]
        try {
          list = await subjects(ctx)
          ctx.state['brute-force-lockout'] = list
          for (const subject of list) {
            const until = await store.kv.get(`bfl:lock:${subject}`)
            if (until === undefined) continue
            const retry = Math.max(1, Math.ceil((Number(until) - now()) / 1000))
            throw new GatewayError('GW_ERR_LOCKED_OUT', { headers: { 'retry-after': String(retry) } })
          }
        } catch (err) {
          if (!isStoreError(err)) throw err
          logger.error({ err: err.message, requestId: ctx.id }, 'lockout store unavailable')
          if (!config.failOpen) throw new GatewayError('GW_ERR_STATE_UNAVAILABLE', { cause: err })
        }
      },
      onLog(entry) {
        if (!failures.has(entry.status) || entry.errorCode === 'GW_ERR_LOCKED_OUT') return
        const list = entry.ctx.state['brute-force-lockout'] as string[] | undefined
        if (!list) return
        for (const subject of list) {
          store.counters
            .incr(`bfl:fail:${subject}`, 1, windowMs)
            .then(
              (c) => (c.value >= config.maxFailures ? lockout(subject, entry.ctx) : undefined),
              (err: unknown) => logger.error({ err: (err as Error).message }, 'lockout store unavailable'),
            )
            .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'lockout failed'))
        }
      },
    }
  },
})
