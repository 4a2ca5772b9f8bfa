/**
 * The one reader of `application/x-www-form-urlencoded` text: query strings (`ctx.queryParams()`)
 * and form bodies. Every policy reads parameters through it, so a request cannot mean one thing
 * to one policy and another to the next, and a parameter a policy checked is the one the upstream
 * receives. Rules (docs/security/query-strings.md):
 *
 * - `&` separates parameters; empty ones (`a=1&&b=2`) are skipped. The name ends at the first `=`;
 *   without `=` the value is ''. An empty name is a parameter like any other (named '').
 * - `+` is a space, then percent-escapes are decoded as UTF-8. A malformed escape (`%`, `%zz`,
 *   `%4`) or bytes that are not UTF-8 refuse the whole text (400): servers disagree on what such
 *   input means (kept literally, replaced, dropped), so the gateway does not guess.
 * - At most `maxParams` parameters (400 beyond it).
 * - Names are case-sensitive and compared after decoding (`%69d` is `id`).
 * - A name a policy reads must be unambiguous. `single(name)` and `values(name)` refuse the request
 *   (400 GW_ERR_PARAMETER_POLLUTION) when another spelling of the name is present that some server
 *   would read as the same parameter: a letter-case variant (`ID`: ASP.NET matches names without
 *   case), a bracket form (`id[]`, `id[0]`, `id[a]`, `id[]x`: PHP, Rails and Express' qs read these
 *   as `id`), a PHP-mangled form (`i.d` and `i d` for `i_d`),
 *   or a `;`-separated form hidden inside another parameter (`x=1;id=2`: servers that still split
 *   on `;`). `single` also refuses a repeated name: frameworks disagree on first or last wins.
 */
import { GatewayError } from './errors.js'

/** One decoded parameter. */
export interface Param {
  readonly name: string
  readonly value: string
}

export interface ParseOptions {
  /** Most parameters accepted; more is a 400. Default 1000. */
  maxParams?: number
  /** What the text is, for messages ('query string' by default). */
  what?: string
}

export const DEFAULT_MAX_PARAMS = 1000

/** Decodes one name or value (`+` is space); undefined when the escapes are malformed or not UTF-8. */
export function decodeFormComponent(s: string): string | undefined {
  const t = s.includes('+') ? s.replaceAll('+', ' ') : s
  if (!t.includes('%')) return t
  try {
    return decodeURIComponent(t)
  } catch {
    return undefined
  }
}

/**
 * The key under which spellings of a name collide: lower case, cut at the first `[` (PHP reads
 * `id[]x` as `id`, ignoring what follows the brackets), with `.` and space as `_` (PHP's name
 * mangling turns `i.d` and `i d` into `i_d`).
 */
function baseName(name: string): string {
  const b = name.indexOf('[')
  return (b > 0 ? name.slice(0, b) : name).toLowerCase().replace(/[. ]/g, '_')
}

/** Parsed parameters, in order. Built by `parseParams`; immutable. */
export class Params {
  readonly list: readonly Param[]
  private readonly raw: string
  private byBase: Map<string, number> | undefined
  private hidden: Map<string, number> | undefined

  constructor(list: readonly Param[], raw: string) {
    this.list = list
    this.raw = raw
  }

  get size(): number {
    return this.list.length
  }

  /** The first value of `name`, exact spelling; no ambiguity check (prefer `single`). */
  get(name: string): string | undefined {
    for (const p of this.list) if (p.name === name) return p.value
    return undefined
  }

  /** True when a parameter of exactly this name is present. */
  has(name: string): boolean {
    for (const p of this.list) if (p.name === name) return true
    return false
  }

  /** Distinct names, in order of first appearance. */
  names(): string[] {
    return [...new Set(this.list.map((p) => p.name))]
  }

  /**
   * The one value of `name`, undefined when absent. Refuses (GW_ERR_PARAMETER_POLLUTION) a
   * repeated name and any other spelling of it (see the module comment).
   */
  single(name: string): string | undefined {
    const exact = this.values(name)
    if (exact.length > 1) throw pollution(name, 'repeated')
    return exact[0]
  }

  /**
   * Every value of exactly `name`, in order ([] when absent). Refuses (GW_ERR_PARAMETER_POLLUTION)
   * another spelling of the name next to it or instead of it.
   */
  values(name: string): string[] {
    const how = this.ambiguity(name)
    if (how !== undefined) throw pollution(name, how)
    const out: string[] = []
    for (const p of this.list) if (p.name === name) out.push(p.value)
    return out
  }

  /**
   * Why reading `name` would be ambiguous, apart from repetition: another spelling of it is
   * present ('spelled in several ways') or it hides after a `;` ("hidden after a ';'");
   * undefined when it is not.
   */
  ambiguity(name: string): string | undefined {
    let exact = 0
    for (const p of this.list) if (p.name === name) exact++
    const base = baseName(name)
    if ((this.countByBase().get(base) ?? 0) !== exact) return 'spelled in several ways'
    if ((this.countHidden().get(base) ?? 0) > 0) return "hidden after a ';'"
    return undefined
  }

  private countByBase(): Map<string, number> {
    if (this.byBase) return this.byBase
    const m = new Map<string, number>()
    for (const p of this.list) {
      const b = baseName(p.name)
      m.set(b, (m.get(b) ?? 0) + 1)
    }
    this.byBase = m
    return m
  }

  /** Names that appear after a `;` inside a parameter (`x=1;id=2` hides `id`). */
  private countHidden(): Map<string, number> {
    if (this.hidden) return this.hidden
    const m = new Map<string, number>()
    if (this.raw.includes(';')) {
      for (const part of this.raw.split('&')) {
        const pieces = part.split(';')
        for (let i = 1; i < pieces.length; i++) {
          const piece = pieces[i] as string
          const eq = piece.indexOf('=')
          const name = decodeFormComponent(eq === -1 ? piece : piece.slice(0, eq))
          if (name === undefined || name === '') continue
          const b = baseName(name)
          m.set(b, (m.get(b) ?? 0) + 1)
        }
      }
    }
    this.hidden = m
    return m
  }
}

function pollution(name: string, how: string): GatewayError {
  return new GatewayError('GW_ERR_PARAMETER_POLLUTION', {
    detail: `parameter "${name.length > 64 ? `${name.slice(0, 64)}…` : name}" is ${how}`,
  })
}

const EMPTY = new Params([], '')

/**
 * Parses urlencoded text (a raw query without `?`, or a form body). Throws GatewayError
 * GW_ERR_BAD_REQUEST for malformed escapes, non-UTF-8 bytes or too many parameters.
 */
export function parseParams(raw: string, opts: ParseOptions = {}): Params {
  if (raw === '') return EMPTY
  const max = opts.maxParams ?? DEFAULT_MAX_PARAMS
  const what = opts.what ?? 'query string'
  const list: Param[] = []
  let start = 0
  const len = raw.length
  while (start <= len) {
    let end = raw.indexOf('&', start)
    if (end === -1) end = len
    if (end > start) {
      if (list.length >= max)
        throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: `${what}: more than ${max} parameters` })
      const part = raw.slice(start, end)
      const eq = part.indexOf('=')
      const name = decodeFormComponent(eq === -1 ? part : part.slice(0, eq))
      const value = eq === -1 ? '' : decodeFormComponent(part.slice(eq + 1))
      if (name === undefined || value === undefined)
        throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: `${what}: malformed percent-encoding` })
      list.push({ name, value })
    }
    start = end + 1
  }
  return new Params(list, raw)
}

/**
 * The raw text without the parameters named in `names` (compared after decoding) and without
 * their other spellings (letter case, bracket forms); the other parameters keep their raw
 * encoding. Parts that do not decode are dropped (a reader would have refused them).
 */
export function withoutParams(raw: string, names: ReadonlySet<string>): string {
  if (raw === '' || names.size === 0) return raw
  const bases = new Set([...names].map(baseName))
  const kept: string[] = []
  for (const part of raw.split('&')) {
    if (part !== '') {
      const eq = part.indexOf('=')
      const name = decodeFormComponent(eq === -1 ? part : part.slice(0, eq))
      if (name === undefined || bases.has(baseName(name))) continue
    }
    kept.push(part)
  }
  return kept.join('&')
}
