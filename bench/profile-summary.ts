// Summarises a V8 CPU profile (`node --cpu-prof`, `npm run bench -- --profile DIR`): where the
// gateway's busy time goes, as shares of the non-idle samples (the box's other load shows as idle
// time of the profiled process, so shares stay comparable between a busy and a quiet run better than
// absolute times do).
//
// Usage: node dist/bench/profile-summary.js FILE.cpuprofile [--top N] [--under PATTERN]
//   self:      time in the function itself, top N
//   inclusive: time in the function and what it calls, for the project's own code (src/), top N
//   packages:  self time by npm package / project file / Node internal
//   --under PATTERN: the inclusive time of each callee, three levels down, under the functions whose
//              "name file:line" contains PATTERN (e.g. --under property-filter/policy.js)
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
}

export interface Share {
  name: string
  /** share of the busy (non-idle) samples, % */
  pct: number
}

export interface ProfileSummary {
  samples: number
  busy: number
  self: Share[]
  inclusive: Share[]
  packages: Share[]
}

function frameName(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\/.*?\/(dist\/|node_modules\/)/, '$1')
  return url ? `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}` : f.functionName
}

function packageOf(f: CallFrame): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url)
  if (m?.[1]) return `npm:${m[1]}`
  if (f.url.startsWith('node:')) return f.url
  const d = /\/dist\/(.+)$/.exec(f.url)
  if (d?.[1]) return d[1]
  return f.url || f.functionName
}

const NOT_BUSY = new Set(['(idle)'])

function top(
  map: Map<string, number>,
  busy: number,
  n: number,
  keep: (k: string) => boolean = () => true,
): Share[] {
  return [...map]
    .filter(([k]) => keep(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, c]) => ({ name, pct: Number(((100 * c) / busy).toFixed(1)) }))
}

/** Self, inclusive (project code) and per-package shares of the busy samples of a profile. */
export function summarizeProfile(p: CpuProfile, n = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((x) => [x.id, x]))
  const parent = new Map<number, number>()
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id)
  const counts = new Map<number, number>()
  for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1)
  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  const pkgs = new Map<string, number>()
  let busy = 0
  for (const [id, c] of counts) {
    const node = byId.get(id)
    if (!node || NOT_BUSY.has(node.callFrame.functionName)) continue
    busy += c
    const name = frameName(node.callFrame)
    self.set(name, (self.get(name) ?? 0) + c)
    const pkg = packageOf(node.callFrame)
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + c)
    // each function once per stack (recursion counted once)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)
      if (!f) break
      const k = frameName(f.callFrame)
      if (seen.has(k)) continue
      seen.add(k)
      incl.set(k, (incl.get(k) ?? 0) + c)
    }
  }
  return {
    samples: p.samples.length,
    busy,
    self: top(self, busy, n),
    inclusive: top(incl, busy, n, (k) => k.includes(' dist/src/')),
    packages: top(pkgs, busy, n),
  }
}

/** Inclusive shares of the callees (three levels) under the functions matching `pattern`. */
export function under(p: CpuProfile, pattern: string): Share[] {
  const byId = new Map(p.nodes.map((x) => [x.id, x]))
  const counts = new Map<number, number>()
  let busy = 0
  for (const s of p.samples) {
    counts.set(s, (counts.get(s) ?? 0) + 1)
    if (!NOT_BUSY.has(byId.get(s)?.callFrame.functionName ?? '')) busy++
  }
  const total = new Map<number, number>()
  const sum = (x: ProfileNode): number => {
    const known = total.get(x.id)
    if (known !== undefined) return known
    let t = counts.get(x.id) ?? 0
    for (const c of x.children ?? []) {
      const child = byId.get(c)
      if (child) t += sum(child)
    }
    total.set(x.id, t)
    return t
  }
  const out = new Map<string, number>()
  const order: string[] = []
  const walk = (x: ProfileNode, depth: number) => {
    const k = `${'  '.repeat(depth)}${frameName(x.callFrame)}`
    if (!out.has(k)) order.push(k)
    out.set(k, (out.get(k) ?? 0) + sum(x))
    if (depth < 3) for (const c of x.children ?? []) walk(byId.get(c) as ProfileNode, depth + 1)
  }
  for (const x of p.nodes) if (frameName(x.callFrame).includes(pattern)) walk(x, 0)
  return order
    .map((name) => ({ name, pct: Number(((100 * (out.get(name) ?? 0)) / Math.max(1, busy)).toFixed(1)) }))
    .filter((s) => s.pct >= 0.3)
}

function print(title: string, rows: Share[]): void {
  process.stdout.write(`\n${title}\n`)
  for (const r of rows) process.stdout.write(`${r.pct.toFixed(1).padStart(6)} %  ${r.name}\n`)
}

if (process.argv[1]?.endsWith('profile-summary.js')) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string' }, under: { type: 'string' } },
  })
  const file = positionals[0]
  if (!file) {
    process.stderr.write(
      'usage: node dist/bench/profile-summary.js FILE.cpuprofile [--top N] [--under PATTERN]\n',
    )
    process.exit(2)
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const s = summarizeProfile(p, Number(values.top ?? 25))
  process.stdout.write(`${file}: ${s.samples} samples, ${s.busy} busy (shares below are of the busy ones)\n`)
  print('self time', s.self)
  print('inclusive time, project code', s.inclusive)
  print('self time by package / file', s.packages)
  if (values.under) print(`under ${values.under}`, under(p, values.under))
}
