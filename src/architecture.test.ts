/**
 * Structure rules checked on every `npm test`: no import cycle in src/ (runtime imports: `import
 * type` is erased by the compiler and cannot create one at run time), and the gateway core in
 * files a reader can hold (none over 400 lines).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'

const SRC = new URL('../../src/', import.meta.url).pathname

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) sources(p, out)
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p)
  }
  return out
}

/** Runtime imports of a module: static imports and re-exports that bring a value, and dynamic imports. */
export function runtimeImports(file: string, text: string): string[] {
  const out: string[] = []
  const stmt = /^\s*(import|export)\s+([^'";]*?)\s*from\s+'(\.{1,2}\/[^']+)'/gm
  for (const m of text.matchAll(stmt)) {
    const clause = (m[2] as string).trim()
    if (clause.startsWith('type ')) continue
    const braces = /^\{([^}]*)\}$/.exec(clause)
    if (braces) {
      const names = (braces[1] as string)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      if (names.length > 0 && names.every((n) => n.startsWith('type '))) continue
    }
    out.push(m[3] as string)
  }
  for (const m of text.matchAll(/^\s*import\s+'(\.{1,2}\/[^']+)'/gm)) out.push(m[1] as string)
  for (const m of text.matchAll(/import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)) out.push(m[1] as string)
  return out.map((spec) => resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
}

/** Strongly connected components with more than one module (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0
  const stack: string[] = []
  const on = new Set<string>()
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const out: string[][] = []
  const visit = (v: string): void => {
    idx.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number))
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        on.delete(w)
        c.push(w)
      } while (w !== v)
      if (c.length > 1) out.push(c.sort())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
  return out
}

test('cycle finder: finds a cycle, ignores type-only imports', () => {
  assert.deepEqual(
    cycles(
      new Map([
        ['a', ['b']],
        ['b', ['a']],
        ['c', ['a']],
      ]),
    ),
    [['a', 'b']],
  )
  assert.deepEqual(
    runtimeImports('/x/a.ts', "import type { B } from './b.js'\nimport { type C } from './c.js'"),
    [],
  )
  assert.deepEqual(runtimeImports('/x/a.ts', "import { type B, b } from './b.js'\nexport * from './c.js'"), [
    '/x/b.ts',
    '/x/c.ts',
  ])
})

test('no import cycle in src/', () => {
  const files = sources(SRC)
  const graph = new Map(files.map((f) => [f, runtimeImports(f, readFileSync(f, 'utf8'))]))
  const found = cycles(graph).map((c) => c.map((f) => relative(SRC, f)).join(' → '))
  assert.deepEqual(found, [])
})

test('no file in src/gateway over 400 lines', () => {
  const long = sources(join(SRC, 'gateway'))
    .map((f) => ({ f: relative(SRC, f), lines: readFileSync(f, 'utf8').split('\n').length }))
    .filter((x) => x.lines > 400)
  assert.deepEqual(long, [])
})
