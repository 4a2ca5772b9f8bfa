import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Agent } from 'undici'
import { loadOpenApi } from '../openapi/index.js'
import { runScan, ScanRun, ScanSetupError } from './engine.js'
import { parseAuthConfig } from './identities.js'
import type { Check } from './types.js'
import { SkipCheck } from './types.js'

const SPEC = {
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  paths: { '/ping': { get: { responses: { '200': { description: 'ok' } } } } },
}

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}
const close = (s: Server) => {
  s.closeAllConnections()
  return new Promise<void>((r) => s.close(() => r()))
}

describe('scan engine', () => {
  let dir: string
  let specFile: string
  let target: { server: Server; url: string }
  let other: { server: Server; url: string }
  let otherHits = 0
  let inFlight = 0
  let maxInFlight = 0
  const tokens = new Set<string>()
  let issued = 0

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'engine-'))
    specFile = join(dir, 'openapi.json')
    writeFileSync(specFile, JSON.stringify(SPEC))
    other = await listen((_req, res) => {
      otherHits++
      res.end('other')
    })
    target = await listen((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/redirect') {
        res.writeHead(302, { location: `${other.url}/stolen` }).end()
      } else if (url.pathname === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end('y'.repeat(1024 * 1024))
      } else if (url.pathname === '/slow') {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        setTimeout(() => {
          inFlight--
          res.end('ok')
        }, 60)
      } else if (url.pathname === '/hang') {
        // never answers
      } else if (url.pathname === '/login') {
        const t = `session-token-${++issued}`
        tokens.add(t)
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t }))
      } else if (url.pathname === '/me') {
        const t = (req.headers.authorization ?? '').replace('Bearer ', '')
        if (!tokens.has(t)) return void res.writeHead(401).end()
        tokens.delete(t) // one use per token: the next request needs a new login
        res
          .writeHead(200, { 'content-type': 'application/json', 'set-cookie': `sid=${t}` })
          .end(JSON.stringify({ token: t }))
      } else if (url.pathname === '/openapi.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(SPEC))
      } else res.writeHead(200, { 'content-type': 'application/json' }).end('{"pong":true}')
    })
  })
  after(async () => {
    await close(target.server)
    await close(other.server)
    rmSync(dir, { recursive: true, force: true })
  })

  const makeRun = (
    opts: Partial<ConstructorParameters<typeof ScanRun>[4]> & { target?: string } = {},
    auth?: string,
  ) => {
    const dispatcher = new Agent()
    const { target: t, ...rest } = opts
    const run = new ScanRun(
      loadOpenApi(specFile),
      new URL(t ?? target.url),
      true,
      auth ? parseAuthConfig(auth) : undefined,
      rest,
      dispatcher,
    )
    return { run, done: async () => Promise.all([run.close(), dispatcher.close()]) }
  }

  it('sends only to the target origin, under its base path', async () => {
    const { run, done } = makeRun({ target: `${target.url}/base/` })
    try {
      assert.equal(run.url('/a', { q: ['1', '2'] }).href, `${target.url}/base/a?q=1&q=2`)
      for (const bad of ['//evil.example/x', 'http://evil.example/', 'relative']) {
        assert.throws(() => run.url(bad), /must start with one/)
      }
      // A backslash is a slash in an http URL: it stays on the target's origin.
      assert.equal(run.url('/\\evil.example/x').origin, new URL(target.url).origin)
    } finally {
      await done()
    }
  })

  it('never follows a redirect (off-origin or not)', async () => {
    const { run, done } = makeRun()
    try {
      const res = await run.send(undefined, { method: 'GET', path: '/redirect' })
      assert.equal(res.status, 302)
      assert.equal(otherHits, 0)
    } finally {
      await done()
    }
  })

  it('reads at most maxBodyBytes of a response; a timeout is status 0 with an error', async () => {
    const { run, done } = makeRun({ maxBodyBytes: 1000, timeoutMs: 300 })
    try {
      const big = await run.send(undefined, { method: 'GET', path: '/big' })
      assert.equal(big.text.length, 1000)
      const hang = await run.send(undefined, { method: 'GET', path: '/hang' })
      assert.equal(hang.status, 0)
      assert.match(hang.exchange.error ?? '', /timeout after 300 ms/)
      assert.deepEqual(run.stats, { requests: 2, errors: 1, retries: 0, blocked: 0 })
    } finally {
      await done()
    }
  })

  it('keeps to the rate and the concurrency', async () => {
    const { run, done } = makeRun({ rate: 10, concurrency: 2 })
    try {
      maxInFlight = 0
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: 6 }, () => run.send(undefined, { method: 'GET', path: '/slow' })),
      )
      const ms = performance.now() - t0
      assert.ok(ms >= 480, `6 requests at 10/s took ${ms.toFixed(0)} ms`)
      assert.ok(maxInFlight <= 2, `max in flight ${maxInFlight}`)
    } finally {
      await done()
    }
  })

  it('logs in at first use, again on 401 (once per request), and masks tokens and cookies', async () => {
    const { run, done } = makeRun(
      {},
      'identities:\n  alice: { login: { path: /login, tokenPointer: /token } }\n',
    )
    try {
      const a = await run.send('alice', { method: 'GET', path: '/me' })
      assert.equal(a.status, 200)
      const b = await run.send('alice', { method: 'GET', path: '/me' }) // token used up → 401 → login → retry
      assert.equal(b.status, 200)
      assert.equal(issued, 2)
      assert.equal(run.stats.requests, 5) // login, me, me(401), login, me
      const text = JSON.stringify([a.exchange, b.exchange])
      assert.ok(!/session-token-\d/.test(text), text)
      assert.match(text, /"authorization":"Bearer \*\*\*"/)
      assert.match(text, /"set-cookie":"sid=\*\*\*"/)
      await assert.rejects(run.send('nobody', { method: 'GET', path: '/' }), /unknown identity/)
    } finally {
      await done()
    }
  })

  it('canary: unique URLs, hit detection with a bounded wait', async () => {
    const { run, done } = makeRun()
    try {
      const c1 = await run.canary()
      const c2 = await run.canary()
      assert.notEqual(c1.url, c2.url)
      assert.match(c1.url, /^http:\/\/127\.0\.0\.1:\d+\/c\/[a-f0-9]{32}$/)
      const waiting = c1.wasHit(2000)
      await fetch(c1.url)
      assert.equal(await waiting, true)
      assert.equal(await c2.wasHit(50), false)
    } finally {
      await done()
    }
  })

  it('runScan: spec from a URL, check errors and skips reported, unknown check ids refused', async () => {
    const boom: Check = {
      id: 'boom',
      title: 'b',
      owasp: 'API8:2023',
      severity: 'low',
      description: '',
      why: '',
      fix: '',
      fixExample: '',
      run: async () => {
        throw new Error('kaput')
      },
    }
    const skip: Check = {
      ...boom,
      id: 'skip',
      run: async () => Promise.reject(new SkipCheck('nothing to do')),
    }
    const found: Check = {
      ...boom,
      id: 'found',
      run: async (ctx) => {
        const r = await ctx.send(undefined, { method: 'GET', path: '/ping' })
        return [
          {
            checkId: 'found',
            title: 't',
            severity: 'low',
            owasp: 'API8:2023',
            summary: 's',
            evidence: [{ note: 'n', exchanges: [r.exchange] }],
          },
        ]
      },
    }
    const report = await runScan({
      spec: `${target.url}/openapi.json`,
      target: target.url,
      allChecks: [boom, skip, found],
    })
    assert.deepEqual(report.skipped, [
      { checkId: 'boom', reason: 'error: kaput' },
      { checkId: 'skip', reason: 'nothing to do' },
    ])
    assert.equal(report.findings.length, 1)
    assert.deepEqual(
      report.checks.map((c) => c.id),
      ['boom', 'skip', 'found'],
    )
    assert.ok(!('run' in (report.checks[0] as object)))
    assert.equal(report.stats.requests, 2) // the reachability probe, then the check's
    await assert.rejects(
      runScan({ spec: specFile, target: target.url, checks: ['nope'], allChecks: [boom] }),
      ScanSetupError,
    )
    await assert.rejects(runScan({ spec: specFile, target: 'file:///etc/passwd' }), /http or https/)
    await assert.rejects(runScan({ spec: specFile, target: 'http://u:p@127.0.0.1/' }), /credentials/)
    await assert.rejects(
      runScan({ spec: `${target.url}/big`, target: target.url, maxSpecBytes: 1000 }),
      /larger than 1000 bytes/,
    )
  })
})
