/**
 * Schema compilation: every schema the spec uses is translated to JSON Schema 2020-12, put in one
 * bundle (one `$defs` entry per referenced schema, `$ref`s rewritten to point into the bundle, so
 * references across files and cycles need nothing special) and compiled once with ajv.
 *
 * OAS 3.1 schemas are JSON Schema 2020-12 already; only OpenAPI's annotation keywords (`example`,
 * `xml`, `externalDocs`, `discriminator`, `x-*`) are dropped. OAS 3.0 schemas are translated:
 * - `nullable: true` adds `"null"` to `type` (and `null` to `enum` when there is one); without a
 *   `type` it has no effect (as OAS 3.0.3 clarifies);
 * - boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric 2020-12 forms;
 * - `example` is dropped (`examples` does not exist in 3.0 schemas);
 * - a `$ref` ignores its sibling keywords (3.0 Reference Object semantics).
 *
 * Two variants can be compiled from the same schema. `declared` is the schema as written.
 * `closed` adds `unevaluatedProperties: false` wherever an object schema declares `properties`
 * and leaves no room for others (no `additionalProperties` other than false, no
 * `patternProperties`, no `unevaluatedProperties`), looking through `$ref`, `allOf`, `anyOf` and
 * `oneOf`. It is added only at the point where a value is described (the root, a property, an
 * item), never inside `allOf` branches, so composition keeps working: a property declared in one
 * `allOf` branch is evaluated, hence allowed, by the whole.
 *
 * A direction (`request` / `response`) compiles `readOnly` / `writeOnly` properties to `false`
 * (absent) and drops them from the same schema's `required`.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js'
import type { SpecDocuments, Location } from './documents.js'
import { joinPointer, SpecError, type SpecProblem } from './errors.js'
import { FORMATS } from './formats.js'
import { ajvLinearRegExp } from '../util/linear-regex.js'

export type SchemaVariant = 'declared' | 'closed'

/**
 * Which way the value travels. `request`: properties marked `readOnly: true` must be absent (and
 * are dropped from `required`); `response`: the same for `writeOnly: true`; `any`: both ignored.
 */
export type SchemaDirection = 'request' | 'response' | 'any'

export interface CompiledSchema {
  /** Where the schema is written. */
  location: Location
  validate: ValidateFunction
}

const DROP = new Set(['example', 'xml', 'externalDocs', 'discriminator', '$schema', 'nullable'])
const VALUE_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']
const VALUE_ONE = [
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'additionalItems',
]
const BRANCH_ONE = ['not', 'if', 'then', 'else']
const BRANCH_LIST = ['allOf', 'anyOf', 'oneOf']
const VALUE_LIST = ['prefixItems']

let bundleCounter = 0

/**
 * Collects the schemas of one spec, then compiles them all at once.
 *
 * @example
 * const c = new SchemaCompiler(docs, '3.1')
 * const h = c.add(schema, { file, pointer: '/components/schemas/User' }, 'closed')
 * c.compile()
 * c.get(h).validate(value)
 */
export class SchemaCompiler {
  readonly warnings: string[] = []
  private readonly ajv: Ajv2020
  private readonly id = `urn:portcullis:openapi:${++bundleCounter}`
  private readonly defs: Record<string, unknown> = {}
  private readonly defByLocation = new Map<string, string>()
  private readonly defLocation = new Map<string, Location>()
  private readonly queue: { name: string; loc: Location; variant: SchemaVariant; dir: SchemaDirection }[] = []
  private readonly roots: { name: string; loc: Location }[] = []
  private readonly compiled: CompiledSchema[] = []
  private readonly problems: SpecProblem[] = []
  private readonly knownFormats = new Set(Object.keys(FORMATS))
  private done = false

  constructor(
    private readonly docs: SpecDocuments,
    private readonly version: '3.0' | '3.1',
  ) {
    this.ajv = new Ajv2020({
      allErrors: true,
      strict: false,
      allowUnionTypes: true,
      validateFormats: true,
      unicodeRegExp: true,
      // Spec patterns run on client input: a linear-time engine, so no pattern can stall the loop.
      // optimize off: ajv's code optimizer, on large schemas, leaves V8's shared object shapes in
      // a state that slows every request the process serves afterwards (see src/config/load.ts).
      code: { regExp: ajvLinearRegExp, optimize: false },
      formats: FORMATS,
      logger: false,
      inlineRefs: true,
    })
  }

  /** Registers a schema written at `loc`; returns a handle for get() after compile(). */
  add(schema: unknown, loc: Location, variant: SchemaVariant, dir: SchemaDirection = 'any'): number {
    if (this.done) throw new Error('SchemaCompiler: add() after compile()')
    const name = `r${this.roots.length}`
    try {
      this.defs[name] = this.translate(schema, loc, variant, true, 0, dir)
    } catch (err) {
      if (!(err instanceof SpecError)) throw err
      this.problems.push(...err.problems)
      this.defs[name] = true
    }
    this.defLocation.set(name, loc)
    this.roots.push({ name, loc })
    this.drain()
    return this.roots.length - 1
  }

  /** Compiles every registered schema; throws SpecError listing every schema that does not compile. */
  compile(): void {
    if (this.done) return
    this.done = true
    for (const [name, def] of Object.entries(this.defs)) {
      if (!this.ajv.validateSchema(def as never)) {
        const loc = this.defLocation.get(name) as Location
        for (const e of this.ajv.errors ?? []) {
          this.problems.push({
            file: loc.file,
            pointer: loc.pointer + e.instancePath,
            message: `invalid schema: ${e.message}`,
          })
        }
      }
    }
    if (this.problems.length > 0) throw new SpecError(this.problems)
    this.ajv.addSchema({ $id: this.id, $defs: this.defs } as never)
    for (const r of this.roots) {
      try {
        const validate = this.ajv.getSchema(`${this.id}#/$defs/${r.name}`)
        if (!validate) throw new Error('not found')
        this.compiled.push({ location: r.loc, validate })
      } catch (err) {
        this.problems.push({
          file: r.loc.file,
          pointer: r.loc.pointer,
          message: `schema does not compile: ${(err as Error).message}`,
        })
      }
    }
    if (this.problems.length > 0) throw new SpecError(this.problems)
  }

  get(handle: number): CompiledSchema {
    const c = this.compiled[handle]
    if (!c) throw new Error('SchemaCompiler: unknown handle or not compiled')
    return c
  }

  private drain(): void {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      try {
        const value = this.docs.at(item.loc.file, item.loc.pointer)
        this.defs[item.name] = this.translate(value, item.loc, item.variant, false, 0, item.dir)
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        this.problems.push(...err.problems)
        this.defs[item.name] = true
      }
    }
  }

  /** The bundle def for the schema at a location (translated later, from the queue). */
  private defFor(loc: Location, variant: SchemaVariant, dir: SchemaDirection): string {
    const key = `${variant}|${dir}|${loc.file}#${loc.pointer}`
    let name = this.defByLocation.get(key)
    if (name === undefined) {
      name = `d${this.defByLocation.size}`
      this.defByLocation.set(key, name)
      this.defLocation.set(name, loc)
      this.queue.push({ name, loc, variant, dir })
    }
    return name
  }

  private translate(
    node: unknown,
    loc: Location,
    variant: SchemaVariant,
    valuePos: boolean,
    depth: number,
    dir: SchemaDirection,
  ): unknown {
    if (typeof node === 'boolean') {
      if (this.version === '3.0') this.fail(loc, 'a schema must be an object in OAS 3.0')
      return node
    }
    if (node === null || typeof node !== 'object' || Array.isArray(node))
      this.fail(loc, 'a schema must be an object')
    if (depth > this.docs.limits.maxDepth) this.fail(loc, 'schema nested too deeply')
    const src = node as Record<string, unknown>
    const out: Record<string, unknown> = {}
    if (typeof src.$ref === 'string') {
      const target = this.docs.target(src.$ref, loc)
      out.$ref = `${this.id}#/$defs/${this.defFor(target, variant, dir)}`
      if (this.version === '3.0') {
        if (valuePos && variant === 'closed' && this.closable(src, loc, 0, new Set()))
          out.unevaluatedProperties = false
        return out
      }
    } else if (src.$ref !== undefined)
      this.fail({ file: loc.file, pointer: joinPointer(loc.pointer, '$ref') }, '$ref must be a string')
    for (const [k, v] of Object.entries(src)) {
      if (k === '$ref' || DROP.has(k) || k.startsWith('x-')) continue
      const at = { file: loc.file, pointer: joinPointer(loc.pointer, k) }
      if (k === '$id' || k === '$anchor' || k === '$dynamicAnchor' || k === '$dynamicRef') {
        this.warnings.push(
          `${at.file}#${at.pointer}: "${k}" is not supported inside OpenAPI schemas and is ignored`,
        )
        continue
      }
      if (VALUE_MAPS.includes(k) && v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const m: Record<string, unknown> = {}
        for (const [pk, pv] of Object.entries(v)) {
          const pat = { file: at.file, pointer: joinPointer(at.pointer, pk) }
          if (k === 'properties' && this.hidden(pv, pat, dir)) {
            m[pk] = false // readOnly in a request, writeOnly in a response: must be absent
            continue
          }
          m[pk] = this.translate(
            pv,
            { file: at.file, pointer: joinPointer(at.pointer, pk) },
            variant,
            true,
            depth + 1,
            dir,
          )
        }
        out[k] = m
      } else if (
        (VALUE_ONE.includes(k) || BRANCH_ONE.includes(k)) &&
        v !== null &&
        typeof v === 'object' &&
        !Array.isArray(v)
      ) {
        out[k] = this.translate(v, at, variant, VALUE_ONE.includes(k), depth + 1, dir)
      } else if ((BRANCH_LIST.includes(k) || VALUE_LIST.includes(k)) && Array.isArray(v)) {
        out[k] = v.map((s, i) =>
          this.translate(
            s,
            { file: at.file, pointer: joinPointer(at.pointer, i) },
            variant,
            VALUE_LIST.includes(k),
            depth + 1,
            dir,
          ),
        )
      } else if (k === 'format' && typeof v === 'string') {
        if (!this.knownFormats.has(v)) {
          this.knownFormats.add(v)
          this.ajv.addFormat(v, true)
          this.warnings.push(`${at.file}#${at.pointer}: format "${v}" is not checked (unknown format)`)
        }
        out[k] = v
      } else out[k] = v
    }
    if (this.version === '3.0') this.from30(src, out, loc)
    if (
      dir !== 'any' &&
      Array.isArray(out.required) &&
      out.properties &&
      typeof out.properties === 'object'
    ) {
      // OAS: a required readOnly property is required in responses only (writeOnly: requests only).
      const props = out.properties as Record<string, unknown>
      out.required = (out.required as unknown[]).filter((r) => typeof r !== 'string' || props[r] !== false)
    }
    if (
      valuePos &&
      variant === 'closed' &&
      out.unevaluatedProperties === undefined &&
      out.additionalProperties !== false
    ) {
      if (this.closable(src, loc, 0, new Set())) out.unevaluatedProperties = false
    }
    return out
  }

  /**
   * True when a property schema is `readOnly` (direction `request`) or `writeOnly` (`response`),
   * on itself or on the schema a `$ref` chain leads to.
   */
  private hidden(node: unknown, loc: Location, dir: SchemaDirection): boolean {
    if (dir === 'any') return false
    const mark = dir === 'request' ? 'readOnly' : 'writeOnly'
    let cur = node
    let at = loc
    for (let i = 0; i < 16; i++) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return false
      const s = cur as Record<string, unknown>
      if (s[mark] === true) return true
      if (typeof s.$ref !== 'string') return false
      try {
        at = this.docs.target(s.$ref, at)
        cur = this.docs.at(at.file, at.pointer)
      } catch {
        return false // a broken $ref is reported by translate
      }
    }
    return false
  }

  /** OAS 3.0 → 2020-12 for the keywords whose meaning changed. */
  private from30(src: Record<string, unknown>, out: Record<string, unknown>, loc: Location): void {
    if (src.nullable === true) {
      if (typeof src.type === 'string') out.type = [src.type, 'null']
      if (Array.isArray(src.enum) && !src.enum.includes(null)) out.enum = [...src.enum, null]
    }
    for (const [ex, plain] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ] as const) {
      const flag = src[ex]
      if (flag === undefined) continue
      if (typeof flag !== 'boolean')
        this.fail(
          { file: loc.file, pointer: joinPointer(loc.pointer, ex) },
          `${ex} must be a boolean in OAS 3.0`,
        )
      if (flag === true && typeof src[plain] === 'number') {
        out[ex] = src[plain]
        delete out[plain]
      } else delete out[ex]
    }
  }

  /**
   * True when the schema declares properties (itself or through $ref/allOf/anyOf/oneOf) and
   * nothing along the way allows others.
   */
  private closable(node: unknown, loc: Location, depth: number, seen: Set<string>): boolean {
    const r = this.shape(node, loc, depth, seen)
    return r.declares && !r.open
  }

  private shape(
    node: unknown,
    loc: Location,
    depth: number,
    seen: Set<string>,
  ): { declares: boolean; open: boolean } {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || depth > 32)
      return { declares: false, open: false }
    const s = node as Record<string, unknown>
    let declares = s.properties !== null && typeof s.properties === 'object'
    let open =
      (s.additionalProperties !== undefined && s.additionalProperties !== false) ||
      s.patternProperties !== undefined ||
      s.unevaluatedProperties !== undefined
    const visit = (child: unknown, at: Location) => {
      const r = this.shape(child, at, depth + 1, seen)
      declares ||= r.declares
      open ||= r.open
    }
    if (typeof s.$ref === 'string') {
      const t = this.docs.target(s.$ref, loc)
      const key = `${t.file}#${t.pointer}`
      if (!seen.has(key)) {
        seen.add(key)
        visit(this.docs.at(t.file, t.pointer), t)
      }
      if (this.version === '3.0') return { declares, open }
    }
    for (const k of BRANCH_LIST) {
      const list = s[k]
      if (!Array.isArray(list)) continue
      for (let i = 0; i < list.length; i++)
        visit(list[i], { file: loc.file, pointer: joinPointer(loc.pointer, k, i) })
    }
    return { declares, open }
  }

  private fail(loc: Location, message: string): never {
    throw new SpecError([{ file: loc.file, pointer: loc.pointer, message }])
  }
}

export type { ErrorObject }
