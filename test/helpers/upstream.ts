/** A small real upstream for integration tests, on 127.0.0.1:0. */
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface TestUpstream {
  url: string
  port: number
  /** Raw request targets received, in order. */
  received: string[]
  close(): Promise<void>
}

/**
 * Routes: /echo (method, url, headers as JSON), /slow?ms=N (waits before answering),
 * /status/N (empty answer with that status), /download?mb=N (streams N MiB),
 * /upload (reads the body, answers its size and sha256), /leaky (technology-disclosing headers),
 * anything else: 200 {"path": url, "marker": marker}.
 */
export async function startUpstream(marker = 'upstream'): Promise<TestUpstream> {
  const received: string[] = []
  const server = http.createServer((req, res) => {
    received.push(req.url ?? '')
    const u = new URL(req.url ?? '/', 'http://x')
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const s = JSON.stringify(body)
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(s),
        ...headers,
      })
      res.end(s)
    }
    if (u.pathname === '/echo') {
      json(200, { method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders })
    } else if (u.pathname === '/slow') {
      const t = setTimeout(() => json(200, { slow: true }), Number(u.searchParams.get('ms') ?? 1000))
      res.on('close', () => clearTimeout(t))
    } else if (u.pathname.startsWith('/status/')) {
      const status = Number(u.pathname.slice(8))
      res.writeHead(status, status === 304 ? { etag: '"v1"' } : {})
      res.end()
    } else if (u.pathname === '/download') {
      const mb = Number(u.searchParams.get('mb') ?? 1)
      const chunk = Buffer.alloc(64 * 1024, 'x')
      let left = (mb * 1024 * 1024) / chunk.length
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mb * 1024 * 1024 })
      const pump = () => {
        while (left > 0) {
          left--
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
    } else if (u.pathname === '/upload') {
      const hash = createHash('sha256')
      let size = 0
      req.on('data', (c: Buffer) => {
        size += c.length
        hash.update(c)
      })
      req.on('end', () => json(200, { size, sha256: hash.digest('hex') }))
    } else if (u.pathname === '/leaky') {
      res.writeHead(200, {
        server: 'Apache/2.4.1',
        'x-powered-by': 'PHP/5.4',
        connection: 'x-internal',
        'x-internal': 'secret-hop',
        'content-type': 'application/json',
      })
      res.end('{}')
    } else {
      json(200, { path: req.url, marker })
    }
  })
  server.keepAliveTimeout = 30000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  }
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}
