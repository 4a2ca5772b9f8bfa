/** How checks pick a caller and fill an operation's parameters with values it may use. */
import type { Operation } from '../../openapi/index.js'
import { fillPath, findResources } from '../resources.js'
import { generateValue, resolveSchema } from '../schema-tools.js'
import type { ScanContext, SeededObject } from '../types.js'

/**
 * Values for an operation's parameters as `who`: a path parameter that is an item id gets an
 * object `who` owns (its profile for `/users/{id}`-like paths); others the parameter's example or
 * a generated value. Undefined when a path parameter cannot be filled.
 */
export function requestFor(
  ctx: ScanContext,
  op: Operation,
  who: string | undefined,
): { path: string; query: Record<string, string>; object?: SeededObject } | undefined {
  const values: Record<string, string> = {}
  const query: Record<string, string> = {}
  let object: SeededObject | undefined
  const resources = findResources(ctx.operations)
  for (const p of op.parameters) {
    if (p.in === 'path') {
      // The resource named by the segment before the parameter (`/admin/users/{id}` → users).
      const before = op.path.split(`/{${p.name}}`)[0]?.split('/').pop()
      const r =
        resources.find(
          (x) => x.itemParam === p.name && (op.path === x.itemPath || op.path.startsWith(`${x.itemPath}/`)),
        ) ?? resources.find((x) => x.type === before)
      const mine = r && who ? ctx.objects.filter((o) => o.owner === who && o.type === r.type) : []
      const pick = mine.find((o) => o.profile) ?? mine.find((o) => o.createdByScanner) ?? mine[0]
      if (pick) {
        values[p.name] = pick.id
        object = pick
        continue
      }
      if (r) return undefined
      const v = exampleOf(ctx, p)
      if (v === undefined) return undefined
      values[p.name] = String(v)
    } else if (p.in === 'query' && p.required) {
      const v = exampleOf(ctx, p)
      if (v === undefined) return undefined
      query[p.name] = Array.isArray(v) ? v.join(',') : String(v)
    }
  }
  const path = fillPath(op.path, values)
  if (path === undefined) return undefined
  return { path, query, ...(object ? { object } : {}) }
}

function exampleOf(ctx: ScanContext, p: Operation['parameters'][number]): unknown {
  try {
    const raw = ctx.spec.documents.at(p.location.file, p.location.pointer) as { example?: unknown }
    if (raw && raw.example !== undefined) return raw.example
  } catch {
    // fall through to the schema
  }
  return generateValue(resolveSchema(ctx.spec, p.schema, p.schemaLocation), p.name)
}

/** The first ordinary user (not admin, not anonymous), else the first identity with credentials. */
export function firstUser(ctx: ScanContext): string | undefined {
  return (
    ctx.identities.find((i) => !i.anonymous && !i.roles.includes('admin'))?.name ??
    ctx.identities.find((i) => !i.anonymous)?.name
  )
}

/** The identity's own profile object, if seeding found one. */
export function profileOf(ctx: ScanContext, who: string): SeededObject | undefined {
  return ctx.objects.find((o) => o.owner === who && o.profile)
}
