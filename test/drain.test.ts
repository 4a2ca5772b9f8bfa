/**
 * Drain without resets (issue 23, item 7): clients that keep sending on keep-alive connections
 * while the gateway shuts down get answers (the last with Connection: close) or a refused new
 * connection, never a reset of a connection they were using.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Agent, request } from 'undici'
import { spawnGateway } from './helpers/process.js'
import { startUpstream } from './helpers/upstream.js'

test('SIGTERM under keep-alive load: no ECONNRESET, every request answered or refused cleanly', async (t) => {
  const up = await startUpstream()
  const gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
shutdown: { drainTimeout: 5s, idleGrace: 1s }
`)
  // No retries of our own: undici's retry on a reset would hide what this test looks for.
  const agent = new Agent({ connections: 8, pipelining: 1, keepAliveTimeout: 30_000 })
  const outcomes = new Map<string, number>()
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1)
  let stopping = false
  let closeAnswers = 0
  const worker = async () => {
    const until = Date.now() + 20_000 // bounded even if the gateway never exits
    while (Date.now() < until) {
      try {
        const r = await request(`${gw.url}/echo`, { dispatcher: agent })
        await r.body.arrayBuffer()
        count(stopping ? `after-${r.statusCode}` : `before-${r.statusCode}`)
        if (r.headers.connection === 'close') closeAnswers++
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err)
        count(code)
        if (code === 'ECONNREFUSED') return // the listener is gone: done
        if (!stopping) return
      }
    }
  }
  const workers = Array.from({ length: 8 }, worker)
  // Let every worker's connection be established and answered once (a connection still in the
  // listener's accept queue when it closes is reset by the kernel: that is not a keep-alive
  // connection the drain could answer), then shut down under load.
  const warm = Date.now()
  while ((outcomes.get('before-200') ?? 0) < 16 && Date.now() - warm < 20_000)
    await new Promise((r) => setTimeout(r, 20))
  stopping = true
  const exit = await gw.stop('SIGTERM')
  await Promise.all(workers)
  await agent.close()
  await up.close()
  t.diagnostic(
    `outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}, answers with Connection: close: ${closeAnswers}`,
  )
  assert.equal(exit, 0)
  assert.ok((outcomes.get('before-200') ?? 0) > 0)
  for (const bad of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'])
    assert.equal(outcomes.get(bad) ?? 0, 0, `${bad}: ${JSON.stringify(Object.fromEntries(outcomes))}`)
})
