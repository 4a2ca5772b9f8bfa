/**
 * The tree scan of `portcullis secrets --jobs N`: this thread and N−1 worker threads scan.
 *
 * This thread walks (the `source` iterable), hands out work to the workers (paths, in batches,
 * two batches in flight per worker, so a worker never waits for the next one) and, once the walk
 * is over, scans batches itself between dispatches. Which paths: see src/secrets/work-queue.ts
 * (the largest first; once the walk is over, a run of files of about equal bytes per thread,
 * this one included, then stealing; batches shrink as the pending work does, so that the threads
 * finish together). Workers read the files themselves and send findings back one message per
 * batch. Why this thread scans rather than only coordinating: each worker is a V8 isolate of its
 * own, which compiles the scanner's code again on V8's helper threads (measured on the bench tree:
 * about 0.5 s of CPU per isolate, as much as its start), so `--jobs 2` with one worker pays that
 * once, not twice (docs/benchmarks.md). One worker starts before the walk, so that its start
 * overlaps it, and more as the walk sees enough bytes to pay for them (a worker's start, its
 * warm-up and V8's compiler threads cost about as much as scanning 32 MiB); if the tree turns out
 * smaller than two threads' worth the worker is let go and this thread scans it alone.
 * `--jobs 1` is always in-process.
 *
 * Failures are reported, never lost: a file that cannot be read is an error result; a worker that
 * dies has the file it was on reported as not scanned (its number is in a shared slot), its other
 * files handed back (to this thread or another worker), and is replaced (up to N times); with no
 * worker left, this thread scans what remains.
 */
import { Worker } from 'node:worker_threads'
import type { SecretScanner } from './engine.js'
import { type ScanProfile, type ThreadProfile, threadCpuSeconds, threadProfile } from './profile.js'
import { type JobOptions, type JobResult, type ScanJob, scanJob } from './scan-job.js'
import { emptyStats } from './types.js'
import type { BatchMessage, WorkerData, WorkerMessage } from './worker.js'
import { WorkQueue } from './work-queue.js'

export interface PoolOptions {
  /** Scanning threads wanted, this one included (1: in-process; N: this one and N−1 workers). */
  jobs: number
  configFile: string | undefined
  job: JobOptions
  /** Bytes of input that make one more worker worth its start; two at least are started. */
  minBytesPerWorker: number
  /** Called for each job scanned, in completion order (progress). */
  onResult?: (r: JobResult) => void
  /** Tests only: workers die at a file whose display path ends with this. */
  crashOn?: string
  /**
   * Tests only: false keeps this thread from scanning while a worker lives (so that a worker
   * meets the files a test wants it to crash on, whatever the timing). Default true.
   */
  mainScans?: boolean
}

/** The work-queue owner number of this thread (workers are 1, 2, …). */
const MAIN = 0

/** Most bytes and files in a batch; the least bytes once the walk is over (small files). */
const BATCH_MAX_BYTES = 4 * 1024 * 1024
const BATCH_MIN_BYTES = 64 * 1024
const BATCH_MAX_FILES = 512
/**
 * Most bytes in a batch this thread scans itself: it lets the workers' messages in (a ready
 * worker's first batches, the next ones) only between its batches, so they stay short (about
 * 10 ms of scanning once warm).
 */
const MAIN_BATCH_MAX_BYTES = 1024 * 1024
/** Batches sent to a worker before it answers. */
const IN_FLIGHT = 2
/** The walk gives way to worker messages this often (ms). */
const WALK_SLICE_MS = 2

interface Slot {
  id: number
  worker: Worker
  profile: ThreadProfile
  current: Int32Array
  ready: boolean
  dead: boolean
  readyAt: number
  lastAt: number
  inflight: Map<number, number[]>
}

/**
 * Scans the jobs `source` yields (the walk), on `o.jobs` threads when the tree is large enough,
 * else in-process with `scanner`. Resolves with one result per job, files in walk order then
 * archives in walk order (the order `--jobs 1` scans them in), and where the time went.
 */
export async function scanJobs(
  scanner: SecretScanner,
  source: Iterable<Omit<ScanJob, 'order'>>,
  o: PoolOptions,
): Promise<{ results: JobResult[]; profile: ScanProfile }> {
  const t0 = performance.now()
  const main = threadProfile('main')
  const jobs: ScanJob[] = []
  const results: (JobResult | undefined)[] = []
  const pending = new WorkQueue((i) => (jobs[i] as ScanJob).size)
  const slots: Slot[] = []
  let started = 0
  let crashes = 0
  let done = 0
  let walkDone = false
  let batchId = 0
  let wake: (() => void) | undefined
  const live = () => slots.filter((s) => !s.dead)

  const record = (r: JobResult) => {
    if (results[r.order] !== undefined) return
    results[r.order] = r
    done++
    o.onResult?.(r)
  }

  const mainScans = o.mainScans !== false
  /** The next batch for `owner` (a worker's id, or MAIN): empty when nothing is pending. */
  const takeBatch = (owner: number): ScanJob[] => {
    const most = owner === MAIN ? MAIN_BATCH_MAX_BYTES : BATCH_MAX_BYTES
    for (;;) {
      if (pending.size === 0) return []
      const threads = live().length + (mainScans ? 1 : 0)
      if (walkDone) pending.seal([...live().map((x) => x.id), ...(mainScans ? [MAIN] : [])])
      const target = walkDone
        ? Math.min(most, Math.max(BATCH_MIN_BYTES, pending.bytes / (4 * Math.max(1, threads))))
        : most
      const taken = pending.take(owner, target, BATCH_MAX_FILES)
      if (taken.length === 0) return []
      // A job given back by a dead worker whose last results came after its death is done already.
      const batch = taken.filter((i) => results[i] === undefined).map((i) => jobs[i] as ScanJob)
      if (batch.length > 0) return batch
    }
  }

  const dispatch = (s: Slot) => {
    while (s.ready && !s.dead && s.inflight.size < IN_FLIGHT && pending.size > 0) {
      const batch = takeBatch(s.id)
      if (batch.length === 0) break
      const id = batchId++
      s.inflight.set(
        id,
        batch.map((j) => j.order),
      )
      s.worker.postMessage({ id, jobs: batch } satisfies BatchMessage)
    }
  }
  const dispatchAll = () => {
    for (const s of slots) dispatch(s)
  }

  const onDeath = (s: Slot, why: string) => {
    if (s.dead) return
    s.dead = true
    crashes++
    s.profile.idleMs = Math.max(0, s.lastAt - s.readyAt - s.profile.busyMs)
    const at = Atomics.load(s.current, 0)
    for (const orders of s.inflight.values())
      for (const i of orders) {
        if (results[i] !== undefined) continue
        if (i === at) {
          const j = jobs[i] as ScanJob
          record({
            order: i,
            findings: [],
            stats: emptyStats(),
            skipped: [],
            files: 0,
            problems: [],
            error: `${j.display}: not scanned: the scanning thread died on it (${why})`,
          })
        } else pending.add(i)
      }
    s.inflight.clear()
    pending.release(s.id)
    // A replacement, while there is work and the deaths stay under one per job asked for.
    if (crashes <= o.jobs && (pending.size > 0 || !walkDone)) start()
    dispatchAll()
    wake?.()
  }

  const start = () => {
    const slot = new SharedArrayBuffer(4)
    const current = new Int32Array(slot)
    current[0] = -1
    const data: WorkerData = {
      configFile: o.configFile,
      job: o.job,
      slot,
      ...(o.crashOn !== undefined ? { crashOn: o.crashOn } : {}),
    }
    const spawnAt = performance.timeOrigin + performance.now()
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data })
    const s: Slot = {
      id: ++started,
      worker,
      profile: threadProfile(`worker ${started}`),
      current,
      ready: false,
      dead: false,
      readyAt: 0,
      lastAt: 0,
      inflight: new Map(),
    }
    slots.push(s)
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        s.ready = true
        s.readyAt = m.readyAt
        s.lastAt = m.readyAt
        s.profile.startMs = m.readyAt - spawnAt
        s.profile.startCpuSeconds = m.cpuSeconds
        dispatch(s)
        return
      }
      s.inflight.delete(m.id)
      for (const r of m.results) record(r)
      s.profile.busyMs += m.busyMs
      s.profile.readMs += m.readMs
      s.profile.waitMs = m.waitMs
      s.profile.bytes += m.bytes
      s.profile.files += m.results.length
      s.profile.cpuSeconds = m.cpuSeconds
      s.lastAt = m.at
      dispatch(s)
      wake?.()
    })
    worker.on('error', (err) => onDeath(s, firstLine(err)))
    worker.on('exit', (code) => onDeath(s, `exit code ${code}`))
  }

  const stop = () => {
    const end = performance.timeOrigin + performance.now()
    for (const s of slots) {
      if (s.dead) continue
      s.dead = true
      s.profile.idleMs = s.ready ? Math.max(0, end - s.readyAt - s.profile.busyMs) : 0
      void s.worker.terminate()
    }
  }

  // The walk: collect jobs, start workers as the bytes seen pay for them, feed the ready ones.
  // One worker starts before it, so that its start overlaps the walk; it is let go if the tree
  // turns out too small for two threads.
  const archives: number[] = []
  let seen = 0
  if (o.jobs >= 2) start()
  try {
    const it = source[Symbol.iterator]()
    let slice = performance.now()
    for (;;) {
      const w0 = performance.now()
      const next = it.next()
      main.walkMs += performance.now() - w0
      if (next.done) break
      const order = jobs.length
      const j: ScanJob = { ...next.value, order }
      jobs.push(j)
      seen += j.size
      if (o.jobs < 2) continue
      pending.add(order)
      // More workers as the bytes seen pay for them (this thread scans one share).
      const want = Math.min(o.jobs, jobs.length, Math.floor(seen / Math.max(1, o.minBytesPerWorker))) - 1
      if (crashes === 0) while (started < want) start()
      if (performance.now() - slice > WALK_SLICE_MS) {
        dispatchAll()
        await new Promise((r) => setImmediate(r))
        slice = performance.now()
      }
    }
  } catch (err) {
    stop()
    throw err
  }
  walkDone = true
  // Too small a tree for two threads (no more files than one, or under two threads' worth of
  // bytes): the worker is let go and this thread scans it (what it may have scanned during a
  // long walk is kept).
  const small = Math.min(jobs.length, Math.floor(seen / Math.max(1, o.minBytesPerWorker))) < 2
  const usePool = started > 0 && !small
  const clock = { readMs: 0 }
  /** Scans jobs here, in the order given; counts them in this thread's profile. */
  const scanHere = async (batch: readonly ScanJob[]) => {
    const b0 = performance.now()
    for (const j of batch) record(await scanJob(scanner, j, o.job, clock))
    main.busyMs += performance.now() - b0
    main.readMs = clock.readMs
    main.files += batch.length
    for (const j of batch) main.bytes += j.size
  }
  if (usePool) {
    dispatchAll()
    // This thread scans a batch at a time, and between batches lets the workers' messages in
    // (their handlers record results and send the next batches); with nothing left to take it
    // waits for the workers' last results, or for a death that gives work back.
    while (done < jobs.length && (mainScans || live().length > 0)) {
      const batch = mainScans ? takeBatch(MAIN) : []
      if (batch.length > 0) {
        await scanHere(batch)
        await new Promise((r) => setImmediate(r))
        continue
      }
      if (live().length === 0) break
      await new Promise<void>((r) => {
        wake = r
      })
      wake = undefined
    }
  }
  stop()
  // In-process, in walk order: every job with one thread or a small tree, or what dead workers
  // left behind.
  const left = jobs.map((j) => j.order).filter((i) => results[i] === undefined)
  if (left.length > 0) {
    for (const i of left) {
      const j = jobs[i] as ScanJob
      if (j.archive !== undefined) archives.push(i)
      else await scanHere([j])
    }
    for (const i of archives) await scanHere([jobs[i] as ScanJob])
  }
  // The main thread's CPU since the process started (its startup included).
  main.cpuSeconds = threadCpuSeconds()
  const wallMs = performance.now() - t0
  main.idleMs = Math.max(0, wallMs - main.walkMs - main.busyMs)
  const ordered = jobs
    .filter((j) => j.archive === undefined)
    .concat(jobs.filter((j) => j.archive !== undefined))
    .map((j) => results[j.order] as JobResult)
  return {
    results: ordered,
    profile: {
      jobs: o.jobs,
      workers: usePool ? started : 0,
      wallMs,
      reportMs: 0,
      threads: [main, ...slots.filter((s) => usePool || s.profile.files > 0).map((s) => s.profile)],
    },
  }
}

/** An error's first line, at most 200 characters: what a crash report shows. */
function firstLine(err: unknown): string {
  const e = err as Error
  return `${e?.name ?? 'Error'}: ${String(e?.message ?? err).split('\n')[0]}`.slice(0, 200)
}
