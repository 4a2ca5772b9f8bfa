// Noise guard: while a measured run is going, samples /proc/stat (steal) and the CPU time of every process
// that is not under test (the harness and all its descendants: proxy, upstream, load generator), so a run
// disturbed by other work on the box can be discarded and repeated.
import { readFileSync } from 'node:fs'
import { clkTck, type ProcStat, readAllProcStats, readCpuTimes, withDescendants } from './proc.js'

export interface NoiseOffender {
  pid: number
  comm: string
  /** percent of one core over the run */
  corePct: number
}

export interface NoiseReport {
  /** CPU used by processes not under test, in percent of ONE core, averaged over the run */
  otherCorePct: number
  /** steal time in percent of all CPU time of the box over the run */
  stealPct: number
  top: NoiseOffender[]
  noisy: boolean
  reason?: string
}

export interface NoiseLimits {
  maxOtherCorePct: number
  maxStealPct: number
}

export const DEFAULT_NOISE_LIMITS: NoiseLimits = { maxOtherCorePct: 3, maxStealPct: 2 }

interface Seen {
  pid: number
  comm: string
  first: number
  last: number
  excluded: boolean
}

function uptimeTicks(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * clkTck()
}

export class NoiseMonitor {
  private seen = new Map<string, Seen>()
  private timer: NodeJS.Timeout | undefined
  private startMs = 0
  private startUptime = 0
  private cpu0 = readCpuTimes()

  /** roots: pids whose whole process tree is under test (normally just the harness itself) */
  constructor(
    private readonly roots: number[] = [process.pid],
    private readonly intervalMs = 250,
    private readonly limits: NoiseLimits = DEFAULT_NOISE_LIMITS,
  ) {}

  start(): void {
    this.seen.clear()
    this.startMs = Date.now()
    this.startUptime = uptimeTicks()
    this.cpu0 = readCpuTimes()
    this.sample(true)
    this.timer = setInterval(() => this.sample(false), this.intervalMs)
  }

  private sample(baseline: boolean): void {
    const all = readAllProcStats()
    const underTest = withDescendants(this.roots, all)
    for (const p of all) this.note(p, underTest.has(p.pid), baseline)
  }

  private note(p: ProcStat, excluded: boolean, baseline: boolean): void {
    const key = `${p.pid}:${p.starttime}`
    const ticks = p.utime + p.stime
    const s = this.seen.get(key)
    if (s) {
      s.last = ticks
      s.excluded ||= excluded
      return
    }
    // a process first seen after the baseline started during the run (all its CPU counts) unless its start
    // time says it is older and we only missed it; then only what it uses from now on counts
    const bornDuringRun = !baseline && p.starttime >= this.startUptime - 1
    this.seen.set(key, { pid: p.pid, comm: p.comm, first: bornDuringRun ? 0 : ticks, last: ticks, excluded })
  }

  stop(): NoiseReport {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.sample(false)
    const cpu1 = readCpuTimes()
    const elapsedS = Math.max((Date.now() - this.startMs) / 1000, 0.001)
    const hz = clkTck()
    const offenders: NoiseOffender[] = []
    let otherTicks = 0
    for (const s of this.seen.values()) {
      if (s.excluded) continue
      const d = s.last - s.first
      if (d <= 0) continue
      otherTicks += d
      offenders.push({ pid: s.pid, comm: s.comm, corePct: (100 * d) / hz / elapsedS })
    }
    offenders.sort((a, b) => b.corePct - a.corePct)
    const otherCorePct = (100 * otherTicks) / hz / elapsedS
    const dTotal = cpu1.total - this.cpu0.total
    const stealPct = dTotal > 0 ? (100 * (cpu1.steal - this.cpu0.steal)) / dTotal : 0
    const reasons: string[] = []
    if (otherCorePct > this.limits.maxOtherCorePct) {
      const who = offenders
        .slice(0, 3)
        .map((o) => `${o.comm}[${o.pid}] ${o.corePct.toFixed(1)}%`)
        .join(', ')
      reasons.push(
        `other processes used ${otherCorePct.toFixed(1)}% of a core (> ${this.limits.maxOtherCorePct}%: ${who})`,
      )
    }
    if (stealPct > this.limits.maxStealPct) {
      reasons.push(`steal time ${stealPct.toFixed(1)}% (> ${this.limits.maxStealPct}%)`)
    }
    return {
      otherCorePct,
      stealPct,
      top: offenders.slice(0, 5),
      noisy: reasons.length > 0,
      ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
    }
  }
}

/**
 * Waits (up to maxMs) for a window of windowMs in which the box is quiet by the noise limits, so that a
 * repeated run does not land in the same burst of foreign work. Returns true when quiet was seen.
 */
export async function waitForQuiet(
  maxMs: number,
  windowMs = 1000,
  roots: number[] = [process.pid],
): Promise<boolean> {
  const deadline = Date.now() + maxMs
  while (Date.now() < deadline) {
    const m = new NoiseMonitor(roots)
    m.start()
    await new Promise((r) => setTimeout(r, windowMs))
    if (!m.stop().noisy) return true
  }
  return false
}
