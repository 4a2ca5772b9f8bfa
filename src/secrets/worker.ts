/** A `--jobs N` worker: scans the files the main thread sends and posts the findings back. */
import { parentPort, workerData } from 'node:worker_threads'
import { buildSetup } from './setup.js'
import { scanFile, type Skipped } from './sources/files.js'

interface Job {
  id: number
  abs: string
  display: string
  size: number
}

const { configFile, redact } = workerData as { configFile: string | undefined; redact: boolean }
const { scanner } = await buildSetup(configFile)
parentPort?.on('message', (job: Job) => {
  const skipped: Skipped[] = []
  try {
    const r = scanFile(scanner, job.abs, job.size, { file: job.display, redact }, skipped)
    parentPort?.postMessage({ id: job.id, findings: r.findings, stats: r.stats, skipped })
  } catch (err) {
    parentPort?.postMessage({
      id: job.id,
      findings: [],
      stats: undefined,
      skipped: [{ path: job.display, reason: 'unreadable' }],
      error: String((err as Error).message),
    })
  }
})
