/**
 * Verifies chain files in a worker thread, so that the admin API's check of the current audit
 * file never blocks the event loop that serves requests, and can be given up after a deadline
 * (the worker is terminated). {@link verifyInWorker} is the caller's side; the worker's side runs
 * when this module is loaded as a worker.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import type { Keyring } from './keyring.js'
import { type VerifyOptions, type VerifyReport, verifyChain } from './verify.js'

interface Job {
  files: string[]
  keyring: { active: string; keys: [string, Uint8Array][] }
  encryption: { active: string; keys: [string, Uint8Array][] } | undefined
  opts: Pick<VerifyOptions, 'partial' | 'live' | 'requireClosed'>
}

const pack = (k: Keyring) => ({
  active: k.active,
  keys: [...k.keys].map(([id, b]) => [id, new Uint8Array(b)] as [string, Uint8Array]),
})
const unpack = (k: Job['keyring']): Keyring => ({
  active: k.active,
  keys: new Map(k.keys.map(([id, b]) => [id, Buffer.from(b)])),
})

export type WorkerVerdict =
  | { status: 'done'; report: VerifyReport }
  | { status: 'timeout' }
  | { status: 'error'; message: string }

/** Runs verifyChain in a worker; resolves `timeout` (and terminates it) after `timeoutMs`. */
export function verifyInWorker(
  files: string[],
  keyring: Keyring,
  encryption: Keyring | undefined,
  opts: Job['opts'],
  timeoutMs: number,
): Promise<WorkerVerdict> {
  const job: Job = {
    files,
    keyring: pack(keyring),
    encryption: encryption ? pack(encryption) : undefined,
    opts,
  }
  return new Promise((resolve) => {
    let done = false
    const finish = (v: WorkerVerdict) => {
      if (done) return
      done = true
      clearTimeout(timer)
      void worker.terminate()
      resolve(v)
    }
    const worker = new Worker(new URL(import.meta.url), { workerData: job })
    const timer = setTimeout(() => finish({ status: 'timeout' }), timeoutMs)
    timer.unref()
    worker.once('message', (m: WorkerVerdict) => finish(m))
    // Messages only: a file name, an errno code. Never key material.
    worker.once('error', (err) => finish({ status: 'error', message: err.message.slice(0, 200) }))
    worker.once('exit', () => finish({ status: 'error', message: 'the verify worker stopped' }))
  })
}

if (!isMainThread && parentPort && (workerData as Job | undefined)?.files) {
  const job = workerData as Job
  let out: WorkerVerdict
  try {
    const report = verifyChain(job.files, unpack(job.keyring), {
      ...job.opts,
      encryption: job.encryption ? unpack(job.encryption) : undefined,
    })
    out = { status: 'done', report }
  } catch (err) {
    out = { status: 'error', message: (err as Error).message.slice(0, 200) }
  }
  parentPort.postMessage(out)
}
