/**
 * One Redis store's connection: the ioredis client, its state (logged on transitions, never a
 * password), and how commands go out. Commands are never queued while disconnected, never replayed
 * after a reconnect (an INCR must not count twice), and every one has a deadline
 * (`commandTimeoutMs`): past it, or when Redis cannot answer, it rejects with a StoreError and the
 * caller applies its `failOpen`. The commands of one event-loop turn leave in one corked write, the
 * GCRA decisions of one turn in one script call per Cluster slot. A connection that has stopped
 * answering altogether is dropped (a half-open TCP connection would otherwise linger for minutes).
 */
import type { Writable } from 'node:stream'
import calculateSlot from 'cluster-key-slot'
import { Cluster, type Redis } from 'ioredis'
import { type Logger, pino } from 'pino'
import { type GcraResult, StoreError } from '../types.js'
import { type Client, createRedisClient, loadScripts } from './client.js'
import { MAX_GCRA_BATCH, type RedisSettings, type RedisStoreOptions } from './options.js'

interface GcraWaiter {
  resolve: (r: GcraResult) => void
  reject: (err: unknown) => void
}

/** The GCRA decisions of one turn and one Cluster slot, sent as one script call. */
interface GcraBatch {
  keys: string[]
  /** four per key: intervalUs, burst, cost, nowUs */
  args: string[]
  waiters: GcraWaiter[]
}

/** The message and code of a backend error, without ioredis's extras (a failed AUTH's arguments). */
function sanitize(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  const clean = new Error(err.message)
  clean.name = err.name
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') Object.assign(clean, { code })
  return clean
}

/** A reply from the server (as opposed to a connection failure): the server is answering. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/** The connection of a Redis store; the key spaces and maps send their commands through {@link run}. */
export class RedisConnection {
  /** The ioredis client (standalone/Sentinel `Redis`, or `Cluster`). */
  readonly client: Redis | Cluster
  /** The same client, typed with the store's script commands. */
  readonly c: Client
  /** Deadline of one operation in ms. */
  readonly timeoutMs: number

  private readonly logger: Logger
  /** Silence (or a handshake) after which a connection is dropped and reopened. */
  private readonly deadAfterMs: number
  /** When the oldest command still without any reply since was sent (undefined: all answered). */
  private silentSince: number | undefined
  /** When the current connection was established (its handshake may still be running). */
  private connectedAt = Date.now()
  private lastForcedReconnectAt = 0
  /** For logging transitions only (commands go by the client's own status). */
  private state: 'connecting' | 'up' | 'down' = 'connecting'
  private isClosed = false
  private everReady = false

  constructor(options: RedisStoreOptions, settings: RedisSettings) {
    this.timeoutMs = settings.commandTimeoutMs
    this.deadAfterMs = Math.max(1000, this.timeoutMs * 5)
    this.logger = options.logger ?? pino({ level: 'silent' })
    const { client, where } = createRedisClient(options, settings)
    this.client = client
    this.c = client

    const log = this.logger
    client.on('ready', () => {
      log.info(
        { store: 'redis', where },
        this.state === 'down' ? 'redis store reconnected' : 'redis store connected',
      )
      this.state = 'up'
      this.everReady = true
      this.silentSince = undefined
      loadScripts(client)
    })
    client.on('connect', () => {
      this.connectedAt = Date.now()
    })
    client.on('error', (err: Error) => {
      // ioredis emits one per failed attempt: log the transition, not every retry.
      if (this.state !== 'down' && !this.isClosed) {
        log.warn({ store: 'redis', where, error: err.message }, 'redis store unavailable; reconnecting')
      }
      this.state = 'down'
    })
    client.on('close', () => {
      if (this.state === 'up' && !this.isClosed) {
        log.warn({ store: 'redis', where }, 'redis store connection lost; reconnecting')
      }
      if (this.state === 'up') this.state = 'down'
    })
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.isClosed
  }

  /**
   * Resolves once the client is connected and ready (right away when it is), or rejects with a
   * StoreError after `timeoutMs`.
   */
  whenReady(timeoutMs: number): Promise<void> {
    const client = this.client
    if (this.isClosed) return Promise.reject(new StoreError('redis store is closed'))
    if (client.status === 'ready') return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        client.off('ready', onReady)
        reject(new StoreError(`redis store: not ready after ${timeoutMs} ms`))
      }, timeoutMs)
      client.once('ready', onReady)
    })
  }

  /** Whether the connection has been ready once. */
  hasConnected(): boolean {
    return this.everReady
  }

  /** QUIT (bounded by the command deadline) then disconnect; operations after it reject. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    const client = this.client
    if (client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        client.quit().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.timeoutMs)
        }),
      ])
      clearTimeout(timer)
    }
    client.disconnect()
  }

  /**
   * One GCRA decision (key already the Redis key; arguments as the GCRA script takes them). The
   * decisions wait, like every command, for the end of the event-loop turn; those of one turn then
   * travel in one script call (per Cluster slot, at most {@link MAX_GCRA_BATCH}), so that a busy
   * gateway pays one command's overhead per turn, not per request. The script applies them in
   * order, each as if alone: the same decisions as one call each, under one deadline.
   */
  gcra(key: string, intervalUs: string, burst: string, cost: string, nowUs: string): Promise<GcraResult> {
    return new Promise<GcraResult>((resolve, reject) => {
      const batch = this.gcraBatch(key)
      batch.keys.push(key)
      batch.args.push(intervalUs, burst, cost, nowUs)
      batch.waiters.push({ resolve, reject })
    })
  }

  private readonly gcraBatches = new Map<number, GcraBatch>()

  /** The open batch for `key`'s slot, or a new one, sent at the end of this turn. */
  private gcraBatch(key: string): GcraBatch {
    const slot = this.client instanceof Cluster ? calculateSlot(key) : 0
    const open = this.gcraBatches.get(slot)
    if (open !== undefined && open.keys.length < MAX_GCRA_BATCH) return open
    const batch: GcraBatch = { keys: [], args: [], waiters: [] }
    this.gcraBatches.set(slot, batch)
    const detach = () => {
      if (this.gcraBatches.get(slot) === batch) this.gcraBatches.delete(slot)
    }
    this.run('gcra', () => {
      detach()
      return this.c.pcGcra(batch.keys.length, ...batch.keys, ...batch.args)
    }).then(
      (reply) => {
        const w = batch.waiters
        if (!Array.isArray(reply) || reply.length !== 4 * w.length) {
          const err = new StoreError('redis store: gcra: unexpected reply')
          for (const x of w) x.reject(err)
          return
        }
        for (let i = 0; i < w.length; i++) {
          const o = 4 * i
          ;(w[i] as GcraWaiter).resolve({
            allowed: reply[o] === 1,
            retryAfterMs: Number(reply[o + 1]),
            remaining: Number(reply[o + 2]),
            resetMs: Number(reply[o + 3]),
          })
        }
      },
      (err: unknown) => {
        detach() // a deadline that passed before the batch was sent
        for (const x of batch.waiters) x.reject(err)
      },
    )
    return batch
  }

  /** Runs one command (or script) under the deadline; every failure becomes a StoreError. */
  run<T>(op: string, send: () => Promise<T>): Promise<T> {
    if (this.isClosed) return Promise.reject(new StoreError('redis store is closed'))
    const sentAt = Date.now()
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        if (this.silentSince === undefined) this.silentSince = sentAt
        reject(new StoreError(`redis store: ${op} timed out after ${this.timeoutMs} ms`))
        this.checkConnection(Date.now())
      }, this.timeoutMs)
      this.enqueue(() => {
        if (settled) return
        let pending: Promise<T>
        try {
          pending = this.isClosed ? Promise.reject(new Error('redis store is closed')) : send()
        } catch (err) {
          pending = Promise.reject(err)
        }
        pending.then(
          (value) => {
            this.silentSince = undefined
            if (settled) return
            settled = true
            clearTimeout(timer)
            resolve(value)
          },
          (err: unknown) => {
            if (isReplyError(err)) this.silentSince = undefined
            if (settled) return
            settled = true
            clearTimeout(timer)
            const cause = sanitize(err)
            reject(new StoreError(`redis store: ${op} failed: ${cause.message}`, { cause }))
            if (!isReplyError(err)) this.checkConnection(Date.now())
          },
        )
      })
    })
  }

  /**
   * Commands wait for the end of the current event-loop turn (setImmediate) and are then sent
   * together: ioredis's auto-pipelining flushes on process.nextTick, which runs after every single
   * socket callback, so on its own it batches only the commands of one client read. Deferred to
   * the check phase, the commands of every request read in this turn leave in one write (one
   * pipeline) and their replies come back together. FIFO; the deadline runs from the call.
   */
  private sendQueue: (() => void)[] = []
  private sendScheduled = false
  private readonly flushSends = (): void => {
    this.sendScheduled = false
    const q = this.sendQueue
    this.sendQueue = []
    // Corked, the connections buffer the commands' writes and send them in one writev on uncork.
    const corked = this.corkConnections()
    try {
      for (let i = 0; i < q.length; i++) (q[i] as () => void)()
    } finally {
      for (let i = 0; i < corked.length; i++) (corked[i] as Writable).uncork()
    }
  }
  /** Corks the connections a command may go to (the client's, or every Cluster node's). */
  private corkConnections(): Writable[] {
    const c = this.client
    const out: Writable[] = []
    if (c instanceof Cluster) {
      for (const node of c.nodes('all')) {
        const s = node.stream
        if (s?.writable) {
          s.cork()
          out.push(s)
        }
      }
    } else if (c.stream?.writable) {
      c.stream.cork()
      out.push(c.stream)
    }
    return out
  }
  private enqueue(start: () => void): void {
    this.sendQueue.push(start)
    if (!this.sendScheduled) {
      this.sendScheduled = true
      setImmediate(this.flushSends)
    }
  }

  /**
   * After a failure: when the connection looks ready but nothing has answered for `deadAfterMs`
   * (commands time out: half-open TCP connection, frozen server), or it has been stuck in its
   * handshake that long (a proxy that accepts connections for a dead server), drop it and let
   * ioredis reconnect. `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false` make
   * sure the commands that were waiting on it fail and are never sent twice. At most once per
   * `deadAfterMs`.
   */
  private checkConnection(now: number): void {
    if (this.isClosed || now - this.lastForcedReconnectAt < this.deadAfterMs) return
    const status = this.client.status
    const stuck =
      (status === 'ready' && this.silentSince !== undefined && now - this.silentSince >= this.deadAfterMs) ||
      (status === 'connect' && now - this.connectedAt >= this.deadAfterMs)
    if (!stuck) return
    this.lastForcedReconnectAt = now
    this.silentSince = undefined
    this.logger.warn({ store: 'redis', status }, 'redis store: redis stopped answering; reconnecting')
    // disconnect() only half-closes (FIN) and waits for the peer, which is what is not answering:
    // destroy the sockets so that ioredis sees the close now and reconnects with its backoff.
    const c = this.client
    const connections = c instanceof Cluster ? c.nodes('all') : [c]
    for (const r of connections) r.stream?.destroy()
  }
}
