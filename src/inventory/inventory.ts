/**
 * The API inventory engine: fed every finished request from the log phase (one per process, bound
 * at start, like the detection engine), it maps the request to an operation and counts it; sampled
 * requests are classified (headers, query, a request body a policy buffered, the response body
 * copied by a bounded tee) and their JSON fields recorded.
 *
 * Per request (the hot path): two Map lookups for the path → operation cache, a few Map updates
 * for the counts, a hash of the principal id when it changed. Templating a new path, classifying
 * and parsing bodies happen only for new paths and samples.
 *
 * State: with the memory store the counts live here. With Redis every gateway adds what it counted
 * every `flushIntervalMs` into one hash per operation (`hashes.update`: sums, min/max, sketch
 * registers), so the inventory read from any gateway is the merged one, and survives restarts.
 */
import type { Logger } from 'pino'
import { coarseNow } from '../util/coarse-clock.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import type { RequestContext } from '../gateway/pipeline/context.js'
import { isStoreError, type Store } from '../stores/types.js'
import type { DataClassId } from './classify/classes.js'
import { scanForm, scanHeaders, scanJson, scanText, typeOf } from './classify/scan.js'
import type { InventoryConfig } from './config.js'
import { mergeFields, OpStats } from './op-stats.js'
import type { SpecIndex } from './spec-index.js'
import { isParamSegment, segmentKind, Templater } from './templater.js'
import { buildOperations, type InventoryView } from './view.js'

export const OPS_SET = 'inventory:ops'
export const COLLAPSED_SET = 'inventory:collapsed'
export const SINCE_KEY = 'inventory:since'
export const opHashKey = (id: string): string => `inventory:op:${id}`

/** Path → operation cache entries kept (all methods together) before it is cleared. */
const CACHE_MAX = 20_000
/** Operations updated in the store per batch of a flush. */
const FLUSH_BATCH = 64

interface Cached {
  op: OpStats
  /** The template's segments (to type path parameters on samples). */
  segments: string[]
}

/** A bounded copy of a sampled response body, taken as it streams. */
export class ResponseTee {
  private readonly chunks: Buffer[] = []
  size = 0
  truncated = false
  constructor(
    readonly status: number,
    readonly contentType: string,
    readonly headers: Readonly<Record<string, unknown>>,
    private readonly max: number,
  ) {}

  /** Copies (part of) a chunk while under the bound. */
  push(chunk: Buffer): void {
    if (this.truncated) return
    const room = this.max - this.size
    if (chunk.length > room) {
      this.truncated = true
      if (room > 0) this.chunks.push(Buffer.from(chunk.subarray(0, room)))
      this.size = this.max
      return
    }
    this.chunks.push(Buffer.from(chunk))
    this.size += chunk.length
  }

  body(): Buffer {
    return Buffer.concat(this.chunks, this.size)
  }
}

export interface InventoryOptions {
  config: InventoryConfig
  store: Store
  spec: SpecIndex
  logger: Logger
  now?: () => number
}

/** Media types whose bodies are classified. */
function classifiable(ct: string): 'json' | 'form' | 'text' | undefined {
  if (ct.includes('json')) return 'json'
  if (ct.startsWith('application/x-www-form-urlencoded')) return 'form'
  if (ct.startsWith('text/') || ct.includes('xml')) return 'text'
  return undefined
}

function headerString(v: unknown): string {
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0] ?? '') : v === undefined ? '' : String(v)
}

export class Inventory {
  readonly config: InventoryConfig
  private readonly store: Store
  private readonly spec: SpecIndex
  private readonly logger: Logger
  private readonly now: () => number
  private readonly templater: Templater
  private readonly ops = new Map<string, OpStats>()
  private readonly cache = new Map<string, Map<string, Cached>>()
  private cacheSize = 0
  private readonly every: number
  private reqTick = 0
  private resTick = 0
  private readonly tees = new WeakMap<object, ResponseTee>()
  private pendingTees = 0
  private needRekey = false
  private readonly shared: boolean
  /** Field records of a failed flush, sent with the next one. */
  private readonly retry = new Map<string, Record<string, number>>()
  private readonly newCollapses = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> | undefined
  private observingSince: number
  private closed = false
  /** Observations that threw (bugs): counted, logged once a minute at most. */
  private failures = 0
  private lastFailureLog = 0

  constructor(o: InventoryOptions) {
    this.config = o.config
    this.store = o.store
    this.spec = o.spec
    this.logger = o.logger.child({ component: 'inventory' })
    this.now = o.now ?? coarseNow
    this.templater = new Templater({
      maxLiterals: o.config.maxSegmentValues,
      maxNodes: o.config.maxOperations * 20,
    })
    this.templater.onCollapse = (prefix) => {
      this.needRekey = true
      this.newCollapses.add(prefix)
    }
    this.every = o.config.sampleRate > 0 ? Math.max(1, Math.round(1 / o.config.sampleRate)) : 0
    this.shared = o.store.backend === 'redis'
    this.observingSince = this.now()
    if (this.shared) {
      this.timer = setInterval(() => void this.flush(), o.config.flushIntervalMs)
      this.timer.unref()
    }
  }

  /** Operations held by this gateway (bounded by maxOperations + one overflow entry per method). */
  get size(): number {
    return this.ops.size
  }

  /** Trie nodes of the templater (bounded). */
  get templaterSize(): number {
    return this.templater.size
  }

  /** The operation a request falls under (cached by exact path). */
  private resolve(method: string, path: string): Cached {
    let byPath = this.cache.get(method)
    if (byPath === undefined) {
      if (this.cache.size >= 32) this.clearCache() // methods are free-form tokens: bound them too
      byPath = new Map()
      this.cache.set(method, byPath)
    }
    const hit = byPath.get(path)
    if (hit !== undefined) return hit
    const m = this.spec.match(method, path)
    const template =
      m.kind === 'found' ? m.op.template : m.kind === 'method' ? m.template : this.templater.template(path)
    let key = `${method} ${template}`
    let op = this.ops.get(key)
    if (op === undefined) {
      if (this.ops.size >= this.config.maxOperations) {
        key = `${method.length <= 16 ? method : 'OTHER'} (overflow)`
        op = this.ops.get(key)
      }
      if (op === undefined) {
        op = new OpStats(key)
        this.ops.set(key, op)
      }
    }
    const entry: Cached = { op, segments: template.split('/') }
    if (this.cacheSize >= CACHE_MAX) this.clearCache()
    ;(this.cache.get(method) ?? this.cache.set(method, new Map()).get(method))?.set(path, entry)
    this.cacheSize++
    if (this.needRekey) this.rekey()
    return entry
  }

  private clearCache(): void {
    this.cache.clear()
    this.cacheSize = 0
  }

  /** After a collapse: ops learned under the collapsed segment fold into the collapsed template. */
  private rekey(): void {
    this.needRekey = false
    this.clearCache()
    for (const [key, op] of [...this.ops]) {
      const sp = key.indexOf(' ')
      const method = key.slice(0, sp)
      const template = key.slice(sp + 1)
      if (template === '(overflow)' || this.spec.byTemplate(method, template)) continue
      const next = `${method} ${this.templater.template(template)}`
      if (next === key) continue
      const into = this.ops.get(next)
      this.ops.delete(key)
      if (into) into.absorb(op)
      else {
        const moved = new OpStats(next)
        moved.absorb(op)
        this.ops.set(next, moved)
      }
      // What this gateway already flushed under the old key is folded when read (see view()).
    }
  }

  /**
   * Response phase hook: a bounded copy of the response body for a sampled request (undefined for
   * the others). The gateway pushes the body's chunks into it.
   */
  responseTee(
    ctx: RequestContext,
    status: number,
    headers: Readonly<Record<string, unknown>>,
  ): ResponseTee | undefined {
    if (this.closed || ctx.path === '') return undefined
    const c = this.resolve(ctx.method, ctx.path)
    const op = c.op
    const warm = op.resSeen++ < this.config.warmupSamples
    if (!warm) {
      if (this.every === 0 || ++this.resTick < this.every) return undefined
      this.resTick = 0
    }
    const ct = headerString(headers['content-type']).toLowerCase()
    const enc = headerString(headers['content-encoding']).toLowerCase()
    if (enc !== '' && enc !== 'identity') return undefined
    const tee = new ResponseTee(status, ct, headers, this.config.maxSampleBytes)
    this.tees.set(ctx, tee)
    this.pendingTees++
    return tee
  }

  /** Log phase: counts a finished request. Never throws. */
  observe(entry: LogEntry): void {
    try {
      this.observeUnsafe(entry)
    } catch (err) {
      this.failures++
      const t = this.now()
      if (t - this.lastFailureLog > 60_000) {
        this.lastFailureLog = t
        this.logger.error({ err, failures: this.failures }, 'inventory: observation failed')
      }
    }
  }

  private observeUnsafe(entry: LogEntry): void {
    const ctx = entry.ctx
    if (this.closed || ctx.path === '') return
    const c = this.resolve(ctx.method, ctx.path)
    const op = c.op
    const h = ctx.req.headers
    const principal = ctx.principal?.id
    const credentialed =
      principal !== undefined ||
      h.authorization !== undefined ||
      h.cookie !== undefined ||
      h['x-api-key'] !== undefined
    op.count(
      this.now(),
      entry.status,
      entry.durationMs,
      entry.decision,
      entry.errorCode,
      principal,
      credentialed,
    )
    const q = ctx.query
    if (q !== '') {
      if (q !== op.lastQuery) {
        op.lastQuery = q
        op.lastQueryNames = queryNames(q)
      }
      for (const name of op.lastQueryNames) op.add(`q:${name}`, 1)
    }
    let tee: ResponseTee | undefined
    if (this.pendingTees > 0) {
      tee = this.tees.get(ctx)
      if (tee !== undefined) {
        this.tees.delete(ctx)
        this.pendingTees--
      }
    }
    if (tee !== undefined) this.sampleResponse(op, tee, entry.status)
    const warm = op.seen <= this.config.warmupSamples
    if (!warm) {
      if (this.every === 0 || ++this.reqTick < this.every) return
      this.reqTick = 0
    }
    this.sampleRequest(op, c.segments, ctx)
  }

  /**
   * A sink counting each class once per message under `where` (`c:`) and each field path once
   * under `pathWhere` (`cp:`; responses keep their status there, for the declared-field check).
   */
  private classSink(op: OpStats, where: string, pathWhere = where): (cls: DataClassId, path: string) => void {
    const seen = new Set<string>()
    return (cls, path) => {
      const k = `${where}|${cls}`
      if (!seen.has(k)) {
        seen.add(k)
        op.add(`c:${k}`, 1)
      }
      const kp = `${pathWhere}|${cls}|${path}`
      if (!seen.has(kp)) {
        seen.add(kp)
        op.add(`cp:${kp}`, 1)
      }
    }
  }

  private sampleRequest(op: OpStats, segments: string[], ctx: RequestContext): void {
    op.add('sm:req', 1)
    const h = ctx.req.headers
    scanHeaders(h, this.classSink(op, 'reqh'))
    if (ctx.query !== '') {
      scanForm(ctx.query, this.classSink(op, 'query'))
      for (const part of ctx.query.split('&').slice(0, 64)) {
        const eq = part.indexOf('=')
        if (eq <= 0) continue
        const name = safeDecode(part.slice(0, eq))
        op.add(`qt:${name.slice(0, 64)}|${scalarType(safeDecode(part.slice(eq + 1)))}`, 1)
      }
    }
    // Path parameter types, by ordinal.
    const segs = ctx.path.split('/')
    let ordinal = 0
    for (let i = 1; i < segments.length && i < segs.length; i++) {
      if (!isParamSegment(segments[i] as string)) continue
      op.add(`pp:${ordinal}|${scalarType(segs[i] as string)}`, 1)
      ordinal++
    }
    const ct = headerString(h['content-type']).toLowerCase()
    if (ct !== '') op.add(`ct:req:${ct.split(';')[0]?.trim().slice(0, 64)}`, 1)
    const body = ctx.body
    if (body !== undefined && body.length > 0) {
      const slice =
        body.length > this.config.maxSampleBytes ? body.subarray(0, this.config.maxSampleBytes) : body
      this.classifyBody(op, 'req', classifiable(ct), slice, body.length > slice.length)
    }
  }

  private sampleResponse(op: OpStats, tee: ResponseTee, status: number): void {
    const where = `res:${status}`
    op.add(`sm:${where}`, 1)
    if (tee.contentType !== '') op.add(`ct:res:${tee.contentType.split(';')[0]?.trim().slice(0, 64)}`, 1)
    const hs: Record<string, string> = {}
    for (const [k, v] of Object.entries(tee.headers))
      if (k === 'set-cookie' || k.startsWith('x-')) hs[k] = headerString(v)
    scanHeaders(hs, this.classSink(op, 'resh'))
    if (tee.size > 0) this.classifyBody(op, where, classifiable(tee.contentType), tee.body(), tee.truncated)
  }

  private classifyBody(
    op: OpStats,
    where: string,
    kind: 'json' | 'form' | 'text' | undefined,
    body: Buffer,
    truncated: boolean,
  ): void {
    if (kind === undefined) return
    const both = this.classSink(op, where.startsWith('res') ? 'res' : where, where)
    const text = body.toString('utf8')
    if (kind === 'json' && !truncated) {
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        scanText(text, '$', both)
        return
      }
      const fieldSeen = new Map<string, number>()
      scanJson(value, both, (path, type) => {
        const k = `f:${where}|${path}|${type}`
        fieldSeen.set(k, (fieldSeen.get(k) ?? 0) + 1)
      })
      for (const [k, n] of fieldSeen) op.add(k, n)
      return
    }
    if (kind === 'form') scanForm(text, both, '$.')
    else scanText(text, '$', both)
  }

  /** Adds what this gateway counted to the shared inventory (Redis); no-op with the memory store. */
  flush(): Promise<void> {
    if (!this.shared) return Promise.resolve()
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined
    })
    return this.flushing
  }

  private sinceStored = false

  private async flushOnce(): Promise<void> {
    if (!this.sinceStored) {
      // The first gateway to flush starts the shared inventory's "observing since".
      this.sinceStored = await this.store.kv.setIfAbsent(SINCE_KEY, String(this.observingSince)).then(
        () => true,
        () => false,
      )
    }
    if (this.needRekey) this.rekey()
    const batch = new Map<string, Record<string, number>>(this.retry)
    this.retry.clear()
    for (const op of this.ops.values()) {
      if (!op.dirty) continue
      const f = op.toFields(true)
      op.reset()
      const prev = batch.get(op.key)
      if (prev) mergeFields(prev, f)
      else batch.set(op.key, f)
    }
    const retention = this.config.retentionDays * 86_400_000
    const entries = [...batch]
    let failed: unknown
    for (let i = 0; i < entries.length; i += FLUSH_BATCH) {
      const part = entries.slice(i, i + FLUSH_BATCH)
      const results = await Promise.allSettled(
        part.map(async ([key, fields]) => {
          const upd: {
            incr: Record<string, number>
            max: Record<string, number>
            min: Record<string, number>
          } = {
            incr: {},
            max: {},
            min: {},
          }
          for (const [f, v] of Object.entries(fields)) {
            const target = f === 't0' ? upd.min : f === 't1' || f.startsWith('h:') ? upd.max : upd.incr
            Object.defineProperty(target, f, { value: v, enumerable: true })
          }
          await this.store.hashes.update(opHashKey(key), upd, retention)
          await this.store.sets.add(OPS_SET, key, retention)
        }),
      )
      results.forEach((r, j) => {
        if (r.status === 'rejected') {
          failed ??= r.reason
          const [key, fields] = part[j] as [string, Record<string, number>]
          if (this.retry.size < this.config.maxOperations) this.retry.set(key, fields)
        }
      })
    }
    try {
      for (const p of this.newCollapses) await this.store.sets.add(COLLAPSED_SET, p, retention)
      this.newCollapses.clear()
      for (const p of await this.store.sets.members(COLLAPSED_SET, 1000)) this.templater.applyCollapse(p)
      if (this.needRekey) this.rekey()
    } catch (err) {
      failed ??= err
    }
    if (failed !== undefined) {
      this.logger.warn(
        { err: isStoreError(failed) ? failed.message : failed, pending: this.retry.size },
        'inventory: flush to the store failed; retrying with the next one',
      )
    }
  }

  /** The inventory: merged across gateways with Redis, this gateway's with the memory store. */
  async view(): Promise<InventoryView> {
    if (this.needRekey) this.rekey()
    const records = new Map<string, Record<string, number>>()
    let since = this.observingSince
    if (this.shared) {
      const s = await this.store.kv.get(SINCE_KEY)
      if (s !== undefined && Number.isFinite(Number(s))) since = Math.min(since, Number(s))
      for (const p of await this.store.sets.members(COLLAPSED_SET, 1000)) this.templater.applyCollapse(p)
      if (this.needRekey) this.rekey()
      const keys = await this.store.sets.members(OPS_SET, this.config.maxOperations * 4)
      for (let i = 0; i < keys.length; i += FLUSH_BATCH) {
        const part = keys.slice(i, i + FLUSH_BATCH)
        const got = await Promise.all(part.map((k) => this.store.hashes.getAll(opHashKey(k))))
        for (let j = 0; j < part.length; j++)
          this.fold(records, part[j] as string, got[j] as Record<string, number>)
      }
      for (const [k, f] of this.retry) this.fold(records, k, f)
      for (const op of this.ops.values()) if (op.dirty) this.fold(records, op.key, op.toFields(true))
    } else {
      for (const op of this.ops.values()) this.fold(records, op.key, op.toFields(false))
    }
    const now = this.now()
    const operations = buildOperations(records, {
      now,
      observingSince: since,
      unusedAfterMs: this.config.unusedAfterDays * 86_400_000,
      spec: this.spec,
    })
    return {
      generatedAt: new Date(now).toISOString(),
      observingSince: new Date(since).toISOString(),
      specs: { operations: this.spec.size, problems: [...this.spec.problems] },
      store: this.store.backend,
      bounds: {
        maxOperations: this.config.maxOperations,
        operations: records.size,
        collapsedSegments: this.templater.collapsedPrefixes(),
      },
      operations,
    }
  }

  /** Adds a record under its current key (a template learned before a collapse folds into it). */
  private fold(
    records: Map<string, Record<string, number>>,
    key: string,
    fields: Record<string, number>,
  ): void {
    if (Object.keys(fields).length === 0) return
    const sp = key.indexOf(' ')
    let k = key
    if (sp > 0) {
      const method = key.slice(0, sp)
      const template = key.slice(sp + 1)
      if (template !== '(overflow)' && !this.spec.byTemplate(method, template) && template.startsWith('/')) {
        k = `${method} ${this.templater.template(template)}`
      }
    }
    const cur = records.get(k)
    if (cur) mergeFields(cur, fields)
    else records.set(k, { ...fields })
  }

  /** Stops the flush timer and flushes what is left (Redis). */
  async close(): Promise<void> {
    if (this.closed) return
    clearInterval(this.timer)
    this.timer = undefined
    if (this.shared) await this.flush().catch(() => undefined)
    this.closed = true
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/** The names in a query string, decoded, at most 32, each at most 64 characters. */
function queryNames(q: string): string[] {
  const out: string[] = []
  for (const part of q.split('&')) {
    if (out.length >= 32) break
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = safeDecode(eq === -1 ? part : part.slice(0, eq)).slice(0, 64)
    if (!out.includes(name)) out.push(name)
  }
  return out
}

/** A scalar's type for parameters: integer, number, boolean, or string (with a format). */
function scalarType(v: string): string {
  if (/^-?\d{1,15}$/.test(v)) return 'integer'
  if (/^-?\d+\.\d+$/.test(v)) return 'number'
  if (v === 'true' || v === 'false') return 'boolean'
  const k = segmentKind(v)
  if (k === 'uuid') return 'string:uuid'
  if (k === 'date') return v.length === 10 ? 'string:date' : 'string:date-time'
  if (k === 'email') return 'string:email'
  return typeOf(v)
}
