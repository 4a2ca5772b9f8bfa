/**
 * Test support: a private `redis-server` (or sentinel) on a free port on 127.0.0.1, without
 * persistence, that a test can kill, freeze, resume and restart on the same port.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const BINARY = process.env.REDIS_SERVER_BIN || 'redis-server'

/** Throws a clear error when redis-server is not installed: the Redis tests must fail, not skip. */
export function requireRedisServer(): string {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) {
    throw new Error(
      `redis-server is not installed (running \`${BINARY} --version\` failed: ${r.error?.message ?? r.stderr}). ` +
        'The Redis store tests need it: install it (apt-get install redis-server, brew install redis) ' +
        'or set REDIS_SERVER_BIN. CI installs it in .ci/run.',
    )
  }
  return r.stdout.trim()
}

/** A free TCP port on 127.0.0.1 (free when asked; the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      const port = typeof address === 'object' && address ? address.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Sends one RESP command over a fresh connection and returns the raw reply (first chunk). */
export function rawCommand(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from 127.0.0.1:${port} in ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
    })
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8')
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
  })
}

export interface RedisServerOptions {
  /** Extra redis-server arguments (e.g. ['--requirepass', 'x', '--cluster-enabled', 'yes']). */
  args?: string[]
  /** Run as a sentinel with this config body (the port line is added). */
  sentinelConfig?: string
}

export class RedisServer {
  readonly port: number
  private child: ChildProcess | undefined
  private output = ''
  private readonly dir: string

  private constructor(
    port: number,
    private readonly options: RedisServerOptions,
  ) {
    this.port = port
    this.dir = mkdtempSync(join(tmpdir(), 'portcullis-redis-'))
  }

  /** Starts a server on a free port and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    requireRedisServer()
    const server = new RedisServer(await freePort(), options)
    await server.launch()
    return server
  }

  /** Starts (again) on the same port. */
  async launch(): Promise<void> {
    if (this.child) throw new Error('redis-server already running')
    const base = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    let args = [...base, '--dir', this.dir, ...(this.options.args ?? [])]
    if (this.options.sentinelConfig !== undefined) {
      const file = join(this.dir, 'sentinel.conf')
      writeFileSync(
        file,
        `port ${this.port}\nbind 127.0.0.1\ndir ${this.dir}\n${this.options.sentinelConfig}\n`,
      )
      args = [file, '--sentinel']
    }
    this.output = ''
    const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-4000)
    })
    child.stderr?.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-4000)
    })
    this.child = child
    child.once('exit', () => {
      if (this.child === child) this.child = undefined
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      if (!this.child) throw new Error(`redis-server exited at startup:\n${this.output}`)
      try {
        const reply = await rawCommand(this.port, ['PING'], 500)
        if (reply.startsWith('+PONG') || reply.startsWith('-NOAUTH')) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING in 10 s:\n${this.output}`)
      await sleep(20)
    }
  }

  /** Kills the server (SIGKILL: no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await exited
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP')
  }

  /** Resumes a frozen server. */
  resume(): void {
    this.child?.kill('SIGCONT')
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    this.resume()
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
