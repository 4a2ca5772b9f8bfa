/**
 * Concurrency caps and overload shedding: process-local, synchronous, no store.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks'

/** In-flight requests per key, bounded: only keys with a request in flight are kept. */
export class ConcurrencyTable {
  private readonly counts = new Map<string, number>()

  constructor(
    readonly max: number,
    readonly maxKeys: number,
  ) {}

  /** 'ok' (a slot was taken: call release once), 'full' (max in flight), 'table-full' (too many keys). */
  acquire(key: string): 'ok' | 'full' | 'table-full' {
    const n = this.counts.get(key)
    if (n === undefined) {
      if (this.counts.size >= this.maxKeys) return 'table-full'
      this.counts.set(key, 1)
      return 'ok'
    }
    if (n >= this.max) return 'full'
    this.counts.set(key, n + 1)
    return 'ok'
  }

  release(key: string): void {
    const n = this.counts.get(key)
    if (n === undefined) return
    if (n <= 1) this.counts.delete(key)
    else this.counts.set(key, n - 1)
  }

  inFlight(key: string): number {
    return this.counts.get(key) ?? 0
  }

  get keys(): number {
    return this.counts.size
  }
}

/** Requests in flight on routes with shedding, across the process (all policy instances). */
let inFlightTotal = 0
export const inFlight = {
  get: (): number => inFlightTotal,
  inc: (): void => {
    inFlightTotal++
  },
  dec: (): void => {
    if (inFlightTotal > 0) inFlightTotal--
  },
}

const SAMPLE_MS = 500

/** One event-loop delay monitor per process, shared by reference count. */
class LoopDelay {
  private readonly h: IntervalHistogram
  private readonly timer: NodeJS.Timeout
  /** p99 of the event loop delay over the last sample period, in ms. */
  p99Ms = 0
  refs = 0

  constructor() {
    this.h = monitorEventLoopDelay({ resolution: 10 })
    this.h.enable()
    this.timer = setInterval(() => {
      this.p99Ms = this.h.count > 0 ? this.h.percentile(99) / 1e6 : 0
      this.h.reset()
    }, SAMPLE_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.h.disable()
  }
}

let loop: LoopDelay | undefined

/** A reader of the current event-loop delay p99 (ms); release when the policy closes. */
export function acquireLoopDelay(): { p99Ms: () => number; release: () => void } {
  loop ??= new LoopDelay()
  const l = loop
  l.refs++
  let released = false
  return {
    p99Ms: () => l.p99Ms,
    release: () => {
      if (released) return
      released = true
      if (--l.refs === 0) {
        l.stop()
        if (loop === l) loop = undefined
      }
    },
  }
}
