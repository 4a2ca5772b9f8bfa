/**
 * Unit tests of the parsers and matchers behind SCAN2's checks, with hostile inputs: JWT parsing
 * and offline cracking, error signatures (and their running time on adversarial bodies), secret
 * masking of excerpts, templates, loopback hosts. The checks themselves run against the fixture
 * API in test/scanner-checks2.test.ts.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { crackHmac, hmacSign, parseJwt, WEAK_SECRETS } from './jwt-weaknesses.js'
import { isLoopbackHost, maskSecrets, templateRegex } from './probe.js'
import {
  COMMAND_OUTPUT,
  FILE_CONTENTS,
  matchSignature,
  NOSQL_ERRORS,
  SQL_ERRORS,
  STACK_TRACES,
} from './signatures.js'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

test('parseJwt: reads header and payload; refuses what is not a JWT', () => {
  const t = hmacSign('HS256', 'k', { alg: 'HS256', typ: 'JWT' }, { sub: '1' })
  const jwt = parseJwt(t)
  assert.equal(jwt?.header.alg, 'HS256')
  assert.equal(jwt?.payload.sub, '1')
  for (const bad of [
    '',
    'abc',
    'a.b',
    'a.b.c.d',
    `${b64('x')}.${b64({})}.`,
    `${b64([1])}.${b64({})}.`,
    `${b64({ alg: 1 })}.${b64({})}.`,
    `${b64({ alg: 'HS256' })}.${b64(null)}.`,
    `${b64({ alg: 'HS256' })}.%%%.`,
    `${b64({ alg: 'HS256' })}.${'A'.repeat(20_000)}.`,
    '..',
  ]) {
    assert.equal(parseJwt(bad), undefined, bad.slice(0, 40))
  }
  // __proto__ in a header is just data.
  const proto = parseJwt(
    `${Buffer.from('{"alg":"none","__proto__":{"x":1}}').toString('base64url')}.${b64({})}.`,
  )
  assert.equal(({} as Record<string, unknown>).x, undefined)
  assert.equal(proto?.header.alg, 'none')
})

test('crackHmac: finds a wordlist secret for HS256/384/512, nothing for a strong one or another alg', () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    const t = hmacSign(alg, 'changeme', { alg, typ: 'JWT' }, { sub: '42' })
    assert.equal(crackHmac(parseJwt(t) as NonNullable<ReturnType<typeof parseJwt>>), 'changeme', alg)
  }
  const strong = hmacSign('HS256', 'x'.repeat(20) + Math.random(), { alg: 'HS256' }, { sub: '1' })
  assert.equal(crackHmac(parseJwt(strong) as NonNullable<ReturnType<typeof parseJwt>>), undefined)
  const rs = `${b64({ alg: 'RS256' })}.${b64({ sub: '1' })}.${createHmac('sha256', 'secret').update('x').digest('base64url')}`
  assert.equal(crackHmac(parseJwt(rs) as NonNullable<ReturnType<typeof parseJwt>>), undefined)
  // A truncated signature never matches (lengths differ, no throw).
  const cut = hmacSign('HS256', 'secret', { alg: 'HS256' }, { sub: '1' }).slice(0, -5)
  assert.equal(crackHmac(parseJwt(cut) as NonNullable<ReturnType<typeof parseJwt>>), undefined)
  assert.ok(WEAK_SECRETS.length >= 50 && WEAK_SECRETS.includes('secret'))
})

test('signatures: real error texts match their kind', () => {
  const node =
    'TypeError: x is undefined\n    at readBody (file:///srv/app/dist/api.js:120:13)\n    at async handle (/srv/app/x.js:1:2)'
  assert.equal(matchSignature(node, STACK_TRACES)?.label, 'Node.js stack trace')
  const inJson = JSON.stringify({
    error: 'SyntaxError',
    stack: 'SyntaxError: bad\n    at JSON.parse (<anonymous>)\n    at f (/a/b.js:1:2)',
  })
  assert.equal(matchSignature(inJson, STACK_TRACES)?.kind, 'stack-trace', 'escaped newlines in a JSON string')
  assert.equal(
    matchSignature('Traceback (most recent call last):\n  File "x.py"', STACK_TRACES)?.label,
    'Python traceback',
  )
  assert.equal(
    matchSignature('\n\tat com.acme.Api.get(Api.java:42)', STACK_TRACES)?.label,
    'Java stack trace',
  )
  assert.equal(matchSignature('SQLITE_ERROR: near "\'": syntax error', SQL_ERRORS)?.label, 'SQLite error')
  assert.equal(
    matchSignature('You have an error in your SQL syntax; check the manual', SQL_ERRORS)?.label,
    'MySQL error',
  )
  assert.equal(
    matchSignature('ERROR: unterminated quoted string at or near "\'"', SQL_ERRORS)?.label,
    'PostgreSQL error',
  )
  assert.equal(
    matchSignature('ORA-01756: quoted string not properly terminated', SQL_ERRORS)?.label,
    'Oracle error',
  )
  assert.equal(matchSignature('MongoServerError: unknown operator: $gt', NOSQL_ERRORS)?.kind, 'nosql')
  assert.equal(
    matchSignature('uid=33(www-data) gid=33(www-data) groups=33(www-data)', COMMAND_OUTPUT)?.kind,
    'command',
  )
  assert.equal(
    matchSignature('root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1', FILE_CONTENTS)?.kind,
    'path-traversal',
  )
})

test('signatures: ordinary answers do not match', () => {
  for (const text of [
    '{"error":"not found"}',
    '{"title":"Internal error","instance":"urn:req:1"}',
    'We are at the office. Select from our menu; order 3 items.',
    '{"sql":"disabled","note":"look at lines 1:2"}',
    'user root logged in',
  ]) {
    for (const sigs of [STACK_TRACES, SQL_ERRORS, NOSQL_ERRORS, COMMAND_OUTPUT, FILE_CONTENTS])
      assert.equal(matchSignature(text, sigs), undefined, text)
  }
})

test('signatures and masking run in bounded time on adversarial 64 KiB bodies', () => {
  const bodies = [
    '\n'.repeat(65_536),
    '\n at '.repeat(13_000),
    `\n${' '.repeat(65_000)}`,
    'at '.repeat(21_000),
    `at ${'a'.repeat(65_000)}`,
    `\nat java.${'a.'.repeat(30_000)}`,
    'Warning: '.repeat(7_000),
    `x ${'pass'.repeat(16_000)}`,
    `"${'token'.repeat(13_000)}`,
    `${'a:'.repeat(30_000)}`,
    '\\n'.repeat(32_000),
  ]
  const all = [...STACK_TRACES, ...SQL_ERRORS, ...NOSQL_ERRORS, ...COMMAND_OUTPUT, ...FILE_CONTENTS]
  for (const body of bodies) {
    const t0 = performance.now()
    matchSignature(body, all)
    maskSecrets(body.slice(0, 4096 * 4))
    const ms = performance.now() - t0
    assert.ok(ms < 500, `${JSON.stringify(body.slice(0, 12))}… took ${ms.toFixed(0)} ms`)
  }
})

test('maskSecrets: secret-looking assignments and URL passwords are cut, the rest stays', () => {
  assert.equal(maskSecrets('JWT_SECRET=abcdef123\nPORT=8080'), 'JWT_SECRET=ab***\nPORT=8080')
  assert.equal(
    maskSecrets('{"dbPassword": "hunter2", "user": "app"}'),
    '{"dbPassword": "hu***", "user": "app"}',
  )
  assert.equal(maskSecrets('postgres://app:hunter2@db.internal/app'), 'postgres://app:***@db.internal/app')
  assert.equal(maskSecrets('api_key: "***"'), 'api_key: "***"')
  assert.equal(maskSecrets('{"status":"ok","count":3}'), '{"status":"ok","count":3}')
})

test('templateRegex and isLoopbackHost', () => {
  const re = templateRegex('/api/v2/notes/{id}')
  assert.ok(re.test('/api/v2/notes/12'))
  assert.ok(!re.test('/api/v2/notes/12/x'))
  assert.ok(!re.test('/api/v2/notes'))
  assert.ok(templateRegex('/a.b/{x}').test('/a.b/1') && !templateRegex('/a.b/{x}').test('/axb/1'))
  for (const h of ['localhost', '127.0.0.1', '127.8.9.10', '[::1]', 'api.localhost'])
    assert.ok(isLoopbackHost(h), h)
  for (const h of ['example.com', '10.0.0.1', '128.0.0.1', 'localhost.example.com'])
    assert.ok(!isLoopbackHost(h), h)
})
