import type { Logger } from 'pino'
import { GatewayError } from '../../gateway/errors.js'
import type { RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { createMemoryStore, type MemoryStore } from '../../stores/memory/memory-store.js'
import { isStoreError, type Store } from '../../stores/types.js'
import { type Decision, decide, decideSync, type LimitParams } from './algorithms.js'
import { acquireInsurance, type StoreHealth } from './insurance.js'
import { compileKey, JSON_BODY, type KeyResult, MAX_JSON_KEY_BODY, needsJsonBody } from './keys.js'
import { ConcurrencyTable } from './load.js'
import { type Limit, RateLimitConfig } from './schema.js'
import { ThrottleQueues, type WaitHandle } from './throttle.js'

const PERIODS = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const

/** Most requests waiting in the throttle queues of one policy instance (all keys together). */
const MAX_WAITING = 10_000
/** Keys kept by the local insurance store. */
const LOCAL_MAX_KEYS = 100_000

interface CompiledLimit {
  name: string
  params: LimitParams
  /** Store key prefix: `rl:<route or *>:<name>:<algorithm>:`. */
  prefix: string
  key: (ctx: RequestContext) => KeyResult
  onMissing: Limit['onMissingKey']
  methods: ReadonlySet<string> | undefined
  failOpen: boolean
  code: 'GW_ERR_RATE_LIMITED' | 'GW_ERR_QUOTA_EXCEEDED'
  /** The local insurance share, cached per instance count. */
  local: { instances: number; params: LimitParams } | undefined
}

/** What one request's limits decided (for the response headers). */
interface Applied {
  limit: CompiledLimit
  /** The store key of this request for the limit. */
  key: string
  decision: Decision | undefined
}

/** Per-request state, in `ctx.state['rate-limit']`. */
interface RequestState {
  applied: Applied[]
  concurrencyKey: string | undefined
  wait: WaitHandle | undefined
}

const OPEN: Decision = { allowed: true, remaining: 0, resetMs: 0, retryAfterMs: 0, delayMs: 0 }

export function periodMs(per: Limit['per']): number {
  return typeof per === 'number' ? per : PERIODS[per]
}

function compileLimit(l: Limit, index: number, routeName: string): CompiledLimit {
  const name = l.name ?? `l${index + 1}`
  const perMs = periodMs(l.per)
  const burst = l.algorithm === 'gcra' ? (l.burst ?? l.rate) : l.rate
  const where = `route ${routeName}: rate-limit limits[${index}] (${name})`
  if (l.cost > burst) throw new Error(`${where}: cost ${l.cost} is larger than the burst ${burst}`)
  let queue = 0
  if (l.throttle) {
    if (l.algorithm !== 'gcra') throw new Error(`${where}: throttle needs algorithm gcra`)
    queue = Math.min(l.throttle.maxQueue, Math.floor(l.throttle.maxWaitMs / (perMs / l.rate)))
  }
  const scope = l.scope === 'gateway' ? '*' : routeName
  return {
    name,
    params: { algorithm: l.algorithm, rate: l.rate, perMs, burst, cost: l.cost, queue },
    prefix: `rl:${scope}:${name}:${l.algorithm === 'gcra' ? 'g' : 'w'}:`,
    key: withContext(where, () => compileKey(l.key, l.onMissingKey === 'ip')),
    onMissing: l.onMissingKey,
    methods: l.methods ? new Set(l.methods) : undefined,
    failOpen: l.failOpen,
    code: l.code === 'quota-exceeded' ? 'GW_ERR_QUOTA_EXCEEDED' : 'GW_ERR_RATE_LIMITED',
    local: undefined,
  }
}

function withContext<T>(where: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`)
  }
}

/** This instance's share of a limit while the shared store is down. */
export function localShare(p: LimitParams, instances: number): LimitParams {
  if (instances <= 1) return p
  const share = (n: number) => Math.max(1, Math.floor(n / instances))
  const burst = Math.max(p.cost, share(p.burst))
  return {
    ...p,
    rate: p.algorithm === 'gcra' ? p.rate / instances : Math.max(p.cost, share(p.rate)),
    burst,
    queue: p.queue > 0 ? share(p.queue) : 0,
  }
}

/** `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-09): `"name";q=<quota>;w=<window s>`, one per limit. */
export function policyHeader(limits: readonly CompiledLimit[]): string {
  return limits
    .map((l) => `"${l.name}";q=${l.params.rate};w=${Math.max(1, Math.round(l.params.perMs / 1000))}`)
    .join(', ')
}

/** `RateLimit`: `"name";r=<remaining>;t=<seconds to reset>` for the limits that decided this request. */
export function rateLimitHeader(applied: readonly Applied[]): string {
  let out = ''
  for (const a of applied) {
    const d = a.decision
    if (d === undefined || d === OPEN) continue
    const t = Math.ceil((d.allowed ? d.resetMs : Math.max(d.retryAfterMs, 0)) / 1000)
    out += `${out === '' ? '' : ', '}"${a.limit.name}";r=${d.remaining};t=${t}`
  }
  return out
}

function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0 || body.length > MAX_JSON_KEY_BODY) return undefined
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

/**
 * Where a rate-limit hit is reported. The audit log (issue 7) will turn this into an audit event
 * (PolicyDeps.audit); until then it is a debug line (a flood must not flood the gateway log).
 */
function reportLimited(logger: Logger, ctx: RequestContext, what: string, limit: string | undefined): void {
  // AUDIT: rate-limit hit → deps.audit?.record({ event: 'rate-limited', ... }) once PolicyDeps has `audit`.
  logger.debug({ event: what, limit, route: ctx.routeName, requestId: ctx.id }, 'rate limited')
}

/**
 * Rate limiting (OWASP API4 unrestricted resource consumption, API6 business-flow abuse): several
 * limits per route (GCRA or sliding window) keyed by IP, principal, API key, route, header, claim,
 * query or path parameter, JSON body field, or combinations; throttling queues; concurrency caps;
 * exact across gateways sharing a Redis store, with a local insurance limiter
 * during a store outage.
 */
export const rateLimit = definePolicy({
  id: 'rate-limit',
  priority: 7000, // after authentication (7900–8100): limits may key on the principal
  description:
    'Rate limits (GCRA or sliding window) per IP, principal, API key, route, header, claim, path/query parameter or JSON field, with throttling queues and concurrency caps; shared exactly through the store, with local insurance limits during a store outage; 429 + Retry-After and RateLimit / RateLimit-Policy headers.',
  schema: RateLimitConfig,
  create(config, { store, logger, now, routeName }) {
    const limits = config.limits.map((l, i) => compileLimit(l, i, routeName))
    const names = new Set<string>()
    for (const l of limits) {
      if (names.has(l.name)) throw new Error(`route ${routeName}: rate-limit: two limits named ${l.name}`)
      names.add(l.name)
    }
    const jsonBody = config.limits.some((l) => needsJsonBody(l.key))
    const policyHeaderValue = limits.length > 0 ? policyHeader(limits) : undefined

    // Insurance: only a store that can fail (Redis) needs it.
    const insured = store.backend !== 'memory' && limits.length > 0
    let health: StoreHealth | undefined
    let instances = () => 1
    let releaseInsurance = () => {}
    if (insured) {
      const auto = config.instances === 'auto'
      const ins = acquireInsurance(store, logger, config.probeIntervalMs, auto)
      health = ins.health
      releaseInsurance = ins.release
      const fixed = config.instances
      instances = typeof fixed === 'number' ? () => fixed : ins.instances
    }
    let localStore: MemoryStore | undefined
    const local = (): Store => {
      localStore ??= createMemoryStore({ maxKeys: LOCAL_MAX_KEYS, now })
      return localStore
    }

    const run = async (l: CompiledLimit, key: string, nowMs: number): Promise<Decision> => {
      if (health === undefined) return decide(store, key, l.params, nowMs)
      if (!health.isDown) {
        try {
          return await decide(store, key, l.params, nowMs)
        } catch (err) {
          if (!isStoreError(err)) throw err
          health.markDown(err.message)
        }
      }
      if (!l.failOpen) throw new GatewayError('GW_ERR_STATE_UNAVAILABLE')
      if (!config.localFallback) return OPEN
      const n = instances()
      if (l.local?.instances !== n) l.local = { instances: n, params: localShare(l.params, n) }
      return decide(local(), key, l.local.params, nowMs)
    }

    const throttle = limits.some((l) => l.params.queue > 0) ? new ThrottleQueues(MAX_WAITING) : undefined
    const conc = config.concurrency
    const concurrency = conc ? new ConcurrencyTable(conc.max, conc.maxKeys) : undefined
    const concurrencyKey = conc ? compileKey(conc.key, true) : undefined

    const stateOf = (ctx: RequestContext): RequestState => {
      let s = ctx.state['rate-limit'] as RequestState | undefined
      if (s === undefined) {
        s = { applied: [], concurrencyKey: undefined, wait: undefined }
        ctx.state['rate-limit'] = s
      }
      return s
    }

    // In-process decisions (the memory store, GCRA limits): no promise, so a request the limits
    // admit goes on synchronously.
    const allSync =
      !insured && store.gcra.gcraSync !== undefined && limits.every((l) => l.params.algorithm === 'gcra')

    /** The limits that apply to this request, with their keys (recorded in `s.applied`). */
    const applicable = (ctx: RequestContext, s: RequestState): CompiledLimit[] => {
      const out: CompiledLimit[] = []
      for (const l of limits) {
        if (l.methods && !l.methods.has(ctx.method)) continue
        const k = l.key(ctx)
        if (!('key' in k)) {
          if (l.onMissing === 'skip') continue
          throw new GatewayError('GW_ERR_BAD_REQUEST', {
            detail: `rate limit ${l.name}: the request lacks its key`,
          })
        }
        s.applied.push({ limit: l, key: l.prefix + k.key, decision: undefined })
        out.push(l)
      }
      return out
    }

    /** Acts on the decisions: 429 when one denies, a throttle wait when one delays. */
    const conclude = (ctx: RequestContext, s: RequestState, decisions: Decision[]): void | Promise<void> => {
      let denied: CompiledLimit | undefined
      let retryMs = 0
      let delayMs = 0
      let delayed: Applied | undefined
      for (let i = 0; i < decisions.length; i++) {
        const d = decisions[i] as Decision
        const a = s.applied[i] as Applied
        a.decision = d
        if (!d.allowed) {
          if (d.retryAfterMs >= retryMs) denied = a.limit
          retryMs = Math.max(retryMs, d.retryAfterMs)
        } else if (d.delayMs > delayMs) {
          delayMs = d.delayMs
          delayed = a
        }
      }
      if (denied) {
        reportLimited(logger, ctx, 'rate-limited', denied.name)
        throw new GatewayError(denied.code, {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))) },
        })
      }
      // Throttling: wait for the reserved slot, FIFO per key.
      if (delayed !== undefined && throttle) {
        if (!throttle.hasRoom()) {
          reportLimited(logger, ctx, 'throttle-full', delayed.limit.name)
          throw new GatewayError('GW_ERR_RATE_LIMITED', {
            headers: { 'retry-after': String(Math.max(1, Math.ceil(delayMs / 1000))) },
          })
        }
        const wait = throttle.wait(delayed.key, delayMs)
        s.wait = wait
        return wait.promise.then(() => {
          s.wait = undefined
        })
      }
    }

    /** Every applicable limit, in parallel (one round trip of latency on Redis). */
    const decideAll = async (ctx: RequestContext, s: RequestState): Promise<void> => {
      const nowMs = now()
      const apply = applicable(ctx, s)
      const decisions = await Promise.all(apply.map((l, i) => run(l, (s.applied[i] as Applied).key, nowMs)))
      await conclude(ctx, s, decisions)
    }

    return {
      onRequest(ctx) {
        const s = stateOf(ctx)
        // 1. Concurrency cap (released in the log phase, which also runs when the client goes away).
        if (concurrency && concurrencyKey) {
          const k = concurrencyKey(ctx)
          const key = 'key' in k ? k.key : `ip=${ctx.clientIp}`
          const r = concurrency.acquire(key)
          if (r === 'table-full')
            throw new GatewayError('GW_ERR_OVERLOADED', { headers: { 'retry-after': '1' } })
          if (r === 'full') {
            reportLimited(logger, ctx, 'concurrency-limited', undefined)
            throw new GatewayError('GW_ERR_CONCURRENCY_LIMITED', { headers: { 'retry-after': '1' } })
          }
          s.concurrencyKey = key
        }
        if (limits.length === 0) return
        // 2. The JSON body, once, when a key needs a field of it.
        if (jsonBody && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
          const ct = ctx.req.headers['content-type']
          if (ct?.toLowerCase().includes('json')) {
            return ctx.readBody().then((body) => {
              ;(ctx as RequestContext & { [JSON_BODY]?: unknown })[JSON_BODY] = parseJsonBody(body)
              return decideAll(ctx, s)
            })
          }
        }
        // 3. The limits: in-process without a promise when the store allows it.
        if (allSync) {
          const apply = applicable(ctx, s)
          const decisions: Decision[] = []
          for (let i = 0; i < apply.length; i++) {
            const l = apply[i] as CompiledLimit
            decisions.push(decideSync(store, (s.applied[i] as Applied).key, l.params) as Decision)
          }
          return conclude(ctx, s, decisions)
        }
        return decideAll(ctx, s)
      },

      onResponse(ctx: RequestContext, res: ResponseHead) {
        if (!config.headers || policyHeaderValue === undefined) return
        res.headers['ratelimit-policy'] = policyHeaderValue
        const s = ctx.state['rate-limit'] as RequestState | undefined
        if (s === undefined || s.applied.length === 0) return
        const v = rateLimitHeader(s.applied)
        if (v !== '') res.headers.ratelimit = v
      },

      onLog(entry) {
        const s = entry.ctx.state['rate-limit'] as RequestState | undefined
        if (s === undefined) return
        if (s.wait) {
          // The client went away while its request waited in a throttle queue.
          s.wait.cancel(new GatewayError('GW_ERR_RATE_LIMITED'))
          s.wait = undefined
        }
        if (s.concurrencyKey !== undefined) {
          concurrency?.release(s.concurrencyKey)
          s.concurrencyKey = undefined
        }
      },

      close() {
        throttle?.close(new GatewayError('GW_ERR_SHUTTING_DOWN'))
        releaseInsurance()
        void localStore?.close()
      },
    }
  },
})
