/**
 * The parts of SCAN2's checks the fixture API does not reach: RS256 → HS256 key confusion with the
 * key from /.well-known/jwks.json, a JWT whose signature is not verified at all, and the timing
 * probe of injection-signatures (a real sleep, confirmed by a repeat). A small node:http API per
 * case (127.0.0.1, port 0) with a vulnerable and a correct mode.
 */
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { runScan } from '../src/scanner/engine.js'
import { parseAuthConfig } from '../src/scanner/identities.js'

type Mode = 'key-confusion' | 'no-verify' | 'correct'

const dir = mkdtempSync(join(tmpdir(), 'pcl-scan2-'))
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const PEM = publicKey.export({ type: 'spki', format: 'pem' }) as string
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

function rs256(payload: object, key: KeyObject): string {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(payload)}`
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`
}

const SPEC = {
  openapi: '3.1.0',
  info: { title: 'scan2 mini API', version: '1.0.0' },
  security: [{ bearer: [] }],
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  paths: {
    '/me': { get: { operationId: 'me', responses: { '200': { description: 'me' } } } },
    '/search': {
      get: {
        operationId: 'search',
        parameters: [{ name: 'q', in: 'query', schema: { type: 'string', example: 'shoes' } }],
        responses: { '200': { description: 'results' } },
      },
    },
  },
}
const specPath = join(dir, 'openapi.json')
writeFileSync(specPath, JSON.stringify(SPEC))
const TOKEN = rs256({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }, privateKey)

function accepts(token: string, mode: Mode): boolean {
  const [h, p, s] = token.split('.')
  if (h === undefined || p === undefined || s === undefined) return false
  let header: { alg?: string }
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString())
  } catch {
    return false
  }
  if (mode === 'no-verify') return header.alg === 'RS256'
  if (mode === 'key-confusion' && header.alg === 'HS256') {
    // The classic bug: the verification key (a PEM string) used as the HMAC secret.
    return createHmac('sha256', PEM).update(`${h}.${p}`).digest('base64url') === s
  }
  if (header.alg !== 'RS256') return false
  return verify('sha256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'))
}

async function startApi(mode: Mode, sleepOnInjection: boolean): Promise<{ url: string; server: Server }> {
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (url.pathname === '/.well-known/jwks.json') return json(200, { keys: [jwk] })
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (!token || !accepts(token, mode)) return json(401, { error: 'unauthorized' })
    if (url.pathname === '/me') return json(200, { sub: 'alice' })
    if (url.pathname === '/search') {
      const q = url.searchParams.get('q') ?? ''
      // Vulnerable: a MySQL-style SLEEP(n) in the input really sleeps (bounded at 5 s).
      const m = sleepOnInjection ? /SLEEP\((\d)\)/i.exec(q) : null
      const ms = m ? Math.min(Number(m[1]), 5) * 1000 : 0
      setTimeout(() => json(200, []), ms)
      return
    }
    json(404, { error: 'not found' })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const servers: Server[] = []
const auth = () => parseAuthConfig(`identities:\n  alice:\n    roles: [user]\n    bearer: ${TOKEN}\n`)
const scan = async (mode: Mode, checks: string[], sleep = false) => {
  const api = await startApi(mode, sleep)
  servers.push(api.server)
  return runScan({ spec: specPath, target: api.url, auth: auth(), checks, rate: 100 })
}

after(() => {
  for (const s of servers) s.close()
  rmSync(dir, { recursive: true, force: true })
})

test('jwt-weaknesses: RS256 → HS256 key confusion with the published JWKS key is found', async () => {
  const r = await scan('key-confusion', ['jwt-weaknesses'])
  const titles = r.findings.map((f) => f.title)
  assert.deepEqual(titles, ['JWT key confusion (public key used as HMAC secret)'])
  assert.equal(r.findings[0]?.severity, 'critical')
  assert.equal(r.findings[0]?.evidence[1]?.exchanges[0]?.response?.status, 200)
  assert.doesNotMatch(JSON.stringify(r), new RegExp(TOKEN.split('.')[2] as string), 'the token is masked')
})

test('jwt-weaknesses: a server that checks no signature at all gets one finding', async () => {
  const r = await scan('no-verify', ['jwt-weaknesses'])
  assert.deepEqual(
    r.findings.map((f) => f.title),
    ['JWT signature not verified'],
  )
})

test('jwt-weaknesses: a correct RS256 verifier gives nothing', async () => {
  const r = await scan('correct', ['jwt-weaknesses', 'token-in-url'])
  assert.deepEqual(r.findings, [])
  assert.deepEqual(r.skipped, [])
})

test('injection-signatures: a real sleep is found by the timing probe and confirmed; none without', async () => {
  const t0 = performance.now()
  const vulnerable = await scan('correct', ['injection-signatures'], true)
  const seconds = (performance.now() - t0) / 1000
  const f = vulnerable.findings.find((x) => /timing/.test(x.title))
  assert.ok(f, JSON.stringify(vulnerable.findings.map((x) => x.title)))
  assert.equal(f.operation?.path, '/search')
  assert.match(f.summary, /"q"/)
  console.log(`timing probe: ${f.title} in ${seconds.toFixed(1)} s — ${f.summary}`)
  const safe = await scan('correct', ['injection-signatures'], false)
  assert.deepEqual(safe.findings, [])
})
