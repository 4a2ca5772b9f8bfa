/**
 * `serve --workers N|auto`: one primary process forks N workers (node:cluster), each a complete
 * gateway on the same listeners (the primary hands out connections round-robin). The primary
 * serves no request; it forwards signals: SIGHUP reloads every worker (each re-reads and applies
 * the config as a single gateway does, with no request refused), SIGTERM/SIGINT drains every worker
 * and exits when all have stopped. A worker that dies is replaced, unless workers keep dying (5 in
 * a minute: the primary stops them all and exits 1). docs/deployment.md#workers.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import pino from 'pino'
import { UsageError } from '../../command.js'

/** Most workers: beyond this a config error (`--workers 1000`) would fork-bomb the machine. */
export const MAX_WORKERS = 64

/** `--workers` value: a count from 1 to MAX_WORKERS, or `auto` (one per available core). */
export function parseWorkers(v: string): number {
  if (v === 'auto') return Math.min(MAX_WORKERS, Math.max(1, availableParallelism()))
  if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > MAX_WORKERS)
    throw new UsageError(`--workers is a count from 1 to ${MAX_WORKERS}, or auto (one per core)`)
  return Number(v)
}

/** This process's worker number (1-based) when it is a `--workers` worker. */
export function workerNumber(): number | undefined {
  if (!cluster.isWorker) return undefined
  const n = Number(process.env.PORTCULLIS_WORKER)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

/** Runs the primary: forks `count` workers, forwards signals; resolves the exit code. */
export function runPrimary(count: number): Promise<number> {
  const logger = pino({ base: { pid: process.pid, role: 'primary' } }, pino.destination(2))
  const bySlot = new Map<number, Worker>()
  const deaths: number[] = []
  let stopping: string | undefined
  let failed = false
  const fork = (slot: number): void => {
    const w = cluster.fork({ PORTCULLIS_WORKER: String(slot) })
    bySlot.set(slot, w)
    w.on('exit', (code, signal) => {
      if (bySlot.get(slot) === w) bySlot.delete(slot)
      if (stopping !== undefined) {
        if (code !== 0) failed = true
        logger.info({ worker: slot, code, signal }, 'worker stopped')
        if (bySlot.size === 0) done()
        return
      }
      const now = Date.now()
      deaths.push(now)
      while (deaths.length > 0 && (deaths[0] as number) < now - 60_000) deaths.shift()
      logger.error({ worker: slot, code, signal }, 'worker exited')
      if (deaths.length >= 5 || code === 2) {
        // a config error (exit 2) will not go away by restarting; nor will a crash loop
        failed = true
        stop('workers keep exiting')
        return
      }
      setTimeout(() => {
        if (stopping === undefined) fork(slot)
      }, 1000).unref()
    })
  }
  let done: () => void = () => undefined
  const stop = (reason: string): void => {
    if (stopping !== undefined) return
    stopping = reason
    logger.info({ reason, workers: bySlot.size }, 'stopping workers')
    for (const w of bySlot.values()) w.process.kill('SIGTERM')
    if (bySlot.size === 0) done()
  }
  const onTerm = () => stop('SIGTERM')
  const onInt = () => stop('SIGINT')
  const onHup = () => {
    if (stopping !== undefined) return
    logger.info({ workers: bySlot.size }, 'SIGHUP: reloading every worker')
    for (const w of bySlot.values()) w.process.kill('SIGHUP')
  }
  process.on('SIGTERM', onTerm)
  process.on('SIGINT', onInt)
  process.on('SIGHUP', onHup)
  return new Promise<number>((resolve) => {
    done = () => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      process.off('SIGHUP', onHup)
      logger.info('all workers stopped')
      logger.flush()
      resolve(failed ? 1 : 0)
    }
    logger.info({ workers: count }, 'starting workers')
    for (let slot = 1; slot <= count; slot++) fork(slot)
  })
}
