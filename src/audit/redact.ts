/**
 * Redaction of configured JSON paths in audit events, before they are sealed into records.
 * A path is dotted member names, `*` matching any member or array element: `path`,
 * `clientIp`, `data.subject`, `data.*.email`. A redacted value becomes the string `[redacted]`;
 * absent members stay absent. The event passed in is never modified (it may be shared).
 */
import { CHAIN_MEMBERS } from './record.js'
import type { AuditEvent } from './event.js'

export const REDACTED = '[redacted]'
const SEGMENT_RE = /^(\*|[A-Za-z0-9_-]{1,64})$/
const MAX_PATHS = 64
const UNREDACTABLE = new Set<string>([...CHAIN_MEMBERS, 'type'])

export type Redactor = (e: AuditEvent) => AuditEvent

/** Problems with the paths, one message each ([] when all are valid). */
export function checkRedactPaths(paths: readonly string[]): string[] {
  const out: string[] = []
  if (paths.length > MAX_PATHS) out.push(`at most ${MAX_PATHS} redact paths`)
  for (const p of paths) {
    const segs = p.split('.')
    if (!segs.every((s) => SEGMENT_RE.test(s))) {
      out.push(`redact path "${p.slice(0, 80)}": dotted names ([A-Za-z0-9_-]) or *`)
    } else if (UNREDACTABLE.has(segs[0] as string)) {
      out.push(`redact path "${p}": ${segs[0]} belongs to the chain and cannot be redacted`)
    } else if (segs[0] === '*') {
      out.push(`redact path "${p}": the first segment must name a member`)
    }
  }
  return out
}

function redactAt(v: unknown, segs: readonly string[], i: number): unknown {
  if (i === segs.length) return REDACTED
  if (v === null || typeof v !== 'object') return v
  const seg = segs[i] as string
  if (Array.isArray(v)) {
    if (seg !== '*') return v
    return v.map((x) => redactAt(x, segs, i + 1))
  }
  const o = v as Record<string, unknown>
  const names = seg === '*' ? Object.keys(o) : Object.hasOwn(o, seg) ? [seg] : []
  if (names.length === 0) return v
  const copy: Record<string, unknown> = { ...o }
  for (const n of names) if (copy[n] !== undefined) copy[n] = redactAt(copy[n], segs, i + 1)
  return copy
}

/** A redactor for valid paths (see {@link checkRedactPaths}); undefined when there are none. */
export function compileRedactor(paths: readonly string[]): Redactor | undefined {
  if (paths.length === 0) return undefined
  const compiled = paths.map((p) => p.split('.'))
  return (e) => {
    let out = e as unknown
    for (const segs of compiled) out = redactAt(out, segs, 0)
    return out as AuditEvent
  }
}
