/**
 * Sliding windows for the detectors: counts and sets of distinct values over the last `windowMs`,
 * whatever the alignment of the events with the clock or with a subject's first event. A burst
 * that straddles any boundary is counted whole (a fixed window restarting between two halves of a
 * burst hid it: issue 25, item 6).
 *
 * - {@link SlidingCount}: events in the window, kept in `SLOTS + 1` buckets of `windowMs / SLOTS`.
 *   The count covers the current bucket and the `SLOTS` before it: every event of the last
 *   `windowMs` is in it, and at most one bucket (a tenth of the window) more. So any `n` events
 *   within `windowMs` reach `n`; events spread over up to 1.1 × `windowMs` may too (the error is
 *   on the side of counting, never of hiding). O(1) per event, 11 numbers per subject.
 * - {@link SlidingSet}: distinct values each last seen within the window (exact), at most `cap`
 *   kept (the most recently seen): enough to tell that `cap` distinct values were seen.
 */

/** Buckets per window of a {@link SlidingCount}. */
export const SLOTS = 10

/** Events in a sliding window (see the module comment): O(1) per event, 11 numbers. */
export class SlidingCount {
  private readonly buckets = new Uint32Array(SLOTS + 1)
  /** Absolute index (time / bucket width) of the newest bucket written. */
  private last = -1
  /** Slot of the newest bucket, and the time span it covers: the hot path is two comparisons. */
  private slot = 0
  private from = Number.POSITIVE_INFINITY
  private to = Number.NEGATIVE_INFINITY
  /** Sum of the buckets: the count. */
  private sum = 0

  /** `bucketMs`: the window divided by {@link SLOTS}. */
  constructor(private readonly bucketMs: number) {}

  /** Moves the newest bucket to the one of `now` (clearing those it passes); never back. */
  private advance(now: number): void {
    const i = Math.floor(now / this.bucketMs)
    if (i <= this.last) return // a clock step back: counted in the newest bucket
    const stale = Math.min(i - this.last, SLOTS + 1)
    if (stale === SLOTS + 1) {
      this.buckets.fill(0)
      this.sum = 0
    } else {
      for (let k = 1; k <= stale; k++) {
        const b = (this.last + k) % (SLOTS + 1)
        this.sum -= this.buckets[b] as number
        this.buckets[b] = 0
      }
    }
    this.last = i
    this.slot = i % (SLOTS + 1)
    this.from = i * this.bucketMs
    this.to = this.from + this.bucketMs
  }

  /** Counts `by` events at `now`; returns the count in the window ending at `now`. */
  add(now: number, by = 1): number {
    if (now >= this.to || now < this.from) this.advance(now)
    this.buckets[this.slot] = (this.buckets[this.slot] as number) + by
    this.sum += by
    return this.sum
  }

  /** The count in the window ending at `now`, without adding. */
  count(now: number): number {
    if (now >= this.to || now < this.from) this.advance(now)
    return this.sum
  }
}

/** Distinct values last seen within a sliding window, at most `cap` kept (the most recent). */
export class SlidingSet {
  /** Value → last seen (ms); Map order is oldest first, since a value seen again is re-inserted. */
  private readonly seen = new Map<string, number>()

  constructor(
    private readonly windowMs: number,
    private readonly cap: number,
  ) {}

  /** Adds (or refreshes) `value` at `now`; returns how many distinct values were seen within the window. */
  add(value: string, now: number): number {
    const seen = this.seen
    seen.delete(value)
    seen.set(value, now)
    this.expire(now)
    if (seen.size > this.cap) {
      // Keep the `cap` most recent: enough to know the threshold was reached.
      const oldest = seen.keys().next()
      if (!oldest.done) seen.delete(oldest.value)
    }
    return seen.size
  }

  /** Distinct values seen within the window ending at `now`. */
  size(now: number): number {
    this.expire(now)
    return this.seen.size
  }

  private expire(now: number): void {
    const from = now - this.windowMs
    for (const [v, t] of this.seen) {
      if (t > from) break
      this.seen.delete(v)
    }
  }
}
