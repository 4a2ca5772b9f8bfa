import { compileRolesOf } from '../../auth/principal.js'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Static } from '@sinclair/typebox'
import { requestFields } from '../../audit/event.js'
import { compileClaimPath, stringList } from '../../auth/principal.js'
import { type ErrorCode, GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import {
  definePolicy,
  type PolicyInstance,
  PolicyConfigError,
  logRefusal,
} from '../../gateway/pipeline/policy.js'
import { formatProblem, loadOpenApi, type Operation, PathMatcher, SpecError } from '../../openapi/index.js'
import { JsonGuardError, parseJsonGuarded } from '../../openapi/json-guard.js'
import { guardedJsonOf } from '../../openapi/shared-json.js'
import { OWNERSHIP_CHECKED } from '../../detect/signals.js'
import { isStoreError } from '../../stores/types.js'
import { compileLinear, type LinearRegExp } from '../../util/linear-regex.js'
import { LookupError, OwnershipLookup } from './lookup.js'
import { ObjectOwnershipConfig, type ObjectRule, type OwnershipMatch } from './schema.js'
import {
  type CompiledSelector,
  compileSelector,
  extractIds,
  getPointer,
  IdSelectorError,
  idFromLocation,
  idString,
  type PointerToken,
  parsePointer,
  TooManyIdsError,
} from './selectors.js'

const ID = 'object-ownership'
/**
 * A match without `methods`: every method that reads or changes an object. Not OPTIONS: a CORS
 * preflight carries no credentials and no object data.
 */
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
/** Most list items learned from one response (each is a store write). */
export const MAX_LEARNED_PER_LIST = 1000
/** Longest id written to logs and audit records. */
const MAX_ID_IN_LOG = 128

type Match = Static<typeof OwnershipMatch>
type ObjectCfg = Static<typeof ObjectRule>

interface ObjectType {
  type: string
  idPattern: LinearRegExp | undefined
  binding: { equals?: (p: Principal) => string[]; in?: (p: Principal) => string[] } | undefined
  lookup: OwnershipLookup | undefined
  unknown: 'allow' | 'deny'
  allowRoles: readonly string[]
}

interface AccessEntry {
  object: ObjectType
  selectors: CompiledSelector[]
  needsBody: boolean
}

interface LearnEntry {
  object: ObjectType
  location: boolean
  pointer: PointerToken[]
}

interface ListEntry {
  object: ObjectType
  items: PointerToken[]
  id: PointerToken[]
  owner: PointerToken[] | undefined
  learn: boolean
  action: 'filter' | 'block'
}

/** What the request phase leaves for the response phase. */
interface ResponseWork {
  principal: Principal
  privileged: (o: ObjectType) => boolean
  learn: LearnEntry[]
  lists: ListEntry[]
}

/**
 * Operations (method × path template) → entries, with one matcher per kind. A path with a trailing
 * slash is matched without it too (many frameworks route `/orders/2/` as `/orders/2`), and a case
 * variant of a template (`/ORDERS/2`) is reported as such: a case-insensitive upstream would serve
 * it, and its ids cannot be read reliably, so the policy refuses it.
 */
class OpTable<T> {
  private readonly matcher = new PathMatcher<T[]>()
  private readonly lower = new PathMatcher<T[]>()
  private readonly byKey = new Map<string, T[]>()
  private readonly byLowKey = new Set<string>()
  size = 0

  add(template: string, methods: readonly string[] | undefined, value: T): void {
    const ms = new Set((methods ?? ALL_METHODS).map((m) => m.toUpperCase()))
    if (ms.has('GET')) ms.add('HEAD')
    for (const m of ms) {
      const key = `${m} ${template}`
      let arr = this.byKey.get(key)
      if (!arr) {
        arr = []
        this.byKey.set(key, arr)
        this.matcher.add(template, m, arr)
        const lowKey = `${m} ${template.toLowerCase()}`
        if (!this.byLowKey.has(lowKey)) {
          this.byLowKey.add(lowKey)
          this.lower.add(template.toLowerCase(), m, arr)
        }
      }
      arr.push(value)
      this.size++
    }
  }

  match(
    path: string,
    method: string,
  ): { values: T[]; params: Record<string, string>; caseVariant: boolean } | undefined {
    if (this.size === 0) return undefined
    const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
    let m = this.matcher.match(path, method)
    if (m.kind !== 'found' && trimmed !== path) m = this.matcher.match(trimmed, method)
    if (m.kind === 'found') return { values: m.match.value, params: m.match.params, caseVariant: false }
    const low = trimmed.toLowerCase()
    if (low === trimmed) return undefined
    const v = this.lower.match(low, method)
    if (v.kind !== 'found' || v.match.value.length === 0) return undefined
    return { values: v.match.value, params: {}, caseVariant: true }
  }
}

/**
 * Object-level authorization (OWASP API1, BOLA): object ids taken from the request (path, query,
 * headers, JSON body) must be bound to the principal (a claim), owned by it (ownership learned
 * from create operations and the caller's own lists, kept in the store), or confirmed by an
 * ownership lookup; list responses are filtered. Denials answer 404 (or 403). See
 * docs/policies/object-ownership.md.
 */
export const objectOwnership = definePolicy({
  id: ID,
  // After authentication (7900–8100), rate limits (7000) and authorize (6500): a caller who may not
  // call the operation at all is refused before any store or lookup work. Before
  // openapi-validation (6000): a request for someone else's object gets no validation detail.
  priority: 6400,
  checkByBuilding: true,
  description:
    'Object-level authorization (BOLA): object ids from path, query, headers or JSON body must be bound to the principal (claims), owned by it (ownership learned from create operations and own lists, in the store, shared across gateways with Redis) or confirmed by an HTTP ownership lookup (cached, fail closed); list responses with objects of others are filtered or blocked. Denials are 404 by default.',
  schema: ObjectOwnershipConfig,
  create(config, deps) {
    const problems: string[] = []
    const { store, logger, audit } = deps
    const refusal = logRefusal(deps)
    const ttlMs = config.ttlSec * 1000
    const denyCode: ErrorCode =
      config.denyStatus === 404 ? 'GW_ERR_OBJECT_NOT_FOUND' : 'GW_ERR_OBJECT_FORBIDDEN'
    const ns = config.namespace
    const storeKey = (type: string, id: string) => `own:${ns}:${type}:${id}`

    // The spec, for operationIds.
    const ops = new Map<string, Operation>()
    if (config.spec !== undefined) {
      const file = isAbsolute(config.spec) ? config.spec : resolve(deps.baseDir, config.spec)
      try {
        const spec = loadOpenApi(file, { rootDir: dirname(file) })
        for (const op of spec.operations) ops.set(op.id, op)
        for (const w of spec.warnings) deps.logger.warn({ spec: file }, `openapi: ${w}`)
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        throw configError(deps.routeName, err.problems.map(formatProblem))
      }
    }
    /** A match as (template, methods) pairs. */
    const pairs = (m: Match, at: string): { template: string; methods: string[] | undefined }[] => {
      const out: { template: string; methods: string[] | undefined }[] = []
      if (m.path !== undefined && m.operationIds !== undefined)
        problems.push(`${at}: give path or operationIds, not both`)
      if (m.path !== undefined) out.push({ template: m.path, methods: m.methods })
      else if (m.operationIds !== undefined) {
        if (config.spec === undefined) problems.push(`${at}.operationIds: needs \`spec\``)
        for (const id of m.operationIds) {
          const op = ops.get(id)
          if (!op) {
            if (config.spec !== undefined)
              problems.push(`${at}.operationIds: no operation "${id}" in the spec`)
            continue
          }
          if (m.methods && !m.methods.map((x) => x.toUpperCase()).includes(op.method)) continue
          out.push({ template: `${config.basePath}${op.path}`, methods: [op.method] })
        }
      } else problems.push(`${at}: give path or operationIds`)
      return out
    }

    const rolesOf = compileRolesOf(config.rolesClaims)

    const access = new OpTable<AccessEntry>()
    const learnOps = new OpTable<LearnEntry>()
    const listOps = new OpTable<ListEntry>()
    const lookups: OwnershipLookup[] = []
    const types = new Set<string>()

    for (const [i, o] of config.objects.entries()) {
      const at = `objects[${i}] (${o.type})`
      if (types.has(o.type)) problems.push(`${at}.type: "${o.type}" is configured twice`)
      types.add(o.type)
      const object = compileObject(o, at)
      for (const [j, a] of o.access.entries()) {
        const aat = `${at}.access[${j}]`
        const selectors: CompiledSelector[] = []
        for (const s of a.ids) {
          try {
            selectors.push(compileSelector(s))
          } catch (err) {
            problems.push(`${aat}.ids: ${(err as Error).message}`)
          }
        }
        for (const { template, methods } of pairs(a.match, `${aat}.match`)) {
          for (const s of selectors)
            if (s.source === 'path' && !template.includes(`{${s.name}}`))
              problems.push(`${aat}.ids: the path template ${template} has no variable {${s.name}}`)
          access.add(template, methods, {
            object,
            selectors,
            needsBody: selectors.some((s) => s.source === 'body'),
          })
        }
      }
      for (const [j, l] of o.learn.entries()) {
        const lat = `${at}.learn[${j}]`
        const location = l.id === 'header.location'
        const entry: LearnEntry = {
          object,
          location,
          pointer: location ? [] : parsePointer(l.id.slice('body.'.length), false),
        }
        for (const { template, methods } of pairs(l.match, `${lat}.match`))
          learnOps.add(template, methods, entry)
      }
      for (const [j, l] of o.lists.entries()) {
        const lat = `${at}.lists[${j}]`
        const entry: ListEntry = {
          object,
          items: parsePointer(l.items, false),
          id: parsePointer(l.id, false),
          owner: l.owner === undefined ? undefined : parsePointer(l.owner, false),
          learn: l.learn,
          action: l.action,
        }
        if (entry.learn && entry.owner !== undefined)
          problems.push(`${lat}: learn and owner together: the owner pointer already tells the owner`)
        for (const { template, methods } of pairs(l.match, `${lat}.match`))
          listOps.add(template, methods, entry)
      }
      if (o.access.length === 0 && o.lists.length === 0)
        problems.push(`${at}: give access or lists (what the policy checks)`)
      if (o.binding && o.lists.some((l) => l.owner === undefined))
        problems.push(`${at}.lists: with binding, give each list an owner pointer`)
    }

    function compileObject(o: ObjectCfg, at: string): ObjectType {
      let idPattern: LinearRegExp | undefined
      if (o.idPattern !== undefined) {
        try {
          idPattern = compileLinear(o.idPattern)
        } catch (err) {
          problems.push(`${at}.idPattern: ${(err as Error).message}`)
        }
      }
      let binding: ObjectType['binding']
      if (o.binding) {
        const b = o.binding
        if (b.equals === undefined && b.in === undefined) problems.push(`${at}.binding: give equals or in`)
        binding = {}
        if (b.equals !== undefined) {
          if (b.equals === 'principal.id') binding.equals = (p) => [p.id]
          else {
            const g = compileClaimPath(b.equals.slice('claims.'.length))
            binding.equals = (p) => {
              const v = g(p.claims)
              return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? [String(v)] : []
            }
          }
        }
        if (b.in !== undefined) {
          const g = compileClaimPath(b.in.slice('claims.'.length))
          binding.in = (p) => {
            const v = g(p.claims)
            if (Array.isArray(v))
              return v.flatMap((x) =>
                typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)) ? [String(x)] : [],
              )
            return stringList(v, true)
          }
        }
        if (o.lookup || o.learn.length > 0)
          problems.push(`${at}: binding decides alone; drop lookup and learn (or the binding)`)
      }
      let lookup: OwnershipLookup | undefined
      if (o.lookup) {
        try {
          lookup = new OwnershipLookup(o.lookup, deps.now)
          lookups.push(lookup)
        } catch (err) {
          problems.push(`${at}.${(err as Error).message}`)
        }
      }
      return {
        type: o.type,
        idPattern,
        binding,
        lookup,
        unknown: o.unknown,
        allowRoles: o.allowRoles ?? config.allowRoles,
      }
    }

    if (problems.length > 0) {
      for (const l of lookups) void l.close()
      throw configError(deps.routeName, problems)
    }

    const logId = (id: string) => (id.length > MAX_ID_IN_LOG ? `${id.slice(0, MAX_ID_IN_LOG)}…` : id)

    function deny(ctx: RequestContext, type: string, id: string, reason: string): never {
      const object = `${type}:${logId(id)}`
      refusal(
        'object-ownership:deny',
        {
          requestId: ctx.id,
          route: ctx.routeName,
          method: ctx.method,
          object,
          principal: ctx.principal?.id,
          reason,
        },
        'object-ownership: request denied',
      )
      audit.emit({
        ...requestFields(ctx),
        type: 'ownership.deny',
        decision: 'deny',
        objects: [object],
        code: denyCode,
        status: config.denyStatus,
        reason,
      })
      throw new GatewayError(denyCode, { cause: new Error(`object-ownership: ${object}: ${reason}`) })
    }

    function storeFailed(ctx: RequestContext, err: unknown, what: string): void {
      if (!isStoreError(err)) throw err
      if (config.failOpen) {
        ctx.state[OWNERSHIP_CHECKED] = false // detect: let through unchecked
        logger.warn(
          { requestId: ctx.id, route: ctx.routeName, err: (err as Error).message },
          `object-ownership: ${what} skipped: state store unavailable (failOpen)`,
        )
        return
      }
      throw new GatewayError('GW_ERR_STATE_UNAVAILABLE', { cause: err })
    }

    /** Checks one id; resolves when allowed, throws a GatewayError when not. */
    async function checkId(ctx: RequestContext, p: Principal, o: ObjectType, id: string): Promise<void> {
      if (o.idPattern && !o.idPattern.test(id)) deny(ctx, o.type, id, 'id does not match idPattern')
      if (o.binding) {
        const b = o.binding
        if (b.equals && !b.equals(p).includes(id)) deny(ctx, o.type, id, 'id is not bound to the principal')
        if (b.in && !b.in(p).includes(id)) deny(ctx, o.type, id, "id is not in the principal's claim")
        return
      }
      let owner: string | undefined
      try {
        owner = await store.kv.get(storeKey(o.type, id))
      } catch (err) {
        storeFailed(ctx, err, 'ownership check')
        return // failOpen
      }
      if (owner !== undefined) {
        if (owner !== p.id) deny(ctx, o.type, id, 'owned by another principal')
        return
      }
      if (o.lookup) {
        let a: Awaited<ReturnType<OwnershipLookup['lookup']>>
        try {
          a = await o.lookup.lookup({ type: o.type, id, principal: p.id, headers: ctx.req.headers })
        } catch (err) {
          if (!(err instanceof LookupError)) throw err
          logger.warn(
            { requestId: ctx.id, route: ctx.routeName, object: `${o.type}:${logId(id)}`, err: err.message },
            'object-ownership: lookup failed (fail closed)',
          )
          throw new GatewayError('GW_ERR_OWNERSHIP_UNAVAILABLE', { cause: err })
        }
        if (a.kind === 'not-found') deny(ctx, o.type, id, 'lookup: no such object for this principal')
        if (a.kind === 'allowed') {
          if (!a.allowed) deny(ctx, o.type, id, 'lookup: not allowed')
          return
        }
        // Learned: later checks (on any gateway) need no lookup. First one wins; never overwrite.
        try {
          await store.kv.setIfAbsent(storeKey(o.type, id), a.owner, ttlMs)
        } catch (err) {
          if (!isStoreError(err)) throw err
          logger.warn({ err: (err as Error).message }, 'object-ownership: recording a lookup answer failed')
        }
        if (a.owner !== p.id) deny(ctx, o.type, id, 'owned by another principal (lookup)')
        return
      }
      if (o.unknown === 'deny') deny(ctx, o.type, id, 'owner unknown')
      ctx.state[OWNERSHIP_CHECKED] = false // detect: let through, owner unknown
      audit.emit({
        ...requestFields(ctx),
        type: 'ownership.unknown',
        decision: 'allow',
        objects: [`${o.type}:${logId(id)}`],
        reason: 'owner unknown (unknown: allow)',
      })
    }

    const instance: PolicyInstance = {
      onRequest(ctx) {
        const a = access.match(ctx.path, ctx.method)
        const l = learnOps.size > 0 ? learnOps.match(ctx.path, ctx.method) : undefined
        const li = listOps.size > 0 ? listOps.match(ctx.path, ctx.method) : undefined
        if (!a && !l && !li) return undefined
        const p = ctx.principal
        if (!p || p.type === 'anonymous')
          throw new GatewayError('GW_ERR_AUTH_MISSING', { headers: { 'WWW-Authenticate': 'Bearer' } })
        let roles: ReadonlySet<string> | undefined
        const privileged = (o: ObjectType) => {
          if (o.allowRoles.length === 0) return false
          roles ??= rolesOf(p)
          return o.allowRoles.some((r) => (roles as ReadonlySet<string>).has(r))
        }
        if (l || li) {
          // The answer is read (learned ids, list items): ask for it uncompressed.
          ctx.setUpstreamHeader('accept-encoding', 'identity')
          ctx.state[ID] = {
            principal: p,
            privileged,
            learn: l?.values ?? [],
            lists: li?.values ?? [],
          } satisfies ResponseWork
        }
        if (!a) return undefined
        const entries = a.values.filter((e) => !privileged(e.object))
        if (entries.length === 0) return undefined
        if (a.caseVariant) {
          const e = entries[0] as AccessEntry
          deny(ctx, e.object.type, '?', 'the path is a case variant of an object operation')
        }
        if (entries.some((e) => e.needsBody)) {
          const h = ctx.req.headers
          const hasBody =
            h['transfer-encoding'] !== undefined ||
            (h['content-length'] !== undefined && h['content-length'] !== '0')
          if (hasBody) {
            if (config.maxBodyBytes < ctx.bodyLimit) ctx.bodyLimit = config.maxBodyBytes
            return ctx.readBody().then((buf) => {
              let body: unknown
              if (buf.length > 0) {
                try {
                  body = guardedJsonOf(buf)
                } catch (err) {
                  if (!(err instanceof JsonGuardError)) throw err
                  // The ids cannot be read: refuse rather than let the upstream read them its way.
                  throw new GatewayError('GW_ERR_MALFORMED_BODY', {
                    detail: 'the body must be JSON',
                    cause: err,
                  })
                }
              }
              return checkAll(ctx, p, entries, a.params, body)
            })
          }
        }
        return checkAll(ctx, p, entries, a.params, undefined)
      },
    }

    function checkAll(
      ctx: RequestContext,
      p: Principal,
      entries: AccessEntry[],
      params: Record<string, string>,
      body: unknown,
    ): Promise<void> | undefined {
      const query = () => ctx.queryParams()
      const src = { params, query: ctx.query, headers: ctx.req.headers, body }
      const work: [ObjectType, string][] = []
      let total = 0
      for (const e of entries) {
        const ids = new Set<string>()
        try {
          for (const s of e.selectors) extractIds(s, src, ids, config.maxIds, query)
        } catch (err) {
          if (err instanceof TooManyIdsError)
            throw new GatewayError('GW_ERR_BAD_REQUEST', {
              detail: `at most ${config.maxIds} object ids per request`,
            })
          if (err instanceof IdSelectorError)
            throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'an object id has an unexpected form' })
          throw err
        }
        total += ids.size
        if (total > config.maxIds)
          throw new GatewayError('GW_ERR_BAD_REQUEST', {
            detail: `at most ${config.maxIds} object ids per request`,
          })
        for (const id of ids) work.push([e.object, id])
      }
      if (work.length === 0) return undefined
      // detect: every id below is checked; a path that lets one through unchecked says false.
      if (ctx.state[OWNERSHIP_CHECKED] === undefined) ctx.state[OWNERSHIP_CHECKED] = true
      if (work.length === 1) {
        const [o, id] = work[0] as [ObjectType, string]
        return checkId(ctx, p, o, id)
      }
      return Promise.all(work.map(([o, id]) => checkId(ctx, p, o, id))).then(() => undefined)
    }

    if (learnOps.size > 0 || listOps.size > 0) {
      instance.onResponseBody = async (ctx, head, body) => {
        const w = ctx.state[ID] as ResponseWork | undefined
        if (!w || head.local || head.status < 200 || head.status > 299) return body
        let doc: unknown
        let parsed = false
        const json = (): unknown => {
          if (!parsed) {
            parsed = true
            try {
              doc =
                body.length === 0 ? undefined : parseJsonGuarded(body.toString('utf8'), RESPONSE_JSON_LIMITS)
            } catch {
              doc = undefined
            }
          }
          return doc
        }
        for (const e of w.learn) await learn(ctx, w.principal, head, e, json)
        if (ctx.method === 'HEAD') return body
        let changed = false
        for (const e of w.lists) {
          if (await filterList(ctx, w, e, json)) changed = true
        }
        return changed ? Buffer.from(JSON.stringify(doc)) : body
      }
    }

    async function learn(
      ctx: RequestContext,
      p: Principal,
      head: ResponseHead,
      e: LearnEntry,
      json: () => unknown,
    ): Promise<void> {
      const id = e.location ? idFromLocation(head.headers.location) : idString(getPointer(json(), e.pointer))
      if (id === undefined) {
        logger.warn(
          { requestId: ctx.id, route: ctx.routeName, type: e.object.type },
          'object-ownership: a create answer carries no id where configured; nothing learned',
        )
        return
      }
      try {
        // A create makes the caller the owner, even of an id that was once someone else's (reused).
        await store.kv.set(storeKey(e.object.type, id), p.id, ttlMs)
      } catch (err) {
        if (!isStoreError(err)) throw err
        logger.error(
          { requestId: ctx.id, object: `${e.object.type}:${logId(id)}`, err: (err as Error).message },
          'object-ownership: learning an owner failed (state store unavailable)',
        )
      }
    }

    /** Filters (or blocks) one list in place; true when items were removed. */
    async function filterList(
      ctx: RequestContext,
      w: ResponseWork,
      e: ListEntry,
      json: () => unknown,
    ): Promise<boolean> {
      const doc = json()
      const arr = getPointer(doc, e.items)
      if (!Array.isArray(arr)) {
        // A 2xx list answer that is not what the config says: do not pass what cannot be checked.
        logger.warn(
          { requestId: ctx.id, route: ctx.routeName, type: e.object.type },
          'object-ownership: list response has no JSON array at the configured pointer',
        )
        throw new GatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE')
      }
      const p = w.principal
      const o = e.object
      if (w.privileged(o)) return false
      const ids = arr.map((item) => idString(getPointer(item, e.id)))
      let owners: (string | undefined)[]
      if (e.owner) {
        const ptr = e.owner
        owners = arr.map((item) => idString(getPointer(item, ptr)))
      } else if (o.binding) {
        owners = []
      } else {
        try {
          owners = await Promise.all(
            ids.map((id) => (id === undefined ? undefined : store.kv.get(storeKey(o.type, id)))),
          )
        } catch (err) {
          if (!isStoreError(err)) throw err
          if (!config.failOpen) throw new GatewayError('GW_ERR_STATE_UNAVAILABLE', { cause: err })
          return false
        }
        if (e.learn) {
          let n = 0
          for (let i = 0; i < ids.length && n < MAX_LEARNED_PER_LIST; i++) {
            const id = ids[i]
            if (id === undefined || owners[i] !== undefined) continue
            n++
            try {
              if (await store.kv.setIfAbsent(storeKey(o.type, id), p.id, ttlMs)) owners[i] = p.id
              else owners[i] = await store.kv.get(storeKey(o.type, id))
            } catch (err) {
              if (!isStoreError(err)) throw err
              logger.error(
                { requestId: ctx.id, err: (err as Error).message },
                'object-ownership: learning from a list failed (state store unavailable)',
              )
              break
            }
          }
        }
      }
      const foreign: number[] = []
      for (let i = 0; i < arr.length; i++) {
        const owner = owners[i]
        if (owner === undefined) {
          if (o.unknown === 'deny') foreign.push(i)
        } else if (owner !== p.id) foreign.push(i)
      }
      if (foreign.length === 0) return false
      const objects = foreign.slice(0, 20).map((i) => `${o.type}:${logId(ids[i] ?? '?')}`)
      if (e.action === 'block') {
        deny(ctx, o.type, ids[foreign[0] as number] ?? '?', `list holds ${foreign.length} objects of others`)
      }
      refusal(
        'object-ownership:filter',
        { requestId: ctx.id, route: ctx.routeName, type: o.type, removed: foreign.length },
        'object-ownership: list items of others removed',
      )
      audit.emit({
        ...requestFields(ctx),
        type: 'ownership.filter',
        decision: 'allow',
        objects,
        reason: `${foreign.length} list items of others removed`,
      })
      const drop = new Set(foreign)
      const kept = arr.filter((_x, i) => !drop.has(i))
      arr.length = 0
      arr.push(...kept)
      return true
    }

    instance.close = async () => {
      await Promise.all(lookups.map((l) => l.close()))
    }
    return instance
  },
})

/** Upstream list answers: bigger than client bodies, still bounded (the body itself is, by responseBodyLimit). */
const RESPONSE_JSON_LIMITS = {
  maxDepth: 64,
  maxKeys: 10_000,
  maxArrayLength: 100_000,
  maxStringLength: 10_000_000,
  maxTotalValues: 10_000_000,
  allowNul: true,
}

function configError(route: string, problems: string[]): Error {
  return new PolicyConfigError('object-ownership', route, problems)
}
