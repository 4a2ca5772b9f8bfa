// Bench upstream: a minimal node:http server answering every request with the same ~300-byte JSON body.
// Usage: node dist/bench/upstream.js <port>   (listens on 127.0.0.1 only)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

const UPSTREAM_BODY = Buffer.from(
  JSON.stringify({
    id: 'b3c1f0e2-6a4d-4c1e-9a57-2f8d1e0c7b44',
    status: 'shipped',
    amount: { value: 4299, currency: 'EUR' },
    customer: { id: 'cus_7Q2xY9kL', email: 'jane.doe@example.com', tier: 'gold' },
    items: [
      { sku: 'SKU-1042', qty: 2, price: 1499 },
      { sku: 'SKU-2210', qty: 1, price: 1301 },
    ],
    createdAt: '2024-05-01T12:34:56Z',
  }),
)

const HEADERS = { 'content-type': 'application/json', 'content-length': String(UPSTREAM_BODY.length) }

/** GET /api/orders?big: a ~20 KB JSON list (45 orders) of orders (the leak-guard scenario; no secret in it). */
const BIG_BODY = Buffer.from(
  JSON.stringify({
    orders: Array.from({ length: 45 }, (_, i) => ({
      id: `b3c1f0e2-6a4d-4c1e-9a57-${String(i).padStart(12, '0')}`,
      status: i % 3 === 0 ? 'shipped' : 'pending',
      amount: { value: 4299 + i, currency: 'EUR' },
      customer: {
        id: `cus_${i}Q2xY9kL`,
        email: `user${i}@example.com`,
        tier: 'gold',
        note: 'leave at the door, ring twice',
      },
      items: [
        { sku: `SKU-${1000 + i}`, qty: 2, price: 1499, title: 'Stainless steel water bottle, 750 ml' },
        { sku: `SKU-${2000 + i}`, qty: 1, price: 1301, title: 'Insulated lunch box with two compartments' },
      ],
      createdAt: '2024-05-01T12:34:56Z',
    })),
  }),
)
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
