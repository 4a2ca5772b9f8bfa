/**
 * A small renderer for Helm charts, for tests on a machine without `helm`: Go's text/template
 * (actions with `{{-`/`-}}` trimming, comments, if / else if / else, with, range, define, include,
 * variables, pipelines, parenthesized calls) and the Sprig/Helm functions the project's chart
 * uses. Anything else is an error, never silently rendered: a chart change that needs more makes
 * the test fail until this file learns it.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'

type Value = unknown

interface Scope {
  dot: Value
  root: Value
  vars: Map<string, Value>[]
}

type Node =
  | { t: 'text'; s: string }
  | { t: 'out'; p: string }
  | { t: 'if'; branches: { cond: string | undefined; body: Node[] }[] }
  | { t: 'with'; p: string; body: Node[]; orElse: Node[] }
  | { t: 'range'; p: string; body: Node[]; orElse: Node[] }
  | { t: 'define'; name: string; body: Node[] }

/** Splits a template into text and actions, applying the trim markers. */
function lex(src: string): { kind: 'text' | 'action'; s: string }[] {
  const out: { kind: 'text' | 'action'; s: string }[] = []
  let i = 0
  while (i < src.length) {
    const open = src.indexOf('{{', i)
    if (open === -1) {
      out.push({ kind: 'text', s: src.slice(i) })
      break
    }
    let text = src.slice(i, open)
    let start = open + 2
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '')
      start += 1
    }
    out.push({ kind: 'text', s: text })
    // The action ends at the first `}}` outside a string literal.
    let j = start
    let quote: string | undefined
    for (; j < src.length; j++) {
      const c = src[j]
      if (quote) {
        if (c === '\\' && quote === '"') j++
        else if (c === quote) quote = undefined
      } else if (c === '"' || c === '`') quote = c
      else if (c === '}' && src[j + 1] === '}') break
    }
    if (j >= src.length) throw new Error(`unclosed action at offset ${open}`)
    let body = src.slice(start, j)
    i = j + 2
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1)
      const m = /^\s*/.exec(src.slice(i))
      i += m ? m[0].length : 0
    }
    out.push({ kind: 'action', s: body.trim() })
  }
  return out
}

function parse(src: string): Node[] {
  const tokens = lex(src)
  let pos = 0
  const block = (stops: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = []
    while (pos < tokens.length) {
      const tok = tokens[pos++] as { kind: string; s: string }
      if (tok.kind === 'text') {
        if (tok.s !== '') nodes.push({ t: 'text', s: tok.s })
        continue
      }
      const a = tok.s
      if (a.startsWith('/*')) continue
      const word = /^[a-z]+/.exec(a)?.[0] ?? ''
      if (stops.includes(word) || (word === 'else' && stops.includes('else'))) return { nodes, stop: a }
      if (word === 'if') {
        const branches: { cond: string | undefined; body: Node[] }[] = []
        let cond: string | undefined = a.slice(2).trim()
        for (;;) {
          const b = block(['else', 'end'])
          branches.push({ cond, body: b.nodes })
          if (b.stop === 'end') break
          const rest = b.stop.slice(4).trim()
          if (rest.startsWith('if ')) cond = rest.slice(3).trim()
          else if (rest === '') cond = undefined
          else throw new Error(`unsupported: {{ ${b.stop} }}`)
        }
        nodes.push({ t: 'if', branches })
      } else if (word === 'with' || word === 'range') {
        const b = block(['else', 'end'])
        let orElse: Node[] = []
        if (b.stop !== 'end') {
          if (b.stop !== 'else') throw new Error(`unsupported: {{ ${b.stop} }}`)
          const e = block(['end'])
          orElse = e.nodes
        }
        nodes.push({ t: word, p: a.slice(word.length).trim(), body: b.nodes, orElse })
      } else if (word === 'define') {
        const name = /^define\s+"([^"]+)"$/.exec(a)?.[1]
        if (!name) throw new Error(`bad define: ${a}`)
        const b = block(['end'])
        nodes.push({ t: 'define', name, body: b.nodes })
      } else if (['end', 'else', 'template', 'block', 'break', 'continue'].includes(word)) {
        throw new Error(`unsupported or unbalanced: {{ ${a} }}`)
      } else nodes.push({ t: 'out', p: a })
    }
    if (stops.length > 0) throw new Error(`missing {{ end }} (expected one of ${stops.join(', ')})`)
    return { nodes, stop: '' }
  }
  return block([]).nodes
}

// ---- expressions -------------------------------------------------------------------------------

/** `chained`: a field written right after `)`, e.g. `(index .Values.list 0).port`. */
type Tok = { k: 'str' | 'num' | 'id' | 'field' | 'var' | 'op'; v: string; chained?: boolean }

function tokenize(s: string): Tok[] {
  const out: Tok[] = []
  let i = 0
  while (i < s.length) {
    const c = s[i] as string
    if (/\s/.test(c)) {
      i++
    } else if (c === '"') {
      let j = i + 1
      let v = ''
      while (j < s.length && s[j] !== '"') {
        if (s[j] === '\\') {
          const e = s[j + 1]
          v += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '')
          j += 2
        } else v += s[j++]
      }
      out.push({ k: 'str', v })
      i = j + 1
    } else if (c === '`') {
      const j = s.indexOf('`', i + 1)
      out.push({ k: 'str', v: s.slice(i + 1, j) })
      i = j + 1
    } else if (c === '(' || c === ')' || c === '|') {
      out.push({ k: 'op', v: c })
      i++
    } else if (s.startsWith(':=', i) || (c === '=' && s[i + 1] !== '=')) {
      out.push({ k: 'op', v: ':=' })
      i += c === '=' ? 1 : 2
    } else if (c === ',') {
      out.push({ k: 'op', v: ',' })
      i++
    } else {
      const m =
        /^(\$[A-Za-z0-9_]*|\.[A-Za-z0-9_.]*|-?\d+(\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)((\.[A-Za-z0-9_]+)*)/.exec(
          s.slice(i),
        )
      if (!m) throw new Error(`cannot read "${s.slice(i)}"`)
      const w = m[0]
      if (w.startsWith('$')) out.push({ k: 'var', v: w })
      else if (w.startsWith('.')) out.push({ k: 'field', v: w, chained: s[i - 1] === ')' })
      else if (/^-?\d/.test(w)) out.push({ k: 'num', v: w })
      else out.push({ k: 'id', v: w })
      i += w.length
    }
  }
  return out
}

function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return Object.keys(v as object).length > 0
  return true
}

function fieldOf(v: Value, path: string[]): Value {
  let cur = v
  for (const p of path) {
    if (p === '') continue
    if (cur === undefined || cur === null) return undefined
    cur = (cur as Record<string, Value>)[p]
  }
  return cur
}

function toYaml(v: Value): string {
  if (v === undefined || v === null) return 'null'
  return stringifyYaml(v, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '')
}

function goString(v: Value): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function sprintf(fmt: string, args: Value[]): string {
  let i = 0
  return fmt.replace(/%([svdq%])/g, (_, f: string) => {
    if (f === '%') return '%'
    const a = args[i++]
    if (f === 'q') return JSON.stringify(goString(a))
    if (f === 'd') return String(Math.trunc(Number(a)))
    return goString(a)
  })
}

export class Chart {
  private readonly defines = new Map<string, Node[]>()
  private readonly templates: { name: string; nodes: Node[] }[] = []
  readonly meta: Record<string, Value>
  readonly defaults: Record<string, Value>

  constructor(readonly dir: string) {
    this.meta = parseYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<string, Value>
    this.defaults = parseYaml(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Record<string, Value>
    const tdir = join(dir, 'templates')
    for (const f of readdirSync(tdir).sort()) {
      const nodes = parse(readFileSync(join(tdir, f), 'utf8'))
      this.collectDefines(nodes)
      if (f.endsWith('.yaml') || f.endsWith('.yml') || f === 'NOTES.txt')
        this.templates.push({ name: f, nodes })
    }
  }

  private collectDefines(nodes: Node[]): void {
    for (const n of nodes) if (n.t === 'define') this.defines.set(n.name, n.body)
  }

  /**
   * Renders every template with `values` deep-merged over values.yaml (as `helm template` does):
   * one entry per template file, NOTES.txt included.
   */
  render(
    values: Record<string, Value> = {},
    release = { Name: 'portcullis', Namespace: 'default' },
  ): Map<string, string> {
    const merged = deepMerge(structuredClone(this.defaults), values)
    const chart = {
      Name: this.meta.name,
      Version: this.meta.version,
      AppVersion: this.meta.appVersion,
    }
    const root = {
      Values: merged,
      Release: { ...release, Service: 'Helm', IsInstall: true },
      Chart: chart,
      Capabilities: {},
      Template: {},
    }
    const out = new Map<string, string>()
    for (const t of this.templates) {
      out.set(t.name, this.exec(t.nodes, { dot: root, root, vars: [new Map([['$', root]])] }))
    }
    return out
  }

  /** The rendered manifests as objects (NOTES.txt and empty documents left out). */
  manifests(values: Record<string, Value> = {}): Record<string, unknown>[] {
    const docs: Record<string, unknown>[] = []
    for (const [name, text] of this.render(values)) {
      if (name === 'NOTES.txt') continue
      for (const part of text.split(/^---\s*$/m)) {
        const doc = parseYaml(part) as Record<string, unknown> | null
        if (doc !== null && doc !== undefined) docs.push(doc)
      }
    }
    return docs
  }

  private exec(nodes: Node[], scope: Scope): string {
    let out = ''
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out += n.s
          break
        case 'define':
          break
        case 'out': {
          const r = this.pipeline(n.p, scope)
          if (!r.declared) out += goString(r.value)
          break
        }
        case 'if': {
          for (const b of n.branches) {
            if (b.cond === undefined || truthy(this.pipeline(b.cond, scope).value)) {
              out += this.exec(b.body, { ...scope, vars: [...scope.vars, new Map()] })
              break
            }
          }
          break
        }
        case 'with': {
          const v = this.pipeline(n.p, scope).value
          if (truthy(v)) out += this.exec(n.body, { ...scope, dot: v, vars: [...scope.vars, new Map()] })
          else out += this.exec(n.orElse, scope)
          break
        }
        case 'range': {
          const m = /^(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*(.*)$/.exec(n.p)
          const expr = m ? (m[3] as string) : n.p
          const v = this.pipeline(expr, scope).value
          const entries: [Value, Value][] = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : v && typeof v === 'object'
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, (v as Record<string, Value>)[k]])
              : []
          if (entries.length === 0) out += this.exec(n.orElse, scope)
          for (const [k, x] of entries) {
            const vars = new Map<string, Value>()
            if (m?.[2]) {
              vars.set(m[1] as string, k)
              vars.set(m[2], x)
            } else if (m?.[1]) vars.set(m[1], x)
            out += this.exec(n.body, { ...scope, dot: x, vars: [...scope.vars, vars] })
          }
          break
        }
      }
    }
    return out
  }

  private lookupVar(name: string, scope: Scope): Value {
    for (let i = scope.vars.length - 1; i >= 0; i--) {
      const frame = scope.vars[i] as Map<string, Value>
      if (frame.has(name)) return frame.get(name)
    }
    throw new Error(`undefined variable ${name}`)
  }

  /** Evaluates `[$x :=] cmd | cmd …`. */
  private pipeline(src: string, scope: Scope): { value: Value; declared: boolean } {
    const toks = tokenize(src)
    let declared: string | undefined
    if (toks[0]?.k === 'var' && toks[1]?.k === 'op' && toks[1].v === ':=') {
      declared = toks[0].v
      toks.splice(0, 2)
    }
    const p = { toks, i: 0 }
    const value = this.pipe(p, scope)
    if (p.i !== toks.length) throw new Error(`unexpected "${toks[p.i]?.v}" in {{ ${src} }}`)
    if (declared !== undefined) {
      const frame = scope.vars[scope.vars.length - 1] as Map<string, Value>
      frame.set(declared, value)
    }
    return { value, declared: declared !== undefined }
  }

  private pipe(p: { toks: Tok[]; i: number }, scope: Scope): Value {
    let value = this.command(p, scope, undefined, false)
    while (p.toks[p.i]?.k === 'op' && p.toks[p.i]?.v === '|') {
      p.i++
      value = this.command(p, scope, value, true)
    }
    return value
  }

  private command(p: { toks: Tok[]; i: number }, scope: Scope, piped: Value, hasPiped: boolean): Value {
    const first = p.toks[p.i]
    if (!first) throw new Error('empty command')
    if (first.k === 'id' && !['true', 'false', 'nil'].includes(first.v)) {
      p.i++
      const args: Value[] = []
      while (
        p.i < p.toks.length &&
        !(p.toks[p.i]?.k === 'op' && [')', '|'].includes(p.toks[p.i]?.v as string))
      )
        args.push(this.operand(p, scope))
      if (hasPiped) args.push(piped)
      return this.call(first.v, args, scope)
    }
    const v = this.operand(p, scope)
    if (hasPiped) throw new Error(`cannot pipe into a value (${first.v})`)
    return v
  }

  private operand(p: { toks: Tok[]; i: number }, scope: Scope): Value {
    const t = p.toks[p.i++] as Tok
    switch (t.k) {
      case 'str':
        return t.v
      case 'num':
        return Number(t.v)
      case 'field':
        return fieldOf(scope.dot, t.v.slice(1).split('.'))
      case 'var': {
        const [name, ...path] = t.v.split('.')
        return fieldOf(this.lookupVar(name as string, scope), path)
      }
      case 'id':
        if (t.v === 'true') return true
        if (t.v === 'false') return false
        if (t.v === 'nil') return null
        // A function without arguments used as an operand, e.g. (dict).
        return this.call(t.v, [], scope)
      case 'op':
        if (t.v === '(') {
          const v = this.pipe(p, scope)
          if (p.toks[p.i]?.v !== ')') throw new Error('missing )')
          p.i++
          const next = p.toks[p.i]
          if (next?.k === 'field' && next.chained) {
            p.i++
            return fieldOf(v, next.v.slice(1).split('.'))
          }
          return v
        }
    }
    throw new Error(`unexpected "${t.v}"`)
  }

  private call(name: string, a: Value[], scope: Scope): Value {
    const s = (i: number) => goString(a[i])
    switch (name) {
      case 'include': {
        const body = this.defines.get(s(0))
        if (!body) throw new Error(`no template named "${s(0)}"`)
        return this.exec(body, { dot: a[1], root: scope.root, vars: [new Map([['$', a[1]]])] })
      }
      case 'quote':
        return JSON.stringify(goString(a[a.length - 1]))
      case 'squote':
        return `'${goString(a[a.length - 1])}'`
      case 'default':
        return truthy(a[1]) ? a[1] : a[0]
      case 'required':
        if (!truthy(a[1])) throw new Error(`required: ${s(0)}`)
        return a[1]
      case 'toYaml':
        return toYaml(a[0])
      case 'toJson':
        return JSON.stringify(a[0])
      case 'toString':
        return goString(a[0])
      case 'int':
        return Math.trunc(Number(a[0]))
      case 'nindent':
      case 'indent': {
        const pad = ' '.repeat(Number(a[0]))
        const text = goString(a[1])
          .split('\n')
          .map((l) => pad + l)
          .join('\n')
        return name === 'nindent' ? `\n${text}` : text
      }
      case 'trunc':
        return s(1).slice(0, Number(a[0]))
      case 'trimSuffix':
        return s(1).endsWith(s(0)) ? s(1).slice(0, -s(0).length || undefined) : s(1)
      case 'trimPrefix':
        return s(1).startsWith(s(0)) ? s(1).slice(s(0).length) : s(1)
      case 'contains':
        return s(1).includes(s(0))
      case 'printf':
        return sprintf(s(0), a.slice(1))
      case 'print':
        return a.map(goString).join('')
      case 'upper':
        return s(0).toUpperCase()
      case 'lower':
        return s(0).toLowerCase()
      case 'b64enc':
        return Buffer.from(s(0)).toString('base64')
      case 'sha256sum':
        return createHash('sha256').update(s(0)).digest('hex')
      case 'and': {
        for (const v of a) if (!truthy(v)) return v
        return a[a.length - 1]
      }
      case 'or': {
        for (const v of a) if (truthy(v)) return v
        return a[a.length - 1]
      }
      case 'not':
        return !truthy(a[0])
      case 'eq':
        return a.slice(1).some((v) => v === a[0])
      case 'ne':
        return a[0] !== a[1]
      case 'empty':
        return !truthy(a[0])
      case 'index': {
        let v = a[0]
        for (const k of a.slice(1)) v = (v as Record<string, Value> | undefined)?.[k as string]
        return v
      }
      case 'dict': {
        const d: Record<string, Value> = {}
        for (let i = 0; i + 1 < a.length; i += 2) d[s(i)] = a[i + 1]
        return d
      }
      case 'list':
        return [...a]
      case 'set': {
        ;(a[0] as Record<string, Value>)[s(1)] = a[2]
        return a[0]
      }
      case 'hasKey':
        return Object.hasOwn(a[0] as object, s(1))
      case 'deepCopy':
        return structuredClone(a[0])
    }
    throw new Error(`function "${name}" is not supported by the test renderer`)
  }
}

function deepMerge(base: Record<string, Value>, over: Record<string, Value>): Record<string, Value> {
  for (const [k, v] of Object.entries(over)) {
    const b = base[k]
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b))
      base[k] = deepMerge(b as Record<string, Value>, v as Record<string, Value>)
    else if (v === null) delete base[k]
    else base[k] = v
  }
  return base
}
