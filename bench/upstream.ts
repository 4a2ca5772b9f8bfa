// Bench upstream: a minimal node:http server answering every request with the same ~300-byte JSON body.
// Usage: node dist/bench/upstream.js <port>   (listens on 127.0.0.1 only)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { BIG_BODY, UPSTREAM_BODY } from './bodies.js'

const HEADERS = { 'content-type': 'application/json', 'content-length': String(UPSTREAM_BODY.length) }

const BIG_HEADERS = { 'content-type': 'application/json', 'content-length': String(BIG_BODY.length) }

function answer(res: ServerResponse, big = false): void {
  res.writeHead(200, big ? BIG_HEADERS : HEADERS)
  res.end(big ? BIG_BODY : UPSTREAM_BODY)
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' || req.method === 'HEAD') {
    answer(res, req.url === '/api/orders?big')
    req.resume()
    return
  }
  // requests with a body (future scenarios): drain it, then answer
  req.on('end', () => answer(res))
  req.resume()
}

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: upstream.js <port>')
  process.exit(2)
}
const server = createServer(handle)
// keep the proxies' pooled connections open for the whole bench
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000
server.listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
