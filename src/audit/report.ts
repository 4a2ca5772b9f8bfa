/**
 * The access report (`portcullis audit report`): who accessed what, read from the audit chain while
 * it is verified. A record is reported when it is about the principal asked for, or about the
 * object asked for, which a record names in one of these ways:
 *
 * - `object: { type, id }` (the object-ownership policy's events), also under `data.object`;
 * - `objects: ["type:id", …]` (the audit event interface's member);
 * - the request path: a segment equal to the id right after a segment naming the type (`order`,
 *   `orders`, `orderes`, or `…ies` for a type ending in `y`), compared case-insensitively for the
 *   type, exactly (after percent-decoding) for the id: `/api/orders/42` is `order:42`.
 *
 * Records the audit log writes about itself (`audit.*`) are never reported.
 */
import type { ParsedRecord } from './record.js'
import type { Keyring } from './keyring.js'
import { type VerifyOptions, type VerifyReport, verifyChain } from './verify.js'

export interface AccessQuery {
  principal?: string | undefined
  object?: { type: string; id: string } | undefined
  /** ms since the epoch, inclusive. */
  since?: number | undefined
  /** ms since the epoch, exclusive. */
  until?: number | undefined
}

export interface AccessEntry {
  time: string
  type: string
  principal?: string
  operation?: string
  method?: string
  path?: string
  /** Object ids the record names (`type:id`). */
  objects: string[]
  decision?: string
  status?: number
  code?: string
  reason?: string
  requestId?: string
  clientIp?: string
  /** How the record matched the query: `principal`, `object`, `objects` or `path`. */
  match: string
  file: string
  line: number
  seq: number
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

function objectOf(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined
  const o = v as Record<string, unknown>
  const type = str(o.type)
  const id = typeof o.id === 'number' ? String(o.id) : str(o.id)
  return type !== undefined && id !== undefined ? `${type}:${id}` : undefined
}

/** The object ids a record names (`type:id`), from `object`, `data.object` and `objects`. */
export function objectsOf(r: ParsedRecord): string[] {
  const out: string[] = []
  const a = objectOf(r.object)
  if (a !== undefined) out.push(a)
  const b = objectOf(r.data?.object)
  if (b !== undefined && b !== a) out.push(b)
  if (Array.isArray(r.objects))
    for (const o of r.objects) if (typeof o === 'string' && !out.includes(o)) out.push(o)
  return out
}

function typeNames(type: string): string[] {
  const t = type.toLowerCase()
  const names = [t, `${t}s`, `${t}es`]
  if (t.endsWith('y')) names.push(`${t.slice(0, -1)}ies`)
  return names
}

function decode(seg: string): string {
  try {
    return decodeURIComponent(seg)
  } catch {
    return seg
  }
}

/** Whether `path` names the object: a segment equal to its id right after one naming its type. */
export function pathNamesObject(path: string, object: { type: string; id: string }): boolean {
  const segs = path.split('/')
  const names = typeNames(object.type)
  for (let i = 1; i < segs.length; i++) {
    if (
      decode(segs[i] as string) === object.id &&
      names.includes(decode(segs[i - 1] as string).toLowerCase())
    )
      return true
  }
  return false
}

/** How a record matches the query (`principal`, `object`, `objects`, `path`), or undefined. */
export function matchRecord(r: ParsedRecord, q: AccessQuery): string | undefined {
  if (r.type.startsWith('audit.')) return undefined
  if (q.since !== undefined || q.until !== undefined) {
    const t = Date.parse(r.time)
    if (q.since !== undefined && !(t >= q.since)) return undefined
    if (q.until !== undefined && !(t < q.until)) return undefined
  }
  if (q.principal !== undefined && r.principal !== q.principal) return undefined
  if (q.object !== undefined) {
    const want = `${q.object.type}:${q.object.id}`
    if (objectOf(r.object) === want || objectOf(r.data?.object) === want) return 'object'
    if (Array.isArray(r.objects) && r.objects.includes(want)) return 'objects'
    const path = str(r.path)
    if (path !== undefined && pathNamesObject(path, q.object)) return 'path'
    return undefined
  }
  return q.principal !== undefined ? 'principal' : undefined
}

export function toEntry(r: ParsedRecord, match: string, file: string, line: number): AccessEntry {
  const e: AccessEntry = { time: r.time, type: r.type, objects: objectsOf(r), match, file, line, seq: r.seq }
  const copy = [
    'principal',
    'operation',
    'method',
    'path',
    'decision',
    'code',
    'reason',
    'requestId',
    'clientIp',
  ] as const
  for (const k of copy) {
    const v = str(r[k])
    if (v !== undefined) e[k] = v
  }
  if (typeof r.status === 'number') e.status = r.status
  return e
}

/**
 * Verifies the chain in `files` and calls `onEntry` for each verified record the query matches, in
 * chain order. The verify report says whether the chain is intact (and, given its anchor, whether
 * it was cut at its end: `truncated`); records after a problem are not read (they cannot be
 * vouched for), except after a cut the writer recorded at a restart. Throws VerifyUsageError like
 * verifyChain.
 */
export function accessReport(
  files: readonly string[],
  keyring: Keyring,
  query: AccessQuery,
  onEntry: (e: AccessEntry) => void,
  opts: Pick<VerifyOptions, 'encryption' | 'partial' | 'anchor' | 'anchorsChecked'> = {},
): VerifyReport {
  return verifyChain(files, keyring, {
    encryption: opts.encryption,
    partial: opts.partial,
    anchor: opts.anchor,
    anchorsChecked: opts.anchorsChecked,
    onRecord: (r, file, line) => {
      const m = matchRecord(r, query)
      if (m !== undefined) onEntry(toEntry(r, m, file, line))
    },
  })
}
