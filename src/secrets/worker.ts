/**
 * A `--jobs N` scanning thread. It builds its own scanner, says `ready`, then scans the batches of
 * paths the coordinator (src/secrets/pool.ts) hands it, reading each file itself, and posts each
 * batch's findings back in one message. While it scans a job it keeps the job's number in a
 * shared slot, so that if the thread dies the coordinator knows which file it was on.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { threadCpuSeconds } from './profile.js'
import { type JobOptions, type JobResult, type ScanJob, scanJob } from './scan-job.js'
import { buildSetup } from './setup.js'
import type { ReadClock } from './sources/files.js'

export interface WorkerData {
  configFile: string | undefined
  job: JobOptions
  /** One Int32: the order of the job being scanned, -1 between jobs. */
  slot: SharedArrayBuffer
  /** Tests only: the thread dies when it meets a file whose display path ends with this. */
  crashOn?: string
}

export interface BatchMessage {
  id: number
  jobs: ScanJob[]
}

export type WorkerMessage =
  | { type: 'ready'; readyAt: number; cpuSeconds: number | undefined }
  | {
      type: 'done'
      id: number
      results: JobResult[]
      busyMs: number
      readMs: number
      /** Time this thread waited for work so far (ready or between batches), ms. */
      waitMs: number
      bytes: number
      cpuSeconds: number | undefined
      at: number
    }

const data = workerData as WorkerData
const current = new Int32Array(data.slot)
const { scanner } = await buildSetup(data.configFile)
const port = parentPort
if (port === null) throw new Error('secrets worker: no parent port')
const now = () => performance.timeOrigin + performance.now()
port.postMessage({ type: 'ready', readyAt: now(), cpuSeconds: threadCpuSeconds() } satisfies WorkerMessage)

const queue: BatchMessage[] = []
let running = false
/** When this thread last ran out of work (it is ready now), and the waits so far. */
let idleSince = performance.now()
let waitMs = 0

async function run(): Promise<void> {
  running = true
  for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
    const t0 = performance.now()
    const clock: ReadClock = { readMs: 0 }
    const results: JobResult[] = []
    let bytes = 0
    for (const job of b.jobs) {
      Atomics.store(current, 0, job.order)
      if (data.crashOn !== undefined && job.display.endsWith(data.crashOn))
        throw new Error(`injected fault at ${job.display}`)
      results.push(await scanJob(scanner, job, data.job, clock))
      bytes += job.size
    }
    Atomics.store(current, 0, -1)
    port?.postMessage({
      type: 'done',
      id: b.id,
      results,
      busyMs: performance.now() - t0,
      readMs: clock.readMs,
      waitMs,
      bytes,
      cpuSeconds: threadCpuSeconds(),
      at: now(),
    } satisfies WorkerMessage)
  }
  running = false
  idleSince = performance.now()
}

port.on('message', (b: BatchMessage) => {
  queue.push(b)
  if (!running) waitMs += performance.now() - idleSince
  // A rejection (a bug, or the injected fault) is unhandled: the thread dies and the coordinator
  // reports the file it was on.
  if (!running) void run()
})
