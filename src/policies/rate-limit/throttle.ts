/**
 * Throttling: requests admitted with a delay (a reservation in the limiter) wait here, in one FIFO
 * queue per key with one timer per queue (armed for the queue's head), never a timer per request.
 * Memory is bounded: at most `maxWaiting` requests wait in all queues of a policy instance.
 */

interface Waiter {
  at: number
  resolve: () => void
  reject: (err: unknown) => void
  queue: KeyQueue
  done: boolean
}

interface KeyQueue {
  key: string
  items: Waiter[]
  timer: NodeJS.Timeout | undefined
  timerAt: number
}

/** A waiting request; `cancel` drops it (the client went away). */
export interface WaitHandle {
  promise: Promise<void>
  cancel(err: unknown): void
}

export class ThrottleQueues {
  private readonly queues = new Map<string, KeyQueue>()
  private waiting = 0

  constructor(
    private readonly maxWaiting: number,
    /** A monotonic clock in ms (release times are relative; wall-clock steps must not move them). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Requests waiting now, in all queues. */
  get size(): number {
    return this.waiting
  }

  /** Keys with a queue now. */
  get keys(): number {
    return this.queues.size
  }

  /** Whether another request may wait. */
  hasRoom(): boolean {
    return this.waiting < this.maxWaiting
  }

  /** Waits until `delayMs` from now, behind the requests of the same key that were queued earlier. */
  wait(key: string, delayMs: number): WaitHandle {
    let q = this.queues.get(key)
    if (!q) {
      q = { key, items: [], timer: undefined, timerAt: 0 }
      this.queues.set(key, q)
    }
    const queue = q
    let w!: Waiter
    const promise = new Promise<void>((resolve, reject) => {
      w = { at: this.now() + delayMs, resolve, reject, queue, done: false }
    })
    // FIFO by release time; reservations are handed out in order, so this is nearly always a push.
    let i = queue.items.length
    while (i > 0 && (queue.items[i - 1] as Waiter).at > w.at) i--
    queue.items.splice(i, 0, w)
    this.waiting++
    this.arm(queue)
    return {
      promise,
      cancel: (err) => {
        if (w.done) return
        w.done = true
        const idx = queue.items.indexOf(w)
        if (idx !== -1) queue.items.splice(idx, 1)
        this.waiting--
        this.arm(queue)
        w.reject(err)
      },
    }
  }

  private arm(q: KeyQueue): void {
    const head = q.items[0]
    if (head === undefined) {
      if (q.timer) clearTimeout(q.timer)
      q.timer = undefined
      this.queues.delete(q.key)
      return
    }
    if (q.timer && q.timerAt === head.at) return
    if (q.timer) clearTimeout(q.timer)
    q.timerAt = head.at
    q.timer = setTimeout(() => this.release(q), Math.max(0, head.at - this.now()))
  }

  private release(q: KeyQueue): void {
    q.timer = undefined
    const now = this.now()
    while (q.items.length > 0 && (q.items[0] as Waiter).at <= now) {
      const w = q.items.shift() as Waiter
      w.done = true
      this.waiting--
      w.resolve()
    }
    this.arm(q)
  }

  /** Rejects every waiter (policy closed on reload or shutdown). */
  close(err: unknown): void {
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer)
      for (const w of q.items) {
        w.done = true
        w.reject(err)
      }
      q.items = []
    }
    this.queues.clear()
    this.waiting = 0
  }
}
