/**
 * Safe mode's guard, applied by the engine to every request whatever check sends it: an
 * operation whose method, path, operationId, summary or description suggests destruction, a
 * reset or an irreversible business action (delete, reset, drop, createdb, purge, redeem, refund,
 * transfer, …) is only called on objects the scanner created (or by an account it registered).
 * Operations the user excluded are never called.
 */
import type { Operation } from '../openapi/index.js'

/** Verbs (and nouns) of destruction, resets and irreversible actions; matched as whole words. */
const DESTRUCTIVE_STEMS = [
  'delete',
  'remove',
  'destroy',
  'erase',
  'wipe',
  'purge',
  'drop',
  'truncate',
  'reset',
  'clear',
  'flush',
  'createdb',
  'dropdb',
  'initdb',
  'resetdb',
  'reinit',
  'reinitialize',
  'reseed',
  'restore',
  'rollback',
  'terminate',
  'shutdown',
  'restart',
  'reboot',
  'kill',
  'deactivate',
  'disable',
  'revoke',
  'ban',
  'suspend',
  'freeze',
  'lock',
  'close',
  'archive',
  'cancel',
  'redeem',
  'withdraw',
  'unsubscribe',
]
/** Irreversible business actions: only a reason for methods that change state (a GET of /transfers lists them). */
const IRREVERSIBLE_STEMS = [
  'refund',
  'transfer',
  'payout',
  'charge',
  'pay',
  'purchase',
  'checkout',
  'order-now',
]
const STEMS = new Set(DESTRUCTIVE_STEMS)
const WRITE_STEMS = new Set(IRREVERSIBLE_STEMS)

function stemMatch(word: string, stems: ReadonlySet<string>): boolean {
  const w = word.toLowerCase()
  if (stems.has(w)) return true
  for (const suffix of ['s', 'es', 'd', 'ed', 'ing']) {
    if (w.endsWith(suffix) && stems.has(w.slice(0, -suffix.length))) return true
  }
  // wiping → wipe, closing → close
  if (w.endsWith('ing') && stems.has(`${w.slice(0, -3)}e`)) return true
  // dropped → drop, banned → ban
  if (/(.)\1(ed|ing)$/.test(w) && stems.has(w.replace(/(.)\1(ed|ing)$/, '$1'))) return true
  return false
}

/** Splits an identifier or a path into words: camelCase, snake_case, kebab-case, slashes. */
export function words(text: string): string[] {
  return text
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
}

/**
 * Why an operation is destructive-looking, or undefined. DELETE always is; otherwise a
 * destructive word in the path, the operationId or the summary, or as the first word of a
 * sentence of the description ("Wipes every account…"; "Deleted orders answer 404" is not).
 */
export function destructiveReason(op: Operation): string | undefined {
  if (op.method === 'DELETE') return 'DELETE'
  const reads = op.method === 'GET' || op.method === 'HEAD' || op.method === 'OPTIONS'
  const isDestructiveWord = (w: string) => stemMatch(w, STEMS) || (!reads && stemMatch(w, WRITE_STEMS))
  const raw = op.raw as { summary?: unknown; description?: unknown }
  for (const [where, text] of [
    ['path', op.path],
    ['operationId', op.operationId ?? ''],
    ['summary', typeof raw.summary === 'string' ? raw.summary : ''],
  ] as const) {
    const hit = words(text).find(isDestructiveWord)
    if (hit) return `"${hit}" in its ${where}`
  }
  const description = typeof raw.description === 'string' ? raw.description.slice(0, 2000) : ''
  // A verb opening a sentence ("Wipes every account", "Reset the sandbox"), not a participle
  // ("Deleted orders answer 404").
  for (const sentence of description.split(/[.!?\n]+/)) {
    const first = words(sentence)[0]
    if (!first) continue
    const w = first.toLowerCase()
    const verb = [w, w.replace(/e?s$/, ''), w.replace(/s$/, '')].some(
      (x) => STEMS.has(x) || (!reads && WRITE_STEMS.has(x)),
    )
    if (verb) return `"${first}" in its description`
  }
  return undefined
}
