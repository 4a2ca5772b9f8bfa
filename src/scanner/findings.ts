/**
 * What the engine does with findings after the checks: drops those whose proof is a timeout or a
 * connection error, gives each a stable fingerprint, merges duplicates, compares with a baseline,
 * and locates operations in the spec file (for SARIF regions).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml'
import type { Finding } from './types.js'

/** A finding's title and identity with everything run-specific taken out (ids, numbers, throwaway names). */
function stable(f: Finding): string {
  const op = f.operation ? `${f.operation.method.toUpperCase()} ${f.operation.path}` : ''
  const title = f.title
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '{uuid}')
    .replace(/\d+/g, '{n}')
  const identity = (f.identity ?? '').replace(/^throwaway-.*$/, 'throwaway')
  return `${f.checkId}\n${op}\n${identity}\n${title}`
}

/** The stable fingerprint of a finding: equal for the same flaw in two scans of the same target. */
export function fingerprint(f: Finding): string {
  return createHash('sha256').update(stable(f)).digest('hex').slice(0, 32)
}

/** Whether a finding's evidence rests on a request that got no answer (a timeout, a refused connection, a request not sent). */
export function restsOnNoAnswer(f: Finding): boolean {
  return f.evidence.some((e) => e.exchanges.some((x) => x.error !== undefined || x.response === undefined))
}

/** Sets fingerprints and keeps the first finding of each fingerprint. */
export function finalize(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>()
  const out: Finding[] = []
  for (const f of findings) {
    const fp = fingerprint(f)
    if (seen.has(fp)) continue
    seen.add(fp)
    out.push({ ...f, fingerprint: fp })
  }
  return out
}

/**
 * The fingerprints of a baseline file: a JSON report of an earlier scan (`findings[].fingerprint`),
 * a SARIF report (`partialFingerprints["portcullisFinding/v2"]`), or `{ "fingerprints": [...] }`.
 */
export function loadBaseline(file: string): Set<string> {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new BaselineError(
      `--baseline ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  const out = new Set<string>()
  const d = data as {
    findings?: { fingerprint?: unknown }[]
    fingerprints?: unknown[]
    runs?: { results?: { partialFingerprints?: Record<string, unknown> }[] }[]
  }
  for (const f of d.findings ?? []) if (typeof f.fingerprint === 'string') out.add(f.fingerprint)
  for (const f of d.fingerprints ?? []) if (typeof f === 'string') out.add(f)
  for (const run of d.runs ?? [])
    for (const r of run.results ?? []) {
      const fp = r.partialFingerprints?.['portcullisFinding/v2']
      if (typeof fp === 'string') out.add(fp)
    }
  if (
    out.size === 0 &&
    !Array.isArray(d.findings) &&
    !Array.isArray(d.fingerprints) &&
    !Array.isArray(d.runs)
  )
    throw new BaselineError(
      `--baseline ${file}: not a portcullis JSON or SARIF report, nor {"fingerprints": [...]}`,
    )
  return out
}

export class BaselineError extends Error {
  override name = 'ConfigError'
}

/**
 * Where each operation is written in a spec's text (YAML or JSON): `GET /path` → 1-based line
 * and column of the method's key. Operations in other files are not found (no region then).
 */
export function operationPositions(text: string): Map<string, { line: number; column: number }> {
  const out = new Map<string, { line: number; column: number }>()
  if (text.length > 20 * 1024 * 1024) return out
  const lc = new LineCounter()
  let doc: ReturnType<typeof parseDocument>
  try {
    doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false })
  } catch {
    return out
  }
  const paths = isMap(doc.contents) ? doc.contents.get('paths', true) : undefined
  if (!isMap(paths)) return out
  for (const pair of paths.items) {
    if (!isScalar(pair.key) || !isMap(pair.value)) continue
    const path = String(pair.key.value)
    for (const m of pair.value.items) {
      if (!isScalar(m.key)) continue
      const method = String(m.key.value).toUpperCase()
      const at = m.key.range?.[0]
      if (at === undefined) continue
      const pos = lc.linePos(at)
      out.set(`${method} ${path}`, { line: pos.line, column: pos.col })
    }
  }
  return out
}
