import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { findCredential } from './credentials.js'
import { lintFile } from './engine.js'
import { locatePointers } from './positions.js'

const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-engine-'))
let n = 0
function write(text: string, ext = 'yaml'): string {
  const f = join(dir, `s${++n}.${ext}`)
  writeFileSync(f, text)
  return f
}

test('hostile specs: odd shapes, cycles and deep nesting never crash a rule', () => {
  const odd = {
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    servers: 'nope',
    security: 'all',
    webhooks: { a: 7, b: { post: 'x' } },
    paths: {
      '/a/{id}': {
        'x-portcullis-lint-ignore': 'all-of-them',
        get: {
          security: [{ nope: ['x'] }, 'str'],
          callbacks: { c: 5, d: { '{$request.body#/u}': { post: 7 } } },
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { $ref: '#/components/schemas/Loop' } },
          ],
          responses: {
            '200': {
              description: 'x',
              content: { 'application/json': { schema: { properties: [], items: 'x' } } },
            },
          },
        },
        post: {
          parameters: [{ name: 'id', in: 'path', required: true }],
          requestBody: {
            content: {
              'application/json': {
                schema: { $ref: '#/components/schemas/Loop' },
                examples: { a: 'not an object' },
              },
              'text/plain': {},
            },
          },
          responses: { default: { description: 'd' } },
        },
      },
    },
    components: {
      securitySchemes: { weird: 'x', o: { type: 'oauth2', flows: 'none' } },
      schemas: {
        Loop: {
          type: 'object',
          properties: {
            self: { $ref: '#/components/schemas/Loop' },
            list: { type: 'array', items: { $ref: '#/components/schemas/Loop' } },
          },
          allOf: [{ $ref: '#/components/schemas/Loop' }],
          additionalProperties: { $ref: '#/components/schemas/Loop' },
          pattern: `^(${'a+'.repeat(2000)})+$`,
        },
      },
    },
  }
  const r = lintFile(write(JSON.stringify(odd), 'json'))
  assert.deepEqual(
    r.warnings.filter((w) => w.startsWith('rule ')),
    [],
  )
  assert.ok(r.findings.length > 0)
  // Deeply nested request schema: walked without a stack overflow.
  let deep: Record<string, unknown> = { type: 'string' }
  for (let i = 0; i < 90; i++) deep = { type: 'object', properties: { n: deep } }
  const r2 = lintFile(
    write(
      JSON.stringify({
        openapi: '3.0.3',
        info: { title: 't', version: '1' },
        paths: {
          '/x': {
            post: {
              requestBody: { content: { 'application/json': { schema: deep } } },
              responses: { '200': { description: 'ok' } },
            },
          },
        },
      }),
      'json',
    ),
  )
  assert.ok(r2.findings.some((f) => f.rule === 'string-unbounded'))
})

test('a schema reached from many operations is walked once (bounded work)', () => {
  const paths: Record<string, unknown> = {}
  for (let i = 0; i < 300; i++)
    paths[`/r${i}`] = {
      post: {
        requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Big' } } } },
        responses: { '200': { description: 'ok' } },
      },
    }
  const props: Record<string, unknown> = {}
  for (let i = 0; i < 200; i++) props[`p${i}`] = { type: 'string' }
  const r = lintFile(
    write(
      JSON.stringify({
        openapi: '3.1.0',
        info: { title: 't', version: '1' },
        paths,
        components: { schemas: { Big: { type: 'object', properties: props } } },
      }),
      'json',
    ),
  )
  const strings = r.findings.find((f) => f.rule === 'string-unbounded')
  assert.equal(strings?.locations.length, 200, 'each property once, not once per operation')
})

test('positions: JSON (escaped keys, arrays) and YAML (anchors, flow maps), unknown pointers fall back', () => {
  const json = '{\n  "a": {\n    "b~c/d": [1, {"e\\"f": true}],\n    "g": "x"\n  }\n}\n'
  const f = write(json, 'json')
  const p = locatePointers(f, ['/a/b~0c~1d/1/e"f', '/a/g', '/a/nope/deeper', ''])
  assert.deepEqual(p.get('/a/b~0c~1d/1/e"f'), { line: 3, column: 19 })
  assert.deepEqual(p.get('/a/g'), { line: 4, column: 5 })
  assert.deepEqual(p.get('/a/nope/deeper'), { line: 2, column: 3 })
  const yaml = 'base: &b\n  x: 1\nother:\n  list:\n    - { k: v }\n    - name: n\n'
  const y = write(yaml)
  const q = locatePointers(y, ['/other/list/1/name', '/other/list/0/k', '/base/x'])
  assert.deepEqual(q.get('/other/list/1/name'), { line: 6, column: 7 })
  assert.deepEqual(q.get('/other/list/0/k'), { line: 5, column: 9 })
  assert.deepEqual(q.get('/base/x'), { line: 2, column: 3 })
  // Not JSON after all (truncated): still no crash.
  const broken = write('{"a": {"b": "unterminated', 'json')
  assert.ok(locatePointers(broken, ['/a/b']).get('/a/b'))
})

test('credentials: the secrets engine detectors, then secret-looking values under secret keys', () => {
  assert.ok(
    findCredential(
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdefghijklmnopqrstuvwxyzABCDEFGH\n-----END RSA PRIVATE KEY-----',
    ),
  )
  assert.ok(findCredential('3q2-7wFvR8nYb0xQm4pLk1sTz9uVaC6d', 'token'))
  assert.equal(findCredential('Summer2024!', 'password')?.kind !== undefined, true)
  assert.equal(findCredential('alice-password-1', 'password')?.kind, 'password')
  assert.equal(findCredential('<password>', 'password'), undefined)
  assert.equal(findCredential('changeme', 'password'), undefined)
  assert.equal(findCredential('oa_citations', 'apiKey'), undefined)
  assert.equal(findCredential('Summer2024!', 'displayName'), undefined)
  assert.equal(findCredential('x'.repeat(20_000)), undefined)
})
