import { createHash, randomBytes } from 'node:crypto'
import { requestFields } from '../../audit/event.js'
import {
  accountHash,
  basicUser,
  LOGIN_STATE,
  type LoginAttempt,
  MAX_ACCOUNT_CHARS,
  normalizeIdentity,
} from '../../detect/identity.js'
import { GatewayError, toProblem } from '../../gateway/errors.js'
import type { RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { isStoreError } from '../../stores/types.js'
import { BruteForceLockoutConfig } from './schema.js'

/** Largest login body read for the account name (a login form or JSON is a few hundred bytes). */
const MAX_LOGIN_BODY = 64 * 1024

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

/** Reads the account name from a JSON body field; undefined when absent or not JSON. */
function fromJson(body: Buffer, field: string): string | undefined {
  if (body.length === 0 || body.length > MAX_LOGIN_BODY) return undefined
  try {
    const v = (JSON.parse(body.toString('utf8')) as Record<string, unknown> | null)?.[field]
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

/** Reads the account name from a form body field (the first occurrence); undefined when absent. */
function fromForm(body: Buffer, field: string): string | undefined {
  if (body.length === 0 || body.length > MAX_LOGIN_BODY) return undefined
  return new URLSearchParams(body.toString('utf8')).get(field) ?? undefined
}

/** `acctip:` subject: one account tried from one address (hashed together; neither is readable). */
function accountAddress(account: string, ip: string): string {
  return `acctip:${createHash('sha256').update(`${account}\n${ip}`).digest('base64url').slice(0, 22)}`
}

/**
 * Brute-force and credential-guessing lockout (OWASP API2/API4). Failed authentications — the
 * gateway's own 401s and the upstream's (a wrong password on a login route) — are counted per
 * client IP, per account and/or per account and address in the shared store, over a sliding
 * window; after `maxFailures` the source is refused with 429 and Retry-After, for a lockout that
 * grows with each repeat (an account can be asked for a second factor instead: `accountAction:
 * step-up`), and optionally slowed by progressive delays before that.
 */
export const bruteForceLockout = definePolicy({
  id: 'brute-force-lockout',
  priority: 9500, // before authentication: a locked-out source costs no signature check
  description:
    'Locks out a client IP, an account or an account from one address after repeated failed authentications (429 + Retry-After, growing lockouts, optional progressive delays; a second factor for the account instead of a lock with accountAction: step-up), shared through the store.',
  schema: BruteForceLockoutConfig,
  create(config, { store, logger, now, audit }) {
    const failureStatuses = new Set(config.failureStatuses)
    const byIp = config.by.includes('ip')
    const cred = config.credential
    const jsonField = cred?.jsonField
    const formField = cred?.formField
    const header = cred?.header
    const basic = cred?.basicAuth === true
    const readsAccount = jsonField !== undefined || formField !== undefined || header !== undefined || basic
    const byAccount = config.by.includes('credential') && readsAccount
    const byAccountIp = config.by.includes('ip-credential') && readsAccount
    if (
      (config.by.includes('credential') || config.by.includes('ip-credential')) &&
      !readsAccount &&
      !config.by.includes('ip')
    ) {
      const err = new Error(
        'brute-force-lockout: by names credential or ip-credential but credential (jsonField, formField, header or basicAuth) does not say where the account name is; nothing would be counted',
      )
      err.name = 'ConfigError'
      throw err
    }
    const normalization = cred?.normalize
    const stepUpAccounts = config.accountAction === 'step-up'
    const windowMs = config.windowSec * 1000
    // Failure members: unique per failure (a random prefix per policy instance and a counter).
    const eventPrefix = `${randomBytes(6).toString('base64url')}.`
    let events = 0

    /** The account name a request names, normalized; undefined when it names none. */
    const accountOf = async (ctx: RequestContext): Promise<string | undefined> => {
      let raw: string | undefined
      if (header !== undefined) {
        const h = ctx.req.headers[header]
        if (typeof h === 'string') raw = h
      }
      if (raw === undefined && basic) {
        const a = ctx.req.headers.authorization
        if (typeof a === 'string') raw = basicUser(a)
      }
      if (
        raw === undefined &&
        (jsonField !== undefined || formField !== undefined) &&
        ctx.method !== 'GET' &&
        ctx.method !== 'HEAD'
      ) {
        const ct = (ctx.req.headers['content-type'] ?? '').toLowerCase()
        if (jsonField !== undefined && ct.includes('json')) raw = fromJson(await ctx.readBody(), jsonField)
        else if (formField !== undefined && ct.startsWith('application/x-www-form-urlencoded'))
          raw = fromForm(await ctx.readBody(), formField)
      }
      if (raw === undefined || raw.length > MAX_ACCOUNT_CHARS) return undefined
      return normalizeIdentity(raw, normalization)
    }

    /** The subjects a request is counted against (`ip:<ip>`, `acct:<hash>`, `acctip:<hash>`) and its account hash. */
    const attemptOf = async (ctx: RequestContext): Promise<LoginAttempt> => {
      const subjects: string[] = []
      if (byIp) subjects.push(`ip:${ctx.clientIp}`)
      let account: string | undefined
      if (readsAccount) {
        const name = await accountOf(ctx)
        if (name !== undefined) {
          account = accountHash(name)
          if (byAccount) subjects.push(`acct:${account}`)
          if (byAccountIp) subjects.push(accountAddress(account, ctx.clientIp))
        }
      }
      return { subjects, account, failureStatuses }
    }

    /** An account subject under `accountAction: step-up`: never refused, asked for a second factor. */
    const stepsUp = (subject: string) => stepUpAccounts && subject.startsWith('acct:')

    const lockout = async (subject: string, ctx: RequestContext): Promise<void> => {
      const level = (await store.counters.incr(`bfl:level:${subject}`, 1, config.historySec * 1000)).value
      const seconds = Math.min(
        config.maxLockoutSec,
        Math.ceil(config.lockoutSec * config.backoffFactor ** (level - 1)),
      )
      const until = now() + seconds * 1000
      const kind = stepsUp(subject) ? 'step-up' : 'lock'
      await store.kv.set(
        `bfl:${kind === 'lock' ? 'lock' : 'stepup'}:${subject}`,
        String(until),
        seconds * 1000,
      )
      // The subject is `ip:<address>`, `acct:<hash>` or `acctip:<hash>`: never the account name itself.
      audit.emit({
        type: 'lockout',
        ...requestFields(ctx),
        decision: kind === 'lock' ? 'deny' : 'allow',
        ...(kind === 'lock' ? { code: 'GW_ERR_LOCKED_OUT' } : {}),
        data: { subject, kind, level, seconds, until: new Date(until).toISOString() },
      })
      logger.warn(
        {
          event: 'lockout',
          subject,
          kind,
          level,
          lockoutSec: seconds,
          requestId: ctx.id,
          route: ctx.routeName,
        },
        kind === 'lock'
          ? 'brute-force lockout'
          : 'brute-force lockout: second factor required for the account',
      )
    }

    /** A short wait (progressive delay) after the `n`th failure of a subject, when configured. */
    const delay = async (subject: string, n: number): Promise<void> => {
      const d = config.delay
      if (d === undefined || n < d.afterFailures || stepsUp(subject)) return
      const seconds = Math.min(d.maxSec, d.baseSec * 2 ** Math.min(n - d.afterFailures, 20))
      const until = now() + seconds * 1000
      // Never shortens a lockout already in place (a delay after a lock would replace it).
      await store.kv.setIfAbsent(`bfl:lock:${subject}`, String(until), seconds * 1000)
    }

    /** Counts one failure of `subject`; locks it out (or delays it) when due. */
    const fail = async (subject: string, ctx: RequestContext): Promise<void> => {
      const key = `bfl:fail:${subject}`
      // One member per failure, expiring windowSec after it: the set's size is a sliding count.
      await store.sets.add(key, `${eventPrefix}${(++events).toString(36)}`, windowMs)
      const n = await store.sets.size(key)
      if (n >= config.maxFailures) {
        // Locked-out requests are not counted, so a lock ends the run of failures; the members
        // still in the window make the next failure after the lock lock again (for longer).
        // Failures in flight when the lock was set cross too: one lockout for them all.
        if (await store.kv.setIfAbsent(`bfl:locking:${subject}`, '1', 2000)) await lockout(subject, ctx)
        return
      }
      await delay(subject, n)
    }

    // uniformFailures: every failed login answered alike (user enumeration, OWASP API2).
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
              const left = () => uniform.minDurationMs - (performance.now() - ctx.startTime)
              const wait = left()
              if (wait > 0) {
                // A timer counts from the event loop's cached clock, which lags behind
                // performance.now() on a busy process: it can fire early. Wait again for what is
                // left, so that no failure is ever answered before minDurationMs.
                for (let w = wait; w > 0; w = left()) await new Promise((r) => setTimeout(r, Math.ceil(w)))
              } else if (uniform.minDurationMs > 0 && now() - slowWarned > 60_000) {
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
      stripRequestHeaders: [config.stepUpHeader],
      async onRequest(ctx) {
        try {
          const attempt = await attemptOf(ctx)
          ctx.state[LOGIN_STATE] = attempt
          let stepUp = false
          for (const subject of attempt.subjects) {
            if (stepsUp(subject)) {
              if ((await store.kv.get(`bfl:stepup:${subject}`)) !== undefined) stepUp = true
              continue
            }
            const until = await store.kv.get(`bfl:lock:${subject}`)
            if (until === undefined) continue
            const retry = Math.max(1, Math.ceil((Number(until) - now()) / 1000))
            throw new GatewayError('GW_ERR_LOCKED_OUT', { headers: { 'retry-after': String(retry) } })
          }
          if (stepUp) ctx.setUpstreamHeader(config.stepUpHeader, 'required')
        } catch (err) {
          if (!isStoreError(err)) throw err
          logger.error({ err: err.message, requestId: ctx.id }, 'lockout store unavailable')
          if (!config.failOpen) throw new GatewayError('GW_ERR_STATE_UNAVAILABLE', { cause: err })
        }
      },
      onLog(entry) {
        if (!failureStatuses.has(entry.status) || entry.errorCode === 'GW_ERR_LOCKED_OUT') return
        const attempt = entry.ctx.state[LOGIN_STATE] as LoginAttempt | undefined
        if (!attempt) return
        for (const subject of attempt.subjects) {
          fail(subject, entry.ctx).catch((err: unknown) =>
            logger.error(
              { err: (err as Error).message },
              isStoreError(err) ? 'lockout store unavailable' : 'lockout failed',
            ),
          )
        }
      },
    }
  },
})
