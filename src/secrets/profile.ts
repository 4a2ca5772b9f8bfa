/**
 * Where the time of a tree scan goes, per thread (`PORTCULLIS_SECRETS_PROFILE=FILE` writes it as
 * JSON; `npm run bench:secrets` prints it). Busy and idle times are wall-clock spans measured by
 * each thread itself; CPU seconds are the thread's own, read from /proc (Linux; absent elsewhere).
 */
import { readFileSync } from 'node:fs'

export interface ThreadProfile {
  /** `main` (the walk, and the scan with one job), or `worker N`. */
  thread: string
  /** From the thread's start until it could scan (module loading, scanner setup), ms. */
  startMs: number
  /** CPU seconds the thread spent getting there (Linux). */
  startCpuSeconds: number | undefined
  /** Walking the tree (the main thread), ms. */
  walkMs: number
  /** Scanning, reading included, ms. */
  busyMs: number
  /** Opening and reading files, ms (part of busyMs). */
  readMs: number
  /** Ready but without work, until the scan's end (or the thread's crash), ms. */
  idleMs: number
  /** Of idleMs, the waits for a batch before the thread's last one (the rest is the tail). */
  waitMs: number
  files: number
  bytes: number
  /** CPU seconds of the thread (the main thread's since the process started), on Linux. */
  cpuSeconds: number | undefined
}

export interface ScanProfile {
  jobs: number
  /** Worker threads the scan was handed to (0: in-process; two may have started and been let go). */
  workers: number
  wallMs: number
  /** Rendering and writing the report (the CLI fills it in), ms. */
  reportMs: number
  threads: ThreadProfile[]
}

/** An empty profile row. */
export function threadProfile(thread: string): ThreadProfile {
  return {
    thread,
    startMs: 0,
    startCpuSeconds: undefined,
    walkMs: 0,
    busyMs: 0,
    readMs: 0,
    idleMs: 0,
    waitMs: 0,
    files: 0,
    bytes: 0,
    cpuSeconds: undefined,
  }
}

/**
 * CPU seconds (user + system) of the calling thread, from /proc/thread-self/stat (clock ticks of
 * 1/100 s); undefined where there is no such file.
 */
export function threadCpuSeconds(): number | undefined {
  try {
    const text = readFileSync('/proc/thread-self/stat', 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of stat (utime, stime) are f[11] and f[12] after the name.
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return undefined
  }
}
