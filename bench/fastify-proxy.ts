// fastify + @fastify/http-proxy reverse proxy for the bench (logger off, keep-alive undici pool inside).
// Usage: node dist/bench/fastify-proxy.js <listen port> <upstream origin>   (listens on 127.0.0.1 only)
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const port = Number(process.argv[2])
const upstream = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  console.error('usage: fastify-proxy.js <port> <upstream origin>')
  process.exit(2)
}

const app = Fastify({ logger: false })
await app.register(proxy, { upstream })
await app.listen({ host: '127.0.0.1', port })
process.on('SIGTERM', () => process.exit(0))
