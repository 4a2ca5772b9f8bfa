import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { SpecError } from './errors.js'
import { DEFAULT_JSON_LIMITS, JsonGuardError, parseJsonGuarded } from './json-guard.js'
import { loadOpenApi, type OpenApiSpec } from './load.js'
import { PathMatcher } from './matcher.js'
import { SchemaCompiler, type SchemaVariant } from './schema.js'

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-oas-'))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true })
    writeFileSync(join(d, name), text)
  }
  return d
}

function problems(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map((p) => `${p.pointer}: ${p.message}`)
    throw err
  }
  assert.fail('expected a SpecError')
}

const head = (v: string) => `openapi: ${v}\ninfo: { title: t, version: '1' }\n`

function bodyValidator(spec: OpenApiSpec, opId: string, variant: SchemaVariant) {
  const op = spec.operations.find((o) => o.id === opId)
  const media = op?.requestBody?.content[0]
  assert.ok(media?.schemaLocation)
  const c = new SchemaCompiler(spec.documents, spec.version)
  const h = c.add(media.schema, media.schemaLocation, variant)
  c.compile()
  return c.get(h).validate
}

test('the demo spec loads: 3.1, every operation with its id, parameters and bodies', () => {
  const spec = loadOpenApi('examples/demo/openapi.yaml')
  assert.equal(spec.version, '3.1')
  assert.equal(spec.operations.length, 14)
  const get = spec.operations.find((o) => o.id === 'getOrder')
  assert.equal(get?.method, 'GET')
  assert.deepEqual(
    get?.parameters.map((p) => [p.name, p.in, p.required, p.style, p.explode]),
    [['id', 'path', true, 'simple', false]],
  )
  const list = spec.operations.find((o) => o.id === 'listAccounts')
  assert.deepEqual(
    list?.parameters.map((p) => [p.name, p.style, p.explode]),
    [['ids', 'form', false]],
  )
  assert.equal(
    spec.operations.find((o) => o.id === 'createOrder')?.requestBody?.content[0]?.type,
    'application/json',
  )
})

test('$refs across files, with a cycle between schemas, compile once and validate', () => {
  const d = dir({
    'api.yaml': `${head('3.1.0')}paths:
  /nodes:
    post:
      operationId: addNode
      parameters: [{ $ref: 'common/params.yaml#/Limit' }]
      requestBody:
        content:
          application/json:
            schema: { $ref: 'schemas.json#/Node' }
      responses: { '201': { description: ok } }
`,
    'common/params.yaml': 'Limit: { name: limit, in: query, schema: { type: integer } }\n',
    'schemas.json': JSON.stringify({
      Node: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/Node' } } },
      },
    }),
  })
  const spec = loadOpenApi(join(d, 'api.yaml'))
  assert.equal(spec.operations[0]?.parameters[0]?.name, 'limit')
  const v = bodyValidator(spec, 'addNode', 'declared')
  assert.equal(v({ name: 'a', children: [{ name: 'b', children: [{ name: 'c' }] }] }), true)
  assert.equal(v({ name: 'a', children: [{ children: [] }] }), false)
  assert.equal(v.errors?.[0]?.instancePath, '/children/0')
  const closed = bodyValidator(spec, 'addNode', 'closed')
  assert.equal(closed({ name: 'a', children: [{ name: 'b', extra: 1 }] }), false)
  assert.equal(closed.errors?.[0]?.keyword, 'unevaluatedProperties')
  assert.equal(closed.errors?.[0]?.instancePath, '/children/0')
})

test('the closed variant keeps allOf composition working and leaves free-form objects open', () => {
  const d = dir({
    'api.yaml': `${head('3.1.0')}paths:
  /p:
    post:
      operationId: p
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                pet: { allOf: [{ $ref: '#/components/schemas/Base' }, { properties: { bark: { type: boolean } } }] }
                meta: { type: object, additionalProperties: true }
      responses: { '200': { description: ok } }
components:
  schemas:
    Base: { type: object, properties: { name: { type: string } } }
`,
  })
  const spec = loadOpenApi(join(d, 'api.yaml'))
  const v = bodyValidator(spec, 'p', 'closed')
  assert.equal(v({ pet: { name: 'rex', bark: true }, meta: { anything: 1 } }), true)
  assert.equal(v({ pet: { name: 'rex', role: 'admin' } }), false)
  assert.equal(v({ pet: {}, other: 1 }), false)
  assert.equal(bodyValidator(spec, 'p', 'declared')({ pet: { role: 'admin' }, other: 1 }), true)
})

test('OAS 3.0 translation: nullable, boolean exclusiveMinimum, example, $ref siblings ignored', () => {
  const d = dir({
    'api.yaml': `${head('3.0.3')}paths:
  /p:
    post:
      operationId: p
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                a: { type: string, nullable: true, example: x }
                b: { type: number, minimum: 0, exclusiveMinimum: true }
                c: { type: string, enum: [x, y], nullable: true }
                d: { $ref: '#/components/schemas/S', description: ignored, type: number }
                e: { type: integer, format: int32 }
      responses: { '200': { description: ok } }
components:
  schemas:
    S: { type: string }
`,
  })
  const spec = loadOpenApi(join(d, 'api.yaml'))
  assert.equal(spec.version, '3.0')
  const v = bodyValidator(spec, 'p', 'declared')
  assert.equal(v({ a: null, b: 0.1, c: null, d: 'str', e: 5 }), true)
  assert.equal(v({ b: 0 }), false)
  assert.equal(v({ d: 5 }), false)
  assert.equal(v({ e: 2 ** 31 }), false)
  assert.equal(v({ c: 'z' }), false)
})

test('clear errors: file, pointer and problem; all of them at once', () => {
  const d = dir({
    'api.yaml': `${head('3.1.0')}paths:
  /a/{id}:
    get:
      responses: { '200': { description: ok } }
  /b:
    get:
      parameters: [{ name: q, in: body }]
      responses: { '200': { description: ok } }
  /c:
    get:
      parameters: [{ $ref: '#/components/parameters/Missing' }]
      responses: { '200': { description: ok } }
`,
  })
  const p = problems(() => loadOpenApi(join(d, 'api.yaml')))
  assert.deepEqual(p, [
    '/paths/~1a~1{id}/get: path template variable "id" has no path parameter',
    '/paths/~1b/get/parameters/0/in: "in" must be path, query, header or cookie',
    '/paths/~1c/get/parameters/0: $ref "#/components/parameters/Missing" points at nothing',
  ])
  assert.match(problems(() => loadOpenApi(join(d, 'nope.yaml')))[0] as string, /cannot read the file/)
  const swagger = dir({ 's.yaml': 'swagger: "2.0"\n', 'old.yaml': 'swagger: "1.2"\n' })
  // A 2.0 document is converted to 3.0 (swagger2.test.ts); without paths it is still refused.
  assert.deepEqual(
    problems(() => loadOpenApi(join(swagger, 's.yaml'))),
    ['/paths: "paths" is required in OAS 3.0'],
  )
  assert.match(problems(() => loadOpenApi(join(swagger, 'old.yaml')))[0] as string, /found "swagger": "1.2"/)
})

test('hostile specs: ref loops, remote and escaping refs, huge files, __proto__, deep nesting, alias bombs', () => {
  const loop = dir({
    'api.yaml': `${head('3.1.0')}paths:
  /a:
    get:
      parameters: [{ $ref: '#/components/parameters/A' }]
      responses: { '200': { description: ok } }
components:
  parameters:
    A: { $ref: '#/components/parameters/B' }
    B: { $ref: '#/components/parameters/A' }
`,
  })
  assert.match(problems(() => loadOpenApi(join(loop, 'api.yaml')))[0] as string, /\$ref cycle/)
  const selfRef = dir({ 'api.yaml': `${head('3.1.0')}paths:\n  /a: { $ref: '#/paths/~1a' }\n` })
  assert.match(problems(() => loadOpenApi(join(selfRef, 'api.yaml')))[0] as string, /\$ref cycle/)

  const remote = (ref: string) =>
    dir({
      'api.yaml': `${head('3.1.0')}paths:\n  /a:\n    get:\n      parameters: [{ $ref: '${ref}' }]\n      responses: { '200': { description: ok } }\n`,
    })
  assert.match(
    problems(() => loadOpenApi(join(remote('https://evil.example/p.yaml'), 'api.yaml')))[0] as string,
    /not allowed/,
  )
  assert.match(
    problems(() =>
      loadOpenApi(join(remote('https://specs.example/p.yaml'), 'api.yaml'), {
        allowRemoteHosts: ['specs.example'],
      }),
    )[0] as string,
    /was not fetched/,
  )
  assert.match(
    problems(() => loadOpenApi(join(remote('file:///etc/passwd'), 'api.yaml')))[0] as string,
    /scheme "file"/,
  )
  assert.match(
    problems(() => loadOpenApi(join(remote('../../../../etc/passwd'), 'api.yaml')))[0] as string,
    /leaves the spec's root|not found/,
  )

  const big = dir({ 'api.yaml': `${head('3.1.0')}x-pad: "${'a'.repeat(2048)}"\npaths: {}\n` })
  assert.match(
    problems(() => loadOpenApi(join(big, 'api.yaml'), { limits: { maxFileBytes: 1024 } }))[0] as string,
    /over the limit of 1024/,
  )

  const proto = dir({
    'api.yaml': `${head('3.1.0')}paths: {}\ncomponents:\n  schemas:\n    __proto__: { type: string }\n`,
  })
  assert.deepEqual(
    problems(() => loadOpenApi(join(proto, 'api.yaml'))),
    ['/components/schemas/__proto__: the key "__proto__" is not allowed'],
  )
  assert.equal(({} as Record<string, unknown>).type, undefined)

  const deep = dir({
    'api.json': `{"openapi":"3.1.0","paths":{},"x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
  })
  assert.match(problems(() => loadOpenApi(join(deep, 'api.json')))[0] as string, /nested (deeper|too deeply)/)
  const veryDeep = dir({
    'api.json': `{"openapi":"3.1.0","paths":{},"x":${'['.repeat(200000)}${']'.repeat(200000)}}`,
  })
  assert.match(
    problems(() => loadOpenApi(join(veryDeep, 'api.json')))[0] as string,
    /nested (deeper|too deeply)/,
  )

  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
  for (let i = 1; i < 12; i++)
    lines.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    )
  const bomb = dir({ 'api.yaml': `${head('3.1.0')}paths: {}\n${lines.join('\n')}\n` })
  assert.match(
    problems(() => loadOpenApi(join(bomb, 'api.yaml')))[0] as string,
    /alias|values|not valid YAML/i,
  )

  const dup = dir({ 'api.yaml': `${head('3.1.0')}paths: {}\npaths: {}\n` })
  assert.match(problems(() => loadOpenApi(join(dup, 'api.yaml')))[0] as string, /unique/)
})

test('matcher: literal beats mixed beats variable, with backtracking; 405 lists methods; HEAD uses GET', () => {
  const m = new PathMatcher<string>()
  m.add('/users/{id}', 'GET', 'getUser')
  m.add('/users/me', 'GET', 'getMe')
  m.add('/users/{id}/posts', 'GET', 'posts')
  m.add('/users/me/settings', 'PUT', 'settings')
  m.add('/files/{name}.json', 'GET', 'jsonFile')
  m.add('/files/{name}', 'GET', 'file')
  m.add('/r/{a}-{b}', 'GET', 'range')
  const found = (path: string, method = 'GET') => {
    const r = m.match(path, method)
    return r.kind === 'found' ? [r.match.value, r.match.params] : r.kind
  }
  assert.deepEqual(found('/users/me'), ['getMe', {}])
  assert.deepEqual(found('/users/42'), ['getUser', { id: '42' }])
  assert.deepEqual(found('/users/me/posts'), ['posts', { id: 'me' }])
  assert.deepEqual(found('/users/a%20b'), ['getUser', { id: 'a b' }])
  assert.deepEqual(found('/files/x.json'), ['jsonFile', { name: 'x' }])
  assert.deepEqual(found('/files/x.xml'), ['file', { name: 'x.xml' }])
  assert.deepEqual(found('/r/1-9'), ['range', { a: '1', b: '9' }])
  assert.deepEqual(found('/users/me', 'HEAD'), ['getMe', {}])
  assert.equal(found('/users/'), 'none')
  assert.equal(found('/users'), 'none')
  assert.equal(found('/users/42/posts/1'), 'none')
  assert.equal(found('/users/%E0%A4%A'), 'none')
  assert.deepEqual(m.match('/users/me/settings', 'GET'), {
    kind: 'method',
    template: '/users/me/settings',
    allowed: ['PUT'],
  })
  assert.throws(() => m.add('/users/{x}', 'GET', 'again'), /declared twice/)
})

test('guarded JSON: valid documents parse like JSON.parse', () => {
  for (const t of [
    '{}',
    '[]',
    '0',
    '-1.5e3',
    '"a\\u00e9\\n"',
    'true',
    'null',
    ' {"a":[1,{"b":null}],"c":"\\"x\\""} ',
    '[[],[[]],{}]',
  ]) {
    assert.deepEqual(parseJsonGuarded(t), JSON.parse(t), t)
  }
})

test('guarded JSON: hostile documents are refused (fuzzed)', () => {
  const refused = (t: string, re: RegExp, limits = DEFAULT_JSON_LIMITS) =>
    assert.throws(
      () => parseJsonGuarded(t, limits),
      (e: unknown) => e instanceof JsonGuardError && re.test(e.message),
      t.slice(0, 40),
    )
  refused('{"a":1,"a":2}', /duplicate key/)
  refused('{"__proto__":{"admin":true}}', /forbidden key/)
  refused('{"a":{"constructor":{"prototype":{}}}}', /forbidden key/)
  refused('{"\\u005f_proto__":1}', /forbidden key/)
  refused(`${'['.repeat(65)}${']'.repeat(65)}`, /nested deeper than 64/)
  refused(`${'['.repeat(1_000_000)}`, /nested deeper/)
  refused(`[${Array(10001).fill(1).join(',')}]`, /array longer/)
  refused(`{${Array.from({ length: 1001 }, (_, i) => `"k${i}":1`).join(',')}}`, /more than 1000 keys/)
  refused(`"${'a'.repeat(101)}"`, /string longer/, { ...DEFAULT_JSON_LIMITS, maxStringLength: 100 })
  refused(`"${'\\n'.repeat(101)}"`, /string longer/, { ...DEFAULT_JSON_LIMITS, maxStringLength: 100 })
  refused('"a\\u0000b"', /NUL/)
  refused('"a\u0000b"', /NUL/)
  refused('\ufeff{}', /byte order mark/)
  refused('1e400', /out of range/)
  for (const bad of [
    '',
    '{',
    '{"a"}',
    '{"a":}',
    '[1,]',
    '{,}',
    '01',
    '1.',
    '.5',
    '+1',
    'NaN',
    'tru',
    '"\\x"',
    '{"a":1}x',
    "{'a':1}",
    '[1 2]',
    '"\t"',
  ]) {
    refused(bad, /./)
  }
  // Random mutations of a valid document: never a crash other than JsonGuardError, and whatever
  // parses must equal JSON.parse's reading.
  const base = '{"name":"a\\u00e9","list":[1,2.5,-3e2,true,false,null,{"x":"y"}],"n":{"m":[]}}'
  let seed = 42
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % k
  }
  const alphabet = '{}[]",:\\u0123456789abcdeftrnl-+.eE _\u0000'
  let parsed = 0
  for (let r = 0; r < 5000; r++) {
    const chars = [...base]
    for (let k = 0; k < 1 + rnd(3); k++) chars[rnd(chars.length)] = alphabet[rnd(alphabet.length)] as string
    const t = chars.join('')
    let expected: unknown
    let ok = true
    try {
      expected = JSON.parse(t)
    } catch {
      ok = false
    }
    try {
      const v = parseJsonGuarded(t)
      parsed++
      assert.ok(ok, `accepted what JSON.parse refuses: ${t}`)
      assert.deepEqual(v, expected)
    } catch (err) {
      if (!(err instanceof JsonGuardError)) throw err
    }
  }
  assert.ok(parsed > 0)
})

test('spec patterns run on the linear-time engine; one it cannot run is a load-time error with its pointer', () => {
  const spec = (pattern: string) =>
    loadOpenApi(
      join(
        dir({
          'api.yaml': `${head('3.1.0')}paths:
  /p:
    post:
      operationId: p
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: { name: { type: string, pattern: '${pattern}' } }
      responses: { '200': { description: ok } }
`,
        }),
        'api.yaml',
      ),
    )
  const validate = bodyValidator(spec('^(a+)+$'), 'p', 'declared')
  assert.equal(validate({ name: 'aaaa' }), true)
  const t0 = performance.now()
  // Exponential for a backtracking engine (this input would not finish); linear here.
  assert.equal(validate({ name: `${'a'.repeat(50_000)}!` }), false)
  assert.ok(performance.now() - t0 < 5000)
  const refused = problems(() => bodyValidator(spec('^(?=admin)'), 'p', 'declared'))
  assert.equal(refused.length, 1)
  assert.match(
    refused[0] as string,
    /schema does not compile: pattern not supported by the linear-time engine/,
  )
})

test('matcher: several variables in one segment match in linear time', () => {
  const m = new PathMatcher<string>()
  m.add('/files/{a}.{b}.{c}.json', 'GET', 'three')
  const found = m.match(`/files/${'a.'.repeat(3000)}x.json`, 'GET')
  assert.equal(found.kind, 'found')
  const miss = m.match(`/files/${'a.'.repeat(3000)}x`, 'GET')
  assert.notEqual(miss.kind, 'found')
})
