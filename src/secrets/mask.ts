/**
 * `maskSecrets`: the built-in detectors applied to a line the gateway is about to write (access
 * log, gateway log, audit records, alerts, admin API answers). A line with no detector keyword —
 * nearly every line — costs one pass of the keyword automaton and is returned as is; otherwise
 * each secret is replaced by its mask (`ghp_***`, `***`). Nested decoding is off here: the
 * gateway's own lines are plain text and this runs on the hot path.
 *
 * The scanner is built when the gateway's logger is created (`warmMaskSecrets`): that builds the
 * keyword automaton only (milliseconds); a detector's pattern is compiled the first time one of
 * its keywords passes its cheap checks in a line, once per process.
 */
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { applyMasks, SecretScanner } from './engine.js'
import type { Detector } from './types.js'

/** Scanners by detector set (ids in order), shared by the callers that use the same set. */
const shared = new Map<string, SecretScanner>()
const MAX_SHARED = 16

/**
 * The scanner of a set of built-in detectors, built once and shared (the masking of log lines
 * and leak-guard on every route and after every reload use the same few sets). At most 16 sets
 * are kept; the oldest is dropped past that.
 */
export function scannerFor(detectors: readonly Detector[]): SecretScanner {
  const key = detectors.map((d) => d.id).join(',')
  let s = shared.get(key)
  if (s === undefined) {
    s = new SecretScanner(detectors)
    if (shared.size >= MAX_SHARED) shared.delete(shared.keys().next().value as string)
    shared.set(key, s)
  }
  return s
}

let scanner: SecretScanner | undefined

function get(): SecretScanner {
  scanner ??= scannerFor(BUILTIN_DETECTORS)
  return scanner
}

/**
 * `text` with every credential a detector recognizes masked.
 *
 * @example
 * maskSecrets('GET /cb?token=ghp_…') // 'GET /cb?token=ghp_***'
 */
export function maskSecrets(text: string): string {
  const s = get()
  if (!s.hasCandidate(text)) return text
  const { matches } = s.scan(text, { decode: false, budgetFactor: 16 })
  return applyMasks(text, matches)
}

/**
 * False when `maskSecrets(text)` would mask nothing because no detector's keyword occurs in `text`
 * where its cheap checks pass (see `SecretScanner.hasCandidate`): one keyword pass, and the gates
 * of the keywords found.
 */
export function mayHoldSecret(text: string): boolean {
  return get().hasCandidate(text)
}

/** Builds the scanner now (the gateway does it when it creates its logger) rather than on the first line. */
export function warmMaskSecrets(): void {
  get()
}

/**
 * A copy of a JSON-like value with every string masked (copy on write: `value` itself when
 * nothing was masked). Keys are masked too; depth is bounded (deeper parts are left as they are).
 */
export function maskValue<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return maskSecrets(value) as T
  if (value === null || typeof value !== 'object' || depth > 32) return value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    value.forEach((v, i) => {
      const m = maskValue(v, depth + 1)
      if (m !== v) {
        out ??= [...value]
        out[i] = m
      }
    })
    return (out ?? value) as T
  }
  if (!isPlain(value)) return value
  let out: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const mk = maskSecrets(k)
    const mv = maskValue(v, depth + 1)
    if (mk !== k || mv !== v) {
      out ??= { ...(value as Record<string, unknown>) }
      if (mk !== k) delete out[k]
      out[mk] = mv
    }
  }
  return (out ?? value) as T
}

function isPlain(v: object): boolean {
  const p = Object.getPrototypeOf(v)
  return p === Object.prototype || p === null
}
