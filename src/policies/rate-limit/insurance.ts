/**
 * Store outage insurance for rate limits. One health tracker per shared store (per process): the
 * first StoreError marks the store down; while it is down no request waits for it (limits decide
 * on the local insurance store at once) and one unref'd timer probes it every `probeIntervalMs`;
 * the first answer marks it up again, so the shared limits resume within one probe interval (plus
 * the probe's round trip). There is no permanent fallback.
 *
 * `instances: auto` counts the gateways sharing the store from heartbeats: each process adds its
 * random id to one set with a TTL and reads the set's size.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { Store } from '../../stores/types.js'

export class StoreHealth {
  private down = false
  private timer: NodeJS.Timeout | undefined
  private probing = false
  private downSince = 0
  /** Outages seen (for tests and logs). */
  outages = 0

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly probeIntervalMs: number,
  ) {}

  get isDown(): boolean {
    return this.down
  }

  /** Called when an operation failed with a StoreError. */
  markDown(reason: string): void {
    if (this.down) return
    this.down = true
    this.outages++
    this.downSince = Date.now()
    this.logger.warn({ err: reason }, 'rate-limit store unavailable: local insurance limits apply')
    this.timer = setInterval(() => this.probe(), this.probeIntervalMs)
    this.timer.unref()
  }

  private probe(): void {
    if (this.probing) return
    this.probing = true
    this.store.ping().then(
      () => {
        this.probing = false
        if (!this.down) return
        this.down = false
        clearInterval(this.timer)
        this.timer = undefined
        this.logger.info(
          { outageMs: Date.now() - this.downSince },
          'rate-limit store answers again: shared limits resume',
        )
      },
      () => {
        this.probing = false
      },
    )
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}

interface Shared {
  health: StoreHealth
  instances: InstanceCounter | undefined
  refs: number
  instanceRefs: number
}

const shared = new WeakMap<Store, Shared>()

/** Heartbeats: how many gateways share the store. */
export class InstanceCounter {
  /** Last known count (1 before the first answer). */
  count = 1
  private readonly id = randomBytes(9).toString('base64url')
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly store: Store,
    private readonly intervalMs = 5000,
  ) {
    this.timer = setInterval(() => this.beat(), intervalMs)
    this.timer.unref()
    this.beat()
  }

  private beat(): void {
    const key = 'rl:instances'
    this.store.sets
      .add(key, this.id, this.intervalMs * 3)
      .then(() => this.store.sets.size(key))
      .then(
        (n) => {
          if (n >= 1) this.count = n
        },
        () => undefined, // an outage keeps the last known count
      )
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

/** The health tracker (and, with `countInstances`, the instance counter) of a store; release with the returned function. */
export function acquireInsurance(
  store: Store,
  logger: Logger,
  probeIntervalMs: number,
  countInstances: boolean,
): { health: StoreHealth; instances: () => number; release: () => void } {
  let s = shared.get(store)
  if (!s) {
    s = {
      health: new StoreHealth(store, logger, probeIntervalMs),
      instances: undefined,
      refs: 0,
      instanceRefs: 0,
    }
    shared.set(store, s)
  }
  const entry = s
  entry.refs++
  if (countInstances) {
    entry.instanceRefs++
    entry.instances ??= new InstanceCounter(store)
  }
  let released = false
  return {
    health: entry.health,
    instances: () => entry.instances?.count ?? 1,
    release: () => {
      if (released) return
      released = true
      entry.refs--
      if (countInstances && --entry.instanceRefs === 0) {
        entry.instances?.stop()
        entry.instances = undefined
      }
      if (entry.refs === 0) {
        entry.health.stop()
        shared.delete(store)
      }
    },
  }
}
