/**
 * The files of one spec: reading (bounded), parsing (YAML 1.2, which includes JSON), hostile
 * content checks, and `$ref` resolution across local files.
 *
 * Every `$ref` is resolved against the file it appears in. Local files must lie under the root
 * directory (the root spec's directory unless configured), so a spec cannot read `/etc/passwd`.
 * Remote references (`https:`, or `http:` to a loopback address) are allowed only to hosts in
 * `allowRemoteHosts`; their content is fetched beforehand (remote.ts, asynchronous) and handed in
 * as `remote`, so loading itself stays synchronous. A remote document is known by its URL, its
 * relative `$ref`s resolve against that URL (never to a local file), and it gets the same limits
 * and hostile-content checks as a local file. Other schemes are refused.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { joinPointer, SpecError, specFail } from './errors.js'
import { JsonGuardError, parseJsonGuarded } from './json-guard.js'
import { convertSwagger2, isSwagger2, originalPointer } from './swagger2.js'

export interface SpecLimits {
  /** Largest file read, in bytes. */
  maxFileBytes: number
  /** Most files one spec may reference (the root included). */
  maxFiles: number
  /** Most JSON nodes (values) over all files. */
  maxNodes: number
  /** Deepest nesting of any document. */
  maxDepth: number
  /** Longest chain of `$ref`s to `$ref`s. */
  maxRefChain: number
  /** Most `$ref`s resolved while loading (against reference blow-up). */
  maxRefs: number
  /** YAML aliases (`*x`) allowed per file (against billion-laughs expansion). */
  maxAliases: number
}

export const DEFAULT_SPEC_LIMITS: SpecLimits = {
  maxFileBytes: 10 * 1024 * 1024,
  maxFiles: 200,
  maxNodes: 2_000_000,
  maxDepth: 200,
  maxRefChain: 32,
  maxRefs: 200_000,
  maxAliases: 1000,
}

export interface DocumentOptions {
  /** Local `$ref` targets must lie under this directory (default: the root file's directory). */
  rootDir?: string
  /**
   * Hosts (`host` or `host:port`, as in a URL; a host without a port means the scheme's default
   * port) remote `$ref`s may point to.
   */
  allowRemoteHosts?: readonly string[]
  /** Fetched remote documents: URL (without fragment) → text (see fetchRemoteRefs). */
  remote?: ReadonlyMap<string, string>
  limits?: Partial<SpecLimits>
  /** Keep each file's text (`text(file)`): the linter maps pointers to lines without reading twice. */
  keepText?: boolean
}

/** Why a remote URL may not be fetched, or undefined when it may. */
export function remoteRefusal(u: URL, allowed: ReadonlySet<string>): string | undefined {
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    return `scheme "${u.protocol.slice(0, -1)}" is not supported`
  if (u.username !== '' || u.password !== '') return 'credentials in a remote $ref URL are not allowed'
  if (!allowed.has(u.host.toLowerCase()))
    return `remote $ref to host "${short(u.host)}" is not allowed (not in allowRemoteHosts)`
  if (u.protocol === 'http:' && !isLoopback(u.hostname))
    return 'remote $refs must use https (http only to a loopback address)'
  return undefined
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/** A remote document's "file" name is its URL. */
export function isRemoteFile(file: string): boolean {
  return file.startsWith('https://') || file.startsWith('http://')
}

/** A location in the spec: file and JSON pointer. */
export interface Location {
  file: string
  pointer: string
}

export interface Resolved<T = unknown> extends Location {
  value: T
}

export class SpecDocuments {
  readonly rootFile: string
  readonly rootDir: string
  readonly limits: SpecLimits
  private readonly files = new Map<string, unknown>()
  private readonly texts: Map<string, string> | undefined
  private readonly allowRemote: ReadonlySet<string>
  private readonly remote: ReadonlyMap<string, string>
  /** Allowed remote documents that were referenced but not in `remote` (for the prefetcher). */
  readonly missingRemote = new Set<string>()
  private nodes = 0
  private refs = 0
  /**
   * Set when the root document was Swagger 2.0: it was converted to OpenAPI 3.0.3 in memory
   * (swagger2.ts), and pointers into the root map back to the 2.0 file through `originalPointer`.
   */
  readonly convertedFrom: '2.0' | undefined
  private readonly pointerMap: ReadonlyMap<string, string> | undefined
  /** What the conversion could not carry over exactly. */
  readonly conversionWarnings: readonly string[] = []

  constructor(file: string, options: DocumentOptions = {}) {
    this.limits = { ...DEFAULT_SPEC_LIMITS, ...options.limits }
    this.allowRemote = new Set((options.allowRemoteHosts ?? []).map((h) => h.toLowerCase()))
    this.remote = options.remote ?? new Map()
    this.texts = options.keepText ? new Map() : undefined
    const abs = resolve(file)
    let real: string
    try {
      real = realpathSync(abs)
    } catch (err) {
      specFail(abs, '', `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    this.rootFile = real
    this.rootDir = options.rootDir ? realpathOr(resolve(options.rootDir)) : dirname(real)
    const root = this.load(real)
    if (isSwagger2(root)) {
      const c = convertSwagger2(root as Record<string, unknown>)
      this.files.set(real, c.document)
      this.convertedFrom = '2.0'
      this.pointerMap = c.pointerMap
      this.conversionWarnings = c.warnings
    }
  }

  /**
   * Where a location of the loaded model is written in the file as the user wrote it: the same
   * pointer, except in a converted Swagger 2.0 root document (`#/components/schemas/Pet` →
   * `#/definitions/Pet`).
   */
  sourcePointer(file: string, pointer: string): string {
    if (this.pointerMap === undefined || file !== this.rootFile) return pointer
    return originalPointer(this.pointerMap, pointer)
  }

  get root(): unknown {
    return this.files.get(this.rootFile)
  }

  /** A loaded local file's text, with the `keepText` option. */
  text(file: string): string | undefined {
    return this.texts?.get(file)
  }

  /** Every loaded file's absolute path. */
  fileNames(): string[] {
    return [...this.files.keys()]
  }

  /** The parsed content of a loaded file. */
  document(file: string): unknown {
    return this.files.get(file)
  }

  /** Reads and parses a local file, or a fetched remote document, once. */
  private load(file: string): unknown {
    const have = this.files.get(file)
    if (have !== undefined) return have
    if (this.files.size >= this.limits.maxFiles) {
      specFail(file, '', `the spec references more than ${this.limits.maxFiles} files`)
    }
    if (isRemoteFile(file)) {
      const text = this.remote.get(file)
      if (text === undefined) {
        this.missingRemote.add(file)
        specFail(file, '', 'remote document was not fetched')
      }
      if (Buffer.byteLength(text) > this.limits.maxFileBytes)
        specFail(file, '', `document is over the limit of ${this.limits.maxFileBytes} bytes`)
      return this.parse(file, text)
    }
    let size: number
    try {
      const st = statSync(file)
      if (!st.isFile()) specFail(file, '', 'not a regular file')
      size = st.size
    } catch (err) {
      if (err instanceof SpecError) throw err
      specFail(file, '', `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (size > this.limits.maxFileBytes) {
      specFail(file, '', `file is ${size} bytes, over the limit of ${this.limits.maxFileBytes}`)
    }
    const text = readFileSync(file, 'utf8')
    this.texts?.set(file, text)
    return this.parse(file, text)
  }

  private parse(file: string, text: string): unknown {
    let doc: unknown = NOT_JSON
    // JSON documents (large generated specs are JSON) are read by the guarded JSON parser: 25x
    // faster than the YAML parser on a 13 MB spec. It refuses duplicate keys as the YAML parser
    // does; anything it refuses (and any non-JSON text) goes to the YAML parser, which decides.
    if (/^\s*\{/.test(text.slice(0, 256))) {
      try {
        doc = parseJsonGuarded(text, {
          maxDepth: this.limits.maxDepth,
          maxKeys: Number.MAX_SAFE_INTEGER,
          maxArrayLength: Number.MAX_SAFE_INTEGER,
          maxStringLength: Number.MAX_SAFE_INTEGER,
          maxTotalValues: this.limits.maxNodes,
          allowNul: true,
        })
      } catch (err) {
        if (!(err instanceof JsonGuardError)) throw err
        doc = NOT_JSON
      }
    }
    if (doc === NOT_JSON) doc = this.parseYamlText(file, text)
    this.check(doc, file, [], 0, new Set())
    this.files.set(file, doc)
    return doc
  }

  private parseYamlText(file: string, text: string): unknown {
    let doc: unknown
    try {
      doc = parseYaml(text, {
        maxAliasCount: this.limits.maxAliases,
        uniqueKeys: true,
        merge: false,
        prettyErrors: false,
      })
    } catch (err) {
      const e = err as Error & { linePos?: [{ line: number; col: number }] }
      const at = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''
      const msg =
        err instanceof RangeError || /call stack/i.test(e.message)
          ? 'nested too deeply to parse'
          : e.message.split('\n')[0]
      specFail(file, '', `not valid YAML or JSON${at}: ${msg}`)
    }
    return doc
  }

  /** Depth, size and key checks over a parsed document (aliases are visited once). */
  private check(v: unknown, file: string, path: (string | number)[], depth: number, seen: Set<object>): void {
    // The path is a stack of tokens, turned into a pointer only for a message: building a pointer
    // string per value cost a third of the load time of a large spec.
    if (++this.nodes > this.limits.maxNodes) {
      specFail(file, joinPointer('', ...path), `the spec has more than ${this.limits.maxNodes} values`)
    }
    if (v === null || typeof v !== 'object') return
    if (depth >= this.limits.maxDepth)
      specFail(file, joinPointer('', ...path), `nested deeper than ${this.limits.maxDepth} levels`)
    if (seen.has(v)) return
    seen.add(v)
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i)
        this.check(v[i], file, path, depth + 1, seen)
        path.pop()
      }
      return
    }
    for (const k of Object.keys(v)) {
      if (k === '__proto__') specFail(file, joinPointer('', ...path, k), 'the key "__proto__" is not allowed')
      path.push(k)
      this.check((v as Record<string, unknown>)[k], file, path, depth + 1, seen)
      path.pop()
    }
  }

  /** The value at a JSON pointer in a loaded file (own properties only). */
  at(file: string, pointer: string): unknown {
    let cur = this.load(file)
    if (pointer === '') return cur
    if (!pointer.startsWith('/')) specFail(file, pointer, 'a JSON pointer must start with "/"')
    for (const raw of pointer.slice(1).split('/')) {
      const token = raw.replace(/~1/g, '/').replace(/~0/g, '~')
      if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, token)) {
        specFail(file, pointer, 'the reference points at nothing')
      }
      cur = (cur as Record<string, unknown>)[token]
    }
    return cur
  }

  /** Where a `$ref` string written in `from` points (loads the target file). */
  target(ref: string, from: Location): Location {
    if (++this.refs > this.limits.maxRefs) {
      specFail(from.file, from.pointer, `more than ${this.limits.maxRefs} references resolved`)
    }
    const hash = ref.indexOf('#')
    const uri = hash === -1 ? ref : ref.slice(0, hash)
    let fragment = hash === -1 ? '' : ref.slice(hash + 1)
    try {
      fragment = decodeURIComponent(fragment)
    } catch {
      specFail(from.file, from.pointer, `invalid percent-encoding in $ref "${short(ref)}"`)
    }
    if (fragment !== '' && !fragment.startsWith('/')) {
      specFail(from.file, from.pointer, `$ref "${short(ref)}": only JSON pointer fragments are supported`)
    }
    if (uri === '') return this.checked({ file: from.file, pointer: fragment }, ref, from)
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)
    const fromRemote = isRemoteFile(from.file)
    if (scheme || fromRemote) {
      const s = scheme ? (scheme[1] as string).toLowerCase() : ''
      if (scheme && s !== 'http' && s !== 'https')
        specFail(from.file, from.pointer, `$ref "${short(ref)}": scheme "${s}" is not supported`)
      let u: URL
      try {
        // A relative reference in a remote document is relative to its URL: it never reaches a local file.
        u = new URL(uri, fromRemote ? from.file : undefined)
      } catch {
        specFail(from.file, from.pointer, `$ref "${short(ref)}": invalid URL`)
      }
      const refused = remoteRefusal(u, this.allowRemote)
      if (refused !== undefined) specFail(from.file, from.pointer, refused)
      u.hash = ''
      const key = u.href
      try {
        this.load(key)
      } catch (err) {
        if (!(err instanceof SpecError) || !this.missingRemote.has(key)) throw err
        specFail(from.file, from.pointer, `remote $ref "${short(ref)}" was not fetched`)
      }
      return this.checked({ file: key, pointer: fragment }, ref, from)
    }
    let path: string
    try {
      path = decodeURIComponent(uri)
    } catch {
      specFail(from.file, from.pointer, `invalid percent-encoding in $ref "${short(ref)}"`)
    }
    if (path.includes('\0')) specFail(from.file, from.pointer, '$ref contains a NUL byte')
    const abs = resolve(dirname(from.file), path)
    let real: string
    try {
      real = realpathSync(abs)
    } catch {
      specFail(from.file, from.pointer, `$ref "${short(ref)}": file not found`)
    }
    const rel = relative(this.rootDir, real)
    if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      specFail(from.file, from.pointer, `$ref "${short(ref)}" leaves the spec's root directory`)
    }
    this.load(real)
    return this.checked({ file: real, pointer: fragment }, ref, from)
  }

  /** The target must exist; the error names the place the `$ref` is written. */
  private checked(target: Location, ref: string, from: Location): Location {
    try {
      this.at(target.file, target.pointer)
    } catch (err) {
      if (!(err instanceof SpecError)) throw err
      specFail(from.file, from.pointer, `$ref "${short(ref)}" points at nothing`)
    }
    return target
  }

  /**
   * Resolves every `$ref` string in every loaded document (newly loaded ones included), ignoring
   * errors: used by the prefetcher to learn which allowed remote documents are needed
   * (`missingRemote`). The real load reports the errors.
   */
  resolveAllRefs(): void {
    const done = new Set<string>()
    for (;;) {
      const next = [...this.files.keys()].filter((f) => !done.has(f))
      if (next.length === 0) return
      for (const file of next) {
        done.add(file)
        const stack: [unknown, string][] = [[this.files.get(file), '']]
        const seen = new Set<object>()
        while (stack.length > 0) {
          const [v, pointer] = stack.pop() as [unknown, string]
          if (v === null || typeof v !== 'object' || seen.has(v)) continue
          seen.add(v)
          if (Array.isArray(v)) {
            for (let i = 0; i < v.length; i++) stack.push([v[i], `${pointer}/${i}`])
            continue
          }
          for (const [k, child] of Object.entries(v)) {
            if (k === '$ref' && typeof child === 'string') {
              try {
                this.target(child, { file, pointer })
              } catch (err) {
                if (!(err instanceof SpecError)) throw err
              }
            } else stack.push([child, joinPointer(pointer, k)])
          }
        }
      }
    }
  }

  /**
   * Follows `$ref` objects (a chain of them, bounded and cycle-checked) to a value that is not a
   * reference. Used for parameters, request bodies, responses and path items; schemas keep their
   * `$ref`s (see schema.ts).
   */
  deref<T = unknown>(value: unknown, at: Location): Resolved<T> {
    let cur: Resolved = { ...at, value }
    const seen = new Set<string>()
    for (let i = 0; ; i++) {
      const v = cur.value
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, '$ref')) {
        return cur as Resolved<T>
      }
      const ref = (v as { $ref: unknown }).$ref
      if (typeof ref !== 'string')
        specFail(cur.file, joinPointer(cur.pointer, '$ref'), '$ref must be a string')
      if (i >= this.limits.maxRefChain) {
        specFail(cur.file, cur.pointer, `more than ${this.limits.maxRefChain} $refs in a chain`)
      }
      const key = `${cur.file}#${cur.pointer}`
      if (seen.has(key)) specFail(cur.file, cur.pointer, '$ref cycle')
      seen.add(key)
      const t = this.target(ref, cur)
      cur = { ...t, value: this.at(t.file, t.pointer) }
    }
  }
}

const NOT_JSON = Symbol('not JSON')

function realpathOr(p: string): string {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}

/** At most 100 characters of something taken from the spec, for a message. */
export function short(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s
}
