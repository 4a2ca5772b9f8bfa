// Child process management for the bench: CPU pinning with taskset, bounded output capture, readiness
// probes, and a registry so that every process started is killed on exit, on error and on SIGINT/SIGTERM.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { delimiter, join } from 'node:path'

export interface Child {
  readonly name: string
  readonly pid: number
  readonly proc: ChildProcess
  /** resolves with the exit code (or the signal name) once the process has exited */
  readonly exited: Promise<number | string>
  readonly hasExited: () => boolean
  /** everything written to stdout (only kept when captureStdout was set) */
  readonly stdout: () => string
  /** the last few KiB written to stderr */
  readonly stderrTail: () => string
  /** SIGTERM, then SIGKILL after graceMs */
  readonly stop: (graceMs?: number) => Promise<void>
}

export interface SpawnOptions {
  /** pin to this CPU with `taskset -c N` (ignored when pinning is disabled) */
  cpu?: number
  cwd?: string
  env?: NodeJS.ProcessEnv
  captureStdout?: boolean
}

const live = new Set<Child>()
let pinning = true

/** Disable taskset pinning (no taskset binary, or fewer than 2 CPUs). */
export function setPinning(on: boolean): void {
  pinning = on
}

export function pinningEnabled(): boolean {
  return pinning
}

const STDERR_TAIL = 4096

export function spawnChild(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Child {
  const pinned = pinning && opts.cpu !== undefined
  // taskset execs the command, so the pid we get is the command's own pid
  const file = pinned ? 'taskset' : cmd
  const argv = pinned ? ['-c', String(opts.cpu), cmd, ...args] : args
  const proc = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'],
  })
  if (proc.pid === undefined) throw new Error(`${name}: could not spawn ${file}`)
  let out = ''
  let err = ''
  let done = false
  proc.stdout?.setEncoding('utf8')
  proc.stdout?.on('data', (d: string) => {
    out += d
  })
  proc.stderr?.setEncoding('utf8')
  proc.stderr?.on('data', (d: string) => {
    err = (err + d).slice(-STDERR_TAIL)
  })
  const exited = new Promise<number | string>((resolve) => {
    proc.on('error', (e) => {
      err = (err + String(e)).slice(-STDERR_TAIL)
      done = true
      resolve('spawn-error')
    })
    proc.on('exit', (code, signal) => {
      done = true
      resolve(code ?? signal ?? 'unknown')
    })
  })
  const child: Child = {
    name,
    pid: proc.pid,
    proc,
    exited,
    hasExited: () => done,
    stdout: () => out,
    stderrTail: () => err,
    stop: async (graceMs = 3000) => {
      if (!done) {
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      live.delete(child)
    },
  }
  live.add(child)
  void exited.then(() => live.delete(child))
  return child
}

/** Stops every child still running (in parallel). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()))
}

/** Synchronous last resort for process.on('exit'): SIGKILL whatever is left. */
export function killAllChildrenSync(): void {
  for (const c of live) {
    if (!c.hasExited()) c.proc.kill('SIGKILL')
  }
  live.clear()
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))))
    })
  })
}

function probe(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: 1000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
      res.on('error', () => resolve(res.statusCode))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Polls url until it answers with any HTTP status, the child exits or timeoutMs passes.
 * Returns the status, or an error text explaining why it never answered.
 */
export async function waitForHttp(
  url: string,
  timeoutMs: number,
  child?: Child,
): Promise<{ ok: true; status: number } | { ok: false; why: string }> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child?.hasExited()) return { ok: false, why: `exited with ${await child.exited}` }
    const status = await probe(url)
    if (status !== undefined) return { ok: true, status }
    await sleep(100)
  }
  return { ok: false, why: `no HTTP answer on ${url} within ${timeoutMs / 1000} s` }
}

/** Absolute path of an executable found in PATH or in the sbin directories, or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs) {
    if (!dir) continue
    const p = join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}

/** Pins the calling process (all its threads) to one CPU; returns false when that failed. */
export function pinSelf(cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function cpuCount(): number {
  return availableParallelism()
}
