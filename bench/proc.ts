// Readers for Linux /proc: per-process CPU time (/proc/PID/stat) and system-wide CPU time (/proc/stat).
// Used by the bench harness for CPU-per-request accounting and for the noise guard.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

export interface ProcStat {
  pid: number
  comm: string
  state: string
  ppid: number
  /** user-mode CPU time in clock ticks (field 14) */
  utime: number
  /** kernel-mode CPU time in clock ticks (field 15) */
  stime: number
  /** start time after boot in clock ticks (field 22); with pid it identifies a process across pid reuse */
  starttime: number
}

/**
 * Parses the content of /proc/PID/stat. The comm field (2) is in parentheses and may itself contain spaces
 * and parentheses, so it runs from the first '(' to the LAST ')'; the remaining fields are space separated.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) throw new Error(`malformed /proc/PID/stat: ${text.slice(0, 80)}`)
  const pid = Number(text.slice(0, open).trim())
  const comm = text.slice(open + 1, close)
  // rest[0] is field 3 (state), so field N (1-based) is rest[N - 3]
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const field = (n: number): number => {
    const v = Number(rest[n - 3])
    if (!Number.isFinite(v)) throw new Error(`malformed /proc/PID/stat field ${n}: ${text.slice(0, 80)}`)
    return v
  }
  if (!Number.isInteger(pid)) throw new Error(`malformed /proc/PID/stat pid: ${text.slice(0, 80)}`)
  return {
    pid,
    comm,
    state: rest[0] ?? '?',
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    starttime: field(22),
  }
}

/** utime + stime of one process in clock ticks, or undefined when it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}

/** Every process currently in /proc (processes that vanish while being read are left out). */
export function readAllProcStats(): ProcStat[] {
  const out: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue
    const s = readProcStat(Number(name))
    if (s) out.push(s)
  }
  return out
}

/** The given pids plus all their descendants, found through the ppid links of a /proc snapshot. */
export function withDescendants(roots: Iterable<number>, all: ProcStat[]): Set<number> {
  const children = new Map<number, number[]>()
  for (const p of all) {
    const list = children.get(p.ppid)
    if (list) list.push(p.pid)
    else children.set(p.ppid, [p.pid])
  }
  const out = new Set<number>()
  const stack = [...roots]
  while (stack.length > 0) {
    const pid = stack.pop()!
    if (out.has(pid)) continue
    out.add(pid)
    for (const c of children.get(pid) ?? []) stack.push(c)
  }
  return out
}

/** utime+stime in clock ticks summed over a process tree (e.g. nginx master + workers). */
export function treeCpuTicks(root: number): number {
  const all = readAllProcStats()
  const tree = withDescendants([root], all)
  let ticks = 0
  for (const p of all) if (tree.has(p.pid)) ticks += p.utime + p.stime
  return ticks
}

export interface CpuTimes {
  /** sum of user nice system idle iowait irq softirq steal, in clock ticks over all CPUs */
  total: number
  steal: number
}

/** Parses the aggregate "cpu" line of /proc/stat. */
export function parseCpuLine(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (!line) throw new Error('no aggregate cpu line in /proc/stat')
  // guest and guest_nice (fields 9, 10) are already included in user and nice
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: v.reduce((a, b) => a + b, 0), steal: v[7] ?? 0 }
}

export function readCpuTimes(): CpuTimes {
  return parseCpuLine(readFileSync('/proc/stat', 'utf8'))
}

let clkTckCache: number | undefined

/** Clock ticks per second (`getconf CLK_TCK`), 100 when getconf is unavailable. */
export function clkTck(): number {
  if (clkTckCache === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
      clkTckCache = Number.isInteger(v) && v > 0 ? v : 100
    } catch {
      clkTckCache = 100
    }
  }
  return clkTckCache
}
