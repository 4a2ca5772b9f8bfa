/**
 * Runs the real `portcullis serve` CLI as a child process for integration tests, and reads its
 * listener URLs from its JSON log.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('../../../', import.meta.url).pathname

export interface GatewayProcess {
  child: ChildProcess
  url: string
  adminUrl: string | undefined
  dir: string
  configFile: string
  /** Everything the process wrote to stderr so far. */
  stderr(): string
  /** Everything it wrote to stdout so far (with `captureStdout`; '' otherwise). */
  stdout(): string
  /**
   * Waits (bounded) until stderr matches: log lines written after a response was sent travel
   * through a pipe and can arrive after the client has its answer. Resolves stderr; rejects with
   * the pattern after `timeoutMs`.
   */
  waitForLog(pattern: RegExp | ((stderr: string) => boolean), timeoutMs?: number): Promise<string>
  /** Resident set size now, in bytes (from /proc). */
  rss(): number
  /** SIGTERM and wait for exit; resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export function tempDir(prefix = 'pc-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Writes `yaml` to a temp dir and starts the gateway on it. Rejects if it does not come up in 30 s (a loaded CI machine starting several at once can take a while; a hang still fails). */
export async function spawnGateway(
  yaml: string,
  dir = tempDir(),
  opts: { captureStdout?: boolean; args?: readonly string[] } = {},
): Promise<GatewayProcess> {
  const configFile = join(dir, 'portcullis.yaml')
  // The admin listener is on by default on port 9901: a test config that does not mention it gets
  // a free port instead, so that a gateway elsewhere on this machine cannot make it fail.
  if (!/^admin:/m.test(yaml) && !yaml.trimStart().startsWith('{'))
    yaml = `${yaml.trimEnd()}\nadmin: { host: 127.0.0.1, port: 0 }\n`
  writeFileSync(configFile, yaml)
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/portcullis.js'), 'serve', '--config', configFile, ...(opts.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let err = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (d: string) => {
    err += d
  })
  let out = ''
  if (opts.captureStdout) {
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (d: string) => {
      out += d
    })
  } else child.stdout?.resume()
  // 'close', not 'exit': after 'close' every byte the process wrote to its pipes has been read.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  const started = Date.now()
  let url: string | undefined
  let adminUrl: string | undefined
  while (Date.now() - started < 30000) {
    for (const line of err.split('\n')) {
      if (!line.startsWith('{')) continue
      const rec = JSON.parse(line) as { msg?: string; url?: string }
      if (rec.msg === 'listening') url ??= rec.url
      if (rec.msg === 'admin listening') adminUrl = rec.url
    }
    if (url && (adminUrl || !/^admin:/m.test(yaml) || /^admin:\s*\{\s*enabled:\s*false/m.test(yaml))) break
    if (child.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 25))
  }
  if (!url) {
    child.kill('SIGKILL')
    if (/invalid config/.test(err)) {
      // serve refused the config: `config check` must refuse it too (they share one loader).
      const { loadGatewayConfig } = await import('../../src/config/policy-checks.js')
      const checked = await loadGatewayConfig(configFile)
      if (checked.config !== undefined)
        throw new Error(`config check calls valid a config that serve refused:\n${err}`)
    }
    throw new Error(`gateway did not start:\n${err}`)
  }
  const pid = child.pid as number
  return {
    child,
    url,
    adminUrl,
    dir,
    configFile,
    stderr: () => err,
    stdout: () => out,
    waitForLog: async (pattern, timeoutMs = 5000) => {
      const matches = typeof pattern === 'function' ? pattern : (t: string) => pattern.test(t)
      const deadline = Date.now() + timeoutMs
      while (!matches(err)) {
        if (Date.now() > deadline)
          throw new Error(`no log line matching ${String(pattern)} in ${timeoutMs} ms`)
        await new Promise((r) => setTimeout(r, 10))
      }
      return err
    },
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      return Number(m?.[1] ?? 0) * 1024
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const t = setTimeout(() => child.kill('SIGKILL'), 15000)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}
