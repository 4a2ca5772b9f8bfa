/**
 * Runs a scanner fixture API (shelf, ledger, bazaar) in a worker thread: a real HTTP server on
 * 127.0.0.1:0 with its own event loop, so a flaw that blocks it (the shelf's catastrophic regex)
 * hangs the target and not the test process. Its data is reachable only in-process, through
 * `state()` (a message to the worker), never over HTTP, so a safe-mode test can diff it.
 *
 * @example
 * const api = await startFixture('ledger', { secure: false })
 * const before = await api.state()
 * // … scan api.url with api.specPath and api.authYaml …
 * assert.deepEqual(await api.state(), before)
 * await api.close()
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

export type FixtureName = 'shelf' | 'ledger' | 'bazaar'

export interface FixtureHandle {
  name: FixtureName
  secure: boolean
  url: string
  /** The spec written to a temporary file (removed by close()). */
  specPath: string
  /** Where the API serves its own spec, when it does (shelf). */
  specUrl?: string
  /** The auth.yaml to scan it with. */
  authYaml: string
  /** A deep copy of the fixture's data (no counters, no rate-limit windows). */
  state(): Promise<unknown>
  /** Counters the fixture keeps about what it was asked (e.g. `resets`, `throttled`). */
  counters(): Promise<Record<string, number>>
  close(): Promise<void>
}

interface Ready {
  type: 'ready'
  port: number
  spec: string
  specExt: 'yaml' | 'json'
  specPath?: string
  authYaml: string
}

export async function startFixture(name: FixtureName, opts: { secure: boolean }): Promise<FixtureHandle> {
  const worker = new Worker(new URL('./host-worker.js', import.meta.url), {
    workerData: { name, secure: opts.secure },
  })
  worker.unref()
  const pending = new Map<number, (v: unknown) => void>()
  let seq = 0
  const ready = await new Promise<Ready>((resolve, reject) => {
    worker.once('error', reject)
    worker.on('message', (m: { type: string; id?: number; value?: unknown }) => {
      if (m.type === 'ready') resolve(m as unknown as Ready)
      else if (m.type === 'reply' && m.id !== undefined) {
        pending.get(m.id)?.(m.value)
        pending.delete(m.id)
      }
    })
  })
  const ask = (type: string) =>
    new Promise<unknown>((resolve) => {
      const id = ++seq
      pending.set(id, resolve)
      worker.postMessage({ type, id })
    })
  const dir = mkdtempSync(join(tmpdir(), `portcullis-${name}-`))
  const specPath = join(dir, `openapi.${ready.specExt}`)
  writeFileSync(specPath, ready.spec)
  const url = `http://127.0.0.1:${ready.port}`
  return {
    name,
    secure: opts.secure,
    url,
    specPath,
    ...(ready.specPath ? { specUrl: `${url}${ready.specPath}` } : {}),
    authYaml: ready.authYaml,
    state: () => ask('state'),
    counters: () => ask('counters') as Promise<Record<string, number>>,
    close: async () => {
      await worker.terminate()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
