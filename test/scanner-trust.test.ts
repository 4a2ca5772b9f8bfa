/**
 * Results a CI pipeline can trust: a dead target or one answering mostly errors gives exit 3 and
 * no finding; a timeout is never evidence; a 429 is waited out; a hung target is a finding only
 * with a timing proof, and the scan backs off; two scans give the same fingerprints; several
 * report formats in one run; a baseline; extra headers; excluded operations are never called.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { Agent } from 'undici'
import { loadOpenApi } from '../src/openapi/index.js'
import { runScan, ScanRun } from '../src/scanner/engine.js'
import { seedObjects } from '../src/scanner/seed.js'
import { parseAuthConfig } from '../src/scanner/identities.js'
import type { ScanReport } from '../src/scanner/types.js'
import { startVulnApi, type VulnApi, vulnAuthYaml } from './fixtures/vuln-api.js'
import { parseXml } from './helpers/xml-check.js'

const bin = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url))
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, 'scan', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1' },
    })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => {
      stdout += d
    })
    p.stderr.on('data', (d) => {
      stderr += d
    })
    p.on('close', (code) => resolve({ code, stdout, stderr }))
  })
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

const SPEC = {
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  paths: {
    '/items': {
      get: {
        operationId: 'listItems',
        parameters: [{ name: 'search', in: 'query', schema: { type: 'string', pattern: '^[a-z]+$' } }],
        responses: { '200': { description: 'ok' } },
      },
    },
    '/items/wipe': { post: { operationId: 'wipeItems', responses: { '200': { description: 'ok' } } } },
    '/slow': { get: { operationId: 'slow', responses: { '200': { description: 'ok' } } } },
  },
}

describe('scan trust', () => {
  let dir: string
  let specFile: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'scan-trust-'))
    specFile = join(dir, 'openapi.json')
    writeFileSync(specFile, JSON.stringify(SPEC))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('a dead target: exit 3, no finding, a handful of requests (and --unsafe says what it may do)', async () => {
    const { server, url } = await listen(() => {})
    await close(server) // nothing listens there now
    const out = join(dir, 'dead.json')
    const r = await cli([
      '--spec',
      specFile,
      '--target',
      url,
      '--format',
      'json',
      '--output',
      out,
      '--unsafe',
    ])
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, /no verdict: the target does not answer/)
    assert.match(r.stderr, /--unsafe: on a test system only/)
    assert.match(r.stderr, /destructive-looking operations it may call: POST \/items\/wipe/)
    const report = JSON.parse(readFileSync(out, 'utf8')) as ScanReport
    assert.deepEqual(report.findings, [])
    assert.ok(report.stats.requests <= 2, `${report.stats.requests} requests`)
    assert.match(report.unreachable ?? '', /ECONNREFUSED/)
  })

  it('a target answering mostly 502: no verdict, no finding', async () => {
    const { server, url } = await listen((_req, res) => res.writeHead(502).end('bad gateway'))
    try {
      const report = await runScan({ spec: specFile, target: url, rate: 500 })
      assert.deepEqual(report.findings, [])
      assert.match(report.unreachable ?? '', /mostly with errors/)
    } finally {
      await close(server)
    }
  })

  it('a timeout is never evidence; a 429 is waited out; an excluded operation is never called; -H is sent and masked', async () => {
    let wipes = 0
    let limited = 0
    let withHeader = 0
    let requests = 0
    const { server, url } = await listen((req, res) => {
      requests++
      if (req.headers['x-tenant'] === 'tenant-secret-42') withHeader++
      const path = (req.url ?? '').split('?')[0]
      if (path === '/slow') return // never answers
      if (path === '/items/wipe') {
        wipes++
        return void res.writeHead(200).end('{}')
      }
      // The first request to /items is limited.
      if (path === '/items' && limited === 0) {
        limited++
        return void res.writeHead(429, { 'retry-after': '1' }).end()
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'Express' }).end('[]')
    })
    try {
      const report = await runScan({
        spec: specFile,
        target: url,
        rate: 500,
        timeoutMs: 400,
        headers: { 'X-Tenant': 'tenant-secret-42' },
        exclude: ['wipeItems'],
        safe: false,
      })
      assert.equal(report.unreachable, undefined)
      assert.equal(wipes, 0, 'the excluded operation was called')
      assert.ok(report.stats.retries && report.stats.retries >= 1, 'the 429 was not retried')
      assert.equal(withHeader, requests, 'every request carries -H')
      assert.ok(!JSON.stringify(report).includes('tenant-secret-42'), 'the -H value is masked')
      for (const f of report.findings) {
        assert.ok(
          f.evidence.every((e) => e.exchanges.every((x) => x.response !== undefined)),
          `${f.checkId}: a finding rests on an exchange without answer`,
        )
        assert.notEqual(f.operation?.path, '/slow')
      }
      assert.ok(
        report.findings.some((f) => f.checkId === 'tech-disclosure'),
        'the scan did run',
      )
      assert.match((report.notes ?? []).join('\n'), /excluded by --include\/--exclude: POST \/items\/wipe/)
    } finally {
      await close(server)
    }
  })

  it('safe mode does not call a destructive-looking operation (wipe) and lists it', async () => {
    let wipes = 0
    const { server, url } = await listen((req, res) => {
      if ((req.url ?? '').startsWith('/items/wipe')) wipes++
      if ((req.url ?? '').startsWith('/slow')) return void res.writeHead(200).end('{}')
      res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
    })
    try {
      const report = await runScan({ spec: specFile, target: url, rate: 500 })
      assert.equal(wipes, 0)
      assert.ok(
        report.blocked?.some((b) => b.operation === 'POST /items/wipe'),
        JSON.stringify(report.blocked),
      )
    } finally {
      await close(server)
    }
  })

  it('a pathological input that hangs the target is a finding with a timing proof; the scan backs off', async () => {
    // The target runs in a worker: its handler blocks the worker's event loop for 3 s on a long
    // search value (as a catastrophic regex would), so the scanner sees a real hang.
    const worker = new Worker(
      `const { createServer } = require('node:http')
       const { parentPort } = require('node:worker_threads')
       const s = createServer((req, res) => {
         const q = new URL(req.url, 'http://x').searchParams.get('search') ?? ''
         if (q.length >= 28) { const until = Date.now() + 3000; while (Date.now() < until) {} }
         res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
       })
       s.listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port))`,
      { eval: true },
    )
    const port = await new Promise<number>((r) => worker.once('message', r))
    try {
      const report = await runScan({
        spec: specFile,
        target: `http://127.0.0.1:${port}`,
        checks: ['redos'],
        timeoutMs: 1000,
        rate: 500,
      })
      assert.equal(report.unreachable, undefined, 'the hang must not end the scan')
      const f = report.findings.find((x) => x.checkId === 'redos')
      assert.ok(f, JSON.stringify(report.notes))
      assert.match(f.summary, /hung the target/)
      const notes = f.evidence.map((e) => e.note).join('\n')
      assert.match(notes, /short control again, after the target recovered/)
    } finally {
      await worker.terminate()
    }
  })
})

describe('scan results for CI', () => {
  let api: VulnApi
  let dir: string
  before(async () => {
    api = await startVulnApi({ fixed: false })
    dir = await mkdtemp(join(tmpdir(), 'scan-ci-'))
    writeFileSync(join(dir, 'auth.yaml'), vulnAuthYaml())
  })
  after(async () => {
    await api?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('seed.ids name objects by type, operationId or path template', async () => {
    const auth = parseAuthConfig(
      `${vulnAuthYaml()}seed:\n  create: false\n  ids:\n    alice: { getNote: [1], "/api/v2/orders/{id}": [1] }\n    bob: { notes: [2] }\n`,
    )
    const dispatcher = new Agent()
    const run = new ScanRun(loadOpenApi(api.specPath), new URL(api.url), true, auth, {}, dispatcher)
    try {
      const objects = await seedObjects(run)
      const named = objects.filter((o) => !o.profile).map((o) => `${o.owner} ${o.type} ${o.id} ${o.path}`)
      for (const want of [
        'alice notes 1 /api/v2/notes/1',
        'alice orders 1 /api/v2/orders/1',
        'bob notes 2 /api/v2/notes/2',
      ])
        assert.ok(named.includes(want), `${want} not in ${named.join('; ')}`)
      assert.ok(!objects.some((o) => o.createdByScanner), 'create: false')
      assert.ok(
        objects.some((o) => o.owner === 'alice' && o.profile && o.id === '1'),
        'the profile from /users/me',
      )
    } finally {
      await run.close()
      await dispatcher.close()
    }
  })

  it('two scans of the same target (every check) give identical fingerprints (ids change between them)', async () => {
    const scan = () =>
      runScan({
        spec: api.specPath,
        target: api.url,
        auth: parseAuthConfig(vulnAuthYaml()),
        rate: 300,
      })
    const a = await scan()
    const b = await scan()
    const fp = (r: ScanReport) => r.findings.map((f) => f.fingerprint ?? '').sort()
    assert.ok(a.findings.length >= 25, `${a.findings.length} findings`)
    assert.ok(fp(a).every((x) => /^[0-9a-f]{32}$/.test(x)))
    assert.deepEqual(fp(a), fp(b))
    assert.equal(new Set(fp(a)).size, a.findings.length, 'fingerprints are unique within a scan')
  })

  it('several formats in one run, a SARIF region per operation, a JUnit case per finding, a baseline', async () => {
    const out = join(dir, 'reports')
    const base = [
      '--spec',
      api.specPath,
      '--target',
      api.url,
      '--auth',
      join(dir, 'auth.yaml'),
      '--rate',
      '300',
      '--checks',
      'bola,bfla',
    ]
    const r = await cli([...base, '--format', 'sarif,junit,html,json', '--output-dir', out])
    assert.equal(r.code, 1, r.stderr)
    const report = JSON.parse(readFileSync(join(out, 'portcullis-scan.json'), 'utf8')) as ScanReport
    const sarif = JSON.parse(readFileSync(join(out, 'portcullis-scan.sarif'), 'utf8')) as {
      runs: {
        results: {
          locations: { physicalLocation: { region?: { startLine: number } } }[]
          partialFingerprints: Record<string, string>
        }[]
      }[]
    }
    const results = sarif.runs[0]?.results ?? []
    assert.equal(results.length, report.findings.length)
    assert.ok(
      results.every((x) => (x.locations[0]?.physicalLocation.region?.startLine ?? 0) > 1),
      'a region per result',
    )
    assert.deepEqual(
      results.map((x) => x.partialFingerprints['portcullisFinding/v2']).sort(),
      report.findings.map((f) => f.fingerprint).sort(),
    )
    const junit = parseXml(readFileSync(join(out, 'portcullis-scan.junit.xml'), 'utf8'))
    const failures = junit.children
      .flatMap((s) => s.children)
      .filter((c) => c.children.some((x) => x.name === 'failure'))
    assert.equal(failures.length, report.findings.length, 'one testcase per finding')
    assert.match(readFileSync(join(out, 'portcullis-scan.html'), 'utf8'), /^<!DOCTYPE html>/i)
    // The same scan against the JSON report as a baseline: nothing new, exit 0.
    const again = await cli([...base, '--format', 'json', '--baseline', join(out, 'portcullis-scan.json')])
    assert.equal(again.code, 0, again.stderr)
    const second = JSON.parse(again.stdout) as ScanReport
    assert.deepEqual(second.baseline && { ...second.baseline, file: '' }, {
      file: '',
      unchanged: report.findings.length,
      new: 0,
    })
    assert.ok(second.findings.every((f) => f.baselineState === 'unchanged'))
    const bad = await cli([...base, '--format', 'sarif,junit'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /several formats need --output-dir/)
  })
})
