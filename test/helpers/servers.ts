/**
 * Real servers for integration tests: a recording upstream and an in-process gateway started from
 * a temporary config file. Everything listens on 127.0.0.1 port 0; `close()` stops it all.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { type RunningGateway, startGateway } from '../../src/gateway/serve.js'

/** One request as the upstream saw it. */
export interface RecordedRequest {
  method: string
  /** The exact request target the upstream received (`req.url`, nothing normalized). */
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

export interface RecordingUpstream {
  url: string
  port: number
  /** Every request received, in arrival order (bodies complete). */
  requests: RecordedRequest[]
  /** Forgets recorded requests. */
  clear(): void
  close(): Promise<void>
}

/**
 * Starts an upstream that records the raw `req.url`, headers and full body of every request,
 * then answers 200 with a small JSON document. It reads the whole body before answering.
 */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = []
  const sockets = new Set<Socket>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', () => {})
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      })
      const out = JSON.stringify({ ok: true, url: req.url, bodyBytes: body.length })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) })
      res.end(out)
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    clear: () => {
      requests.length = 0
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        for (const s of sockets) s.destroy()
      }),
  }
}

export interface TestGateway {
  running: RunningGateway
  /** Base URL of the first listener, e.g. http://127.0.0.1:41234. */
  url: string
  host: string
  port: number
  /** Ports of every listener, in config order. */
  ports: number[]
  /** The config file written for this gateway. */
  configFile: string
  close(): Promise<void>
}

/**
 * The config used when none is given: one listener, routes /public and /api to `upstreamUrl`,
 * admin, access log and file watching off, logging silent.
 */
export function defaultConfig(upstreamUrl: string, opts: { http2Listener?: boolean } = {}): string {
  // A second listener with HTTP/2 (h2c prior knowledge) on the same routes, for suites that run
  // over both protocols.
  const h2 = opts.http2Listener ? ', { name: h2, host: 127.0.0.1, port: 0, http2: {} }' : ''
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 }${h2} ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${upstreamUrl}" } ] } }
routes:
  - { name: public, match: { pathPrefix: /public }, upstream: up }
  - { name: api, match: { pathPrefix: /api }, upstream: up }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`
}

/**
 * Writes `configYaml` (default: `defaultConfig(upstreamUrl)`) to a temporary directory and starts
 * the gateway in-process. `close()` shuts the gateway down and removes the directory.
 */
export async function startTestGateway(
  upstreamUrl: string,
  opts: { configYaml?: string; logger?: Logger } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-test-'))
  const configFile = join(dir, 'gateway.yaml')
  writeFileSync(configFile, opts.configYaml ?? defaultConfig(upstreamUrl))
  let running: RunningGateway
  try {
    running = await startGateway(configFile, opts.logger ? { logger: opts.logger } : {})
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const first = running.listeners[0]
  if (!first) throw new Error('gateway started without listeners')
  const u = new URL(first.url)
  return {
    running,
    url: first.url,
    host: u.hostname,
    port: Number(u.port),
    ports: running.listeners.map((l) => Number(new URL(l.url).port)),
    configFile,
    close: async () => {
      try {
        await running.close()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
