import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { testDeps } from '../policies/testing/context.js'
import { compileApi } from '../policies/openapi-validation/compiled.js'
import { openApiValidation } from '../policies/openapi-validation/policy.js'
import { OpenApiValidationConfig } from '../policies/openapi-validation/schema.js'
import { SpecError } from './errors.js'
import { loadOpenApi } from './load.js'
import { fetchRemoteRefs } from './remote.js'

/** A document server on 127.0.0.1 that counts hits per path; some paths misbehave on purpose. */
const docs: Record<string, string> = {
  '/common.yaml': `components:
  parameters:
    Limit: { name: limit, in: query, schema: { $ref: 'schemas/types.yaml#/Small' } }
`,
  '/schemas/types.yaml': `Small: { type: integer, maximum: 10 }
User:
  type: object
  required: [name]
  properties:
    name: { type: string }
    address: { $ref: './address.yaml#/Address' }
`,
  '/schemas/address.yaml': `Address: { type: object, properties: { city: { type: string } } }\n`,
  '/proto.yaml': `X: { "__proto__": { a: 1 } }\n`,
  '/bomb.yaml': `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
  '/escape.yaml': `X: { $ref: '/etc/passwd#/root' }\n`,
}
const hits = new Map<string, number>()
let server: http.Server
let port = 0
let base = ''
before(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (path === '/redirect') return void res.writeHead(302, { location: '/common.yaml' }).end()
    if (path === '/redirect-off')
      return void res.writeHead(302, { location: `http://localhost:${port}/common.yaml` }).end()
    if (path === '/loop') return void res.writeHead(302, { location: '/loop' }).end()
    if (path === '/big') return void res.end(`X: "${'a'.repeat(5000)}"\n`)
    if (path === '/big-chunked') {
      res.writeHead(200, { 'content-type': 'application/yaml' })
      for (let i = 0; i < 10; i++) res.write(`# ${'a'.repeat(1000)}\n`)
      return void res.end('X: 1\n')
    }
    if (path === '/slow') return // never answers
    if (path === '/latin1') return void res.end(Buffer.from([0x58, 0x3a, 0x20, 0xff, 0x0a]))
    if (path === '/error') return void res.writeHead(500).end()
    const body = docs[path]
    if (body === undefined) return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/yaml' }).end(body)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
})
after(() => {
  server.closeAllConnections()
  server.close()
})

function spec(refs: { param?: string; body?: string }): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-remote-'))
  writeFileSync(
    join(d, 'api.yaml'),
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /users:
    post:
      operationId: createUser
      ${refs.param ? `parameters: [{ $ref: '${refs.param}' }]` : ''}
      requestBody:
        content:
          application/json:
            schema: { $ref: '${refs.body ?? '#/components/schemas/Local'}' }
      responses: { '200': { description: ok } }
components:
  schemas:
    Local: { type: object }
`,
  )
  return join(d, 'api.yaml')
}

async function fetchError(file: string, opts: Parameters<typeof fetchRemoteRefs>[1]): Promise<string> {
  try {
    await fetchRemoteRefs(file, opts)
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map((p) => `${p.file}: ${p.message}`).join('\n')
    throw err
  }
  return 'fetched'
}

test('remote $refs from an allowed host are fetched once per load, relative refs resolve against their URL', async () => {
  hits.clear()
  const file = spec({
    param: `${base}/common.yaml#/components/parameters/Limit`,
    body: `${base}/schemas/types.yaml#/User`,
  })
  const allow = [`127.0.0.1:${port}`]
  const remote = await fetchRemoteRefs(file, { allowRemoteHosts: allow })
  assert.deepEqual([...remote.keys()].sort(), [
    `${base}/common.yaml`,
    `${base}/schemas/address.yaml`,
    `${base}/schemas/types.yaml`,
  ])
  assert.deepEqual([...hits.values()], [1, 1, 1])
  const api = compileApi(file, { allowRemoteHosts: allow, remote })
  const op = api.byId.get('createUser')
  const body = op?.body?.media[0]?.validate
  assert.ok(body)
  assert.equal(body({ name: 'a', address: { city: 'b' } }), true)
  assert.equal(body({ name: 'a', address: { city: 1 } }), false)
  assert.equal(body({ name: 'a', role: 'admin' }), false, 'closed like local schemas')
  const limit = op?.params.find((p) => p.param.name === 'limit')?.validate
  assert.equal(limit?.(10), true)
  assert.equal(limit?.(11), false)
  // without the fetch, a load says what is missing; without the host, it is not allowed
  assert.match(
    (() => {
      try {
        loadOpenApi(file, { allowRemoteHosts: allow })
        return ''
      } catch (err) {
        return (err as SpecError).message
      }
    })(),
    /was not fetched/,
  )
  assert.match(await fetchError(file, { allowRemoteHosts: [`127.0.0.1:${port + 1}`] }), /^fetched$/)
  assert.throws(
    () => loadOpenApi(file, { allowRemoteHosts: ['127.0.0.1'] }),
    /not allowed \(not in allowRemoteHosts\)/,
  )
  // a spec without remote refs fetches nothing
  assert.equal((await fetchRemoteRefs(spec({}), { allowRemoteHosts: allow })).size, 0)
})

test('remote fetching refuses: other hosts, plain http off loopback, credentials, redirects off the list, size, time, bad status', async () => {
  const allow = [`127.0.0.1:${port}`]
  const err = (ref: string, opts: Parameters<typeof fetchRemoteRefs>[1] = { allowRemoteHosts: allow }) =>
    fetchError(spec({ body: ref }), opts)
  // not allowed hosts are left to the load, which refuses them
  assert.throws(
    () =>
      compileApi(spec({ body: `http://localhost:${port}/schemas/types.yaml#/User` }), {
        allowRemoteHosts: allow,
      }),
    /host "localhost:\d+" is not allowed/,
  )
  assert.throws(
    () =>
      compileApi(spec({ body: 'http://specs.example/x.yaml#/X' }), { allowRemoteHosts: ['specs.example'] }),
    /must use https/,
  )
  assert.throws(
    () =>
      compileApi(spec({ body: `http://u:secret@127.0.0.1:${port}/x.yaml#/X` }), { allowRemoteHosts: allow }),
    (e: Error) => /credentials/.test(e.message) && !e.message.includes('secret'),
  )
  assert.equal(await err(`${base}/redirect#/components/parameters/Limit`), 'fetched')
  assert.match(
    await err(`${base}/redirect-off#/X`),
    /redirected: remote \$ref to host "localhost:\d+" is not allowed/,
  )
  assert.match(await err(`${base}/loop#/X`), /more than 5 redirects/)
  assert.match(
    await err(`${base}/big#/X`, { allowRemoteHosts: allow, limits: { maxFileBytes: 1000 } }),
    /over the limit of 1000 bytes/,
  )
  assert.match(
    await err(`${base}/big-chunked#/X`, { allowRemoteHosts: allow, limits: { maxFileBytes: 2000 } }),
    /over the limit of 2000 bytes/,
  )
  const t0 = Date.now()
  assert.match(await err(`${base}/slow#/X`, { allowRemoteHosts: allow, timeoutMs: 300 }), /timed out/)
  assert.ok(Date.now() - t0 < 5000)
  assert.match(await err(`${base}/error#/X`), /HTTP 500/)
  assert.match(await err(`${base}/latin1#/X`), /not UTF-8/)
  assert.match(await err(`${base}/nope.yaml#/X`), /HTTP 404/)
})

test('remote documents get the same hostile-content checks as local files, and never reach local files', async () => {
  const allow = [`127.0.0.1:${port}`]
  const load = async (ref: string) => {
    const file = spec({ body: ref })
    const remote = await fetchRemoteRefs(file, { allowRemoteHosts: allow }).catch((e: SpecError) => e)
    if (remote instanceof SpecError) return remote.message
    try {
      loadOpenApi(file, { allowRemoteHosts: allow, remote })
      compileApi(file, { allowRemoteHosts: allow, remote })
      return 'loaded'
    } catch (e) {
      return (e as Error).message
    }
  }
  assert.match(await load(`${base}/proto.yaml#/X`), /"__proto__" is not allowed/)
  assert.match(await load(`${base}/bomb.yaml#/d`), /alias|not valid YAML/i)
  // `/etc/passwd` in a remote document is a URL on that host (404 there), not a local file
  assert.match(
    await load(`${base}/escape.yaml#/X`),
    /127\.0\.0\.1:\d+\/etc\/passwd#?: cannot fetch the remote document \(HTTP 404\)/,
  )
})

test('the policy fetches in prepare (each load anew) and compiles with what that load fetched', async () => {
  hits.clear()
  const file = spec({ body: `${base}/schemas/types.yaml#/User` })
  const cfg = Value.Default(OpenApiValidationConfig, {
    spec: file,
    allowRemoteHosts: [`127.0.0.1:${port}`],
  }) as never
  const deps = testDeps()
  await openApiValidation.prepare?.(cfg, { logger: deps.logger, baseDir: deps.baseDir, routeName: 'r' })
  assert.ok(openApiValidation.create(cfg, deps))
  await openApiValidation.prepare?.(cfg, { logger: deps.logger, baseDir: deps.baseDir, routeName: 'r' })
  assert.equal(hits.get('/schemas/types.yaml'), 2)
  const other = spec({ body: `${base}/nope.yaml#/X` })
  const bad = Value.Default(OpenApiValidationConfig, {
    spec: other,
    allowRemoteHosts: [`127.0.0.1:${port}`],
  }) as never
  await assert.rejects(
    openApiValidation.prepare?.(bad, {
      logger: deps.logger,
      baseDir: deps.baseDir,
      routeName: 'r',
    }) as Promise<void>,
    /invalid config: route r, openapi-validation:\n.*HTTP 404/,
  )
  assert.throws(() => openApiValidation.create(bad, deps), /was not fetched/)
})
