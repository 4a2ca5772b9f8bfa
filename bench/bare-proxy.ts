// Reference bare Node reverse proxy: node:http server + undici Pool (keep-alive) using pool.stream(), with
// status and headers written in the stream factory, which returns the ServerResponse as the body sink.
// Usage: node dist/bench/bare-proxy.js <listen port> <upstream origin>   (listens on 127.0.0.1 only)
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { type Dispatcher, Pool } from 'undici'

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Copy of headers without hop-by-hop headers (RFC 9110 7.6.1), including those listed in Connection. */
export function stripHopByHop(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const connection = headers.connection
  const listed = new Set(
    typeof connection === 'string'
      ? connection
          .toLowerCase()
          .split(',')
          .map((t) => t.trim())
      : [],
  )
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue
    out[name] = value
  }
  return out
}

const port = Number(process.argv[2])
const upstream = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  console.error('usage: bare-proxy.js <port> <upstream origin>')
  process.exit(2)
}

const pool = new Pool(upstream, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 })

function handle(req: IncomingMessage, res: ServerResponse): void {
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream<ServerResponse>(
    {
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: stripHopByHop(req.headers),
      body: hasBody ? req : null,
      opaque: res,
    },
    ({ statusCode, headers, opaque }) => {
      opaque.writeHead(statusCode, stripHopByHop(headers))
      return opaque
    },
    (err) => {
      if (!err) return
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' })
        res.end('bad gateway\n')
      } else {
        res.destroy(err)
      }
    },
  )
}

const server = createServer(handle)
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
