/**
 * The ownership lookup: an HTTP callout that tells who owns an object (or whether this principal
 * may access it), with a bounded LRU cache of positive and negative answers and one request in
 * flight per key. Every failure is a LookupError: the policy answers 503 (fail closed).
 */
import type { Static } from '@sinclair/typebox'
import { Agent, request } from 'undici'
import { TtlLru } from '../../util/ttl-lru.js'
import type { LookupConfig } from './schema.js'
import { getPointer, parsePointer } from './selectors.js'

export type LookupAnswer =
  /** The object's owner (does not depend on who asks: cacheable for everyone, and learned). */
  | { kind: 'owner'; owner: string }
  /** Whether this principal may access it. */
  | { kind: 'allowed'; allowed: boolean }
  /** No such object (for this caller). */
  | { kind: 'not-found' }

export class LookupError extends Error {
  override readonly name = 'LookupError'
}

export interface LookupRequest {
  type: string
  id: string
  principal: string
  headers: Readonly<Record<string, string | string[] | undefined>>
}

export class OwnershipLookup {
  private readonly agent: Agent
  private readonly cache: TtlLru<LookupAnswer>
  private readonly inflight = new Map<string, Promise<LookupAnswer>>()
  private readonly ownerPtr
  private readonly allowedPtr
  private readonly forward: string[]
  /** Answers depend on the caller (an `allowed` answer, or forwarded credentials): key by principal. */
  private readonly perPrincipal: boolean

  constructor(
    private readonly cfg: Static<typeof LookupConfig>,
    private readonly now: () => number,
  ) {
    if ((cfg.owner === undefined) === (cfg.allowed === undefined))
      throw new Error('lookup: give exactly one of owner and allowed')
    this.ownerPtr = cfg.owner === undefined ? undefined : parsePointer(cfg.owner, false)
    this.allowedPtr = cfg.allowed === undefined ? undefined : parsePointer(cfg.allowed, false)
    this.forward = cfg.forwardHeaders.map((h) => h.toLowerCase())
    this.perPrincipal = cfg.allowed !== undefined || this.forward.length > 0
    this.cache = new TtlLru(cfg.cacheSize, now)
    this.agent = new Agent({
      connect: { timeout: cfg.timeoutMs },
      headersTimeout: cfg.timeoutMs,
      bodyTimeout: cfg.timeoutMs,
      connections: 32,
      keepAliveTimeout: 4000,
    })
    // Fail at startup on a template that cannot become a URL.
    new URL(this.url({ type: 't', id: '1', principal: 'p', headers: {} }))
  }

  private url(r: LookupRequest): string {
    return this.cfg.url.replace(/\{(type|id|principal)\}/g, (_m, k: 'type' | 'id' | 'principal') =>
      encodeURIComponent(r[k]),
    )
  }

  async lookup(r: LookupRequest): Promise<LookupAnswer> {
    // `.` and `..` would be dot segments of the lookup URL (another resource): no such object.
    if (r.id === '.' || r.id === '..') return { kind: 'not-found' }
    const idKey = `${r.type}\u0000${r.id}`
    const principalKey = `${idKey}\u0000${r.principal}`
    // An owner answer holds for every caller; a negative or `allowed` one, when per principal, only for this one.
    const hit = this.cache.get(idKey) ?? (this.perPrincipal ? this.cache.get(principalKey) : undefined)
    if (hit) return hit
    const key = this.perPrincipal ? principalKey : idKey
    let p = this.inflight.get(key)
    if (!p) {
      p = this.fetch(r).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    const answer = await p
    const t = this.now()
    if (answer.kind === 'owner') this.cache.set(idKey, answer, t + this.cfg.cacheTtlSec * 1000)
    else if (answer.kind === 'allowed' && answer.allowed)
      this.cache.set(key, answer, t + this.cfg.cacheTtlSec * 1000)
    else this.cache.set(key, answer, t + this.cfg.negativeCacheTtlSec * 1000)
    return answer
  }

  private async fetch(r: LookupRequest): Promise<LookupAnswer> {
    const headers: Record<string, string> = { accept: 'application/json' }
    for (const h of this.forward) {
      const v = r.headers[h]
      if (typeof v === 'string') headers[h] = v
    }
    let body: string | undefined
    if (this.cfg.method === 'POST') {
      headers['content-type'] = 'application/json'
      body = JSON.stringify({ type: r.type, id: r.id, principal: r.principal })
    }
    const target = this.url(r)
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(target, {
        method: this.cfg.method,
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
      })
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name
      throw new LookupError(`lookup failed: ${code}`, { cause: err })
    }
    const status = res.statusCode
    if (this.cfg.notFoundStatuses.includes(status)) {
      await res.body.dump().catch(() => undefined)
      return { kind: 'not-found' }
    }
    if (status !== 200) {
      await res.body.dump().catch(() => undefined)
      throw new LookupError(`lookup answered ${status}`)
    }
    const max = this.cfg.maxResponseBytes
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > max) {
      res.body.destroy()
      throw new LookupError(`lookup answer of ${declared} bytes is over the limit of ${max}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const c of res.body) {
        size += (c as Buffer).length
        if (size > max) {
          res.body.destroy()
          throw new LookupError(`lookup answer over the limit of ${max} bytes`)
        }
        chunks.push(c as Buffer)
      }
    } catch (err) {
      if (err instanceof LookupError) throw err
      throw new LookupError('lookup: reading the answer failed', { cause: err })
    }
    let json: unknown
    try {
      json = JSON.parse(Buffer.concat(chunks, size).toString('utf8'))
    } catch {
      throw new LookupError('lookup answer is not JSON')
    }
    if (this.ownerPtr) {
      const v = getPointer(json, this.ownerPtr)
      if (typeof v === 'string' && v !== '') return { kind: 'owner', owner: v }
      if (typeof v === 'number' && Number.isFinite(v)) return { kind: 'owner', owner: String(v) }
      throw new LookupError('lookup answer has no owner at the configured pointer')
    }
    const v = getPointer(json, this.allowedPtr ?? [])
    if (typeof v !== 'boolean')
      throw new LookupError('lookup answer has no boolean at the configured pointer')
    return { kind: 'allowed', allowed: v }
  }

  close(): Promise<void> {
    this.cache.clear()
    return this.agent.close()
  }
}
