/**
 * Unit tests of request-target hygiene: a table of hostile and ordinary targets with their
 * canonical form or rejection code, a seeded fuzz test of the canonical-form invariants, and
 * `parseHost`. The same forms, end to end through a real gateway, are in test/hostile-paths.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ErrorCode, GatewayError } from './errors.js'
import { canonicalizeTarget, type HygieneOptions, parseHost } from './hygiene.js'
import { prng } from '../util/prng.js'

const opts: HygieneOptions = { allowSemicolon: false, maxUrlLength: 8192 }
const semiOpts: HygieneOptions = { allowSemicolon: true, maxUrlLength: 8192 }

/** Runs `fn` and returns the GatewayError code it throws, or fails when it returns or throws else. */
function codeOf(fn: () => unknown): ErrorCode {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${String(err)}`)
    return err.code
  }
  assert.fail('expected a rejection')
}

type Row = [input: string, expected: string | ErrorCode, query?: string]

// Input → canonical path (query '' unless given), or the error code it must be rejected with.
const TABLE: Row[] = [
  // ordinary targets
  ['/', '/'],
  ['/public', '/public'],
  ['/public/x', '/public/x'],
  ['/public/x/', '/public/x/'],
  ['/public/a-b_c~d.e', '/public/a-b_c~d.e'],
  ["/public/!$&'()*+,=:@", "/public/!$&'()*+,=:@"],
  ['/public/x?a=1&b=2', '/public/x', 'a=1&b=2'],
  ['/public?', '/public', ''],
  ['/public?x=%00', '/public', 'x=%00'],
  ['/public?q=/../admin', '/public', 'q=/../admin'],
  ['/public?a[]=1|2', '/public', 'a[]=1|2'],
  // unreserved escapes are decoded, others kept upper-case
  ['/public/%41', '/public/A'],
  ['/public/%7Euser', '/public/~user'],
  ['/public/%7euser', '/public/~user'],
  ['/public/%2d%5f%2E', '/public/-_.'],
  ['/public/%c3%a9', '/public/%C3%A9'],
  ['/public/%3f', '/public/%3F'],
  ['/public/%23', '/public/%23'],
  ['/public/%20x', '/public/%20x'],
  ['/public/%25', '/public/%25'],
  ['/public/%25zz', '/public/%25zz'],
  ['/public/%e2%88%95', '/public/%E2%88%95'], // U+2215 DIVISION SLASH stays encoded
  // duplicate slashes and dot segments
  ['//admin', '/admin'],
  ['///admin', '/admin'],
  ['/public//x', '/public/x'],
  ['/public/./././x', '/public/x'],
  ['/./public/x', '/public/x'],
  ['/public/.', '/public/'],
  ['/public/..', '/'],
  ['/public/../admin', '/admin'],
  ['/public/x/../../admin', '/admin'],
  ['/public/%2e%2e/admin', '/admin'],
  ['/public/%2E%2E/admin', '/admin'],
  ['/public/.%2e/admin', '/admin'],
  ['/public/%2e', '/public/'],
  ['/public/x/%2e%2e', '/public/'],
  ['/api/v1/../../public', '/public'],
  ['/public/...', '/public/...'],
  ['/public/.x/..y', '/public/.x/..y'],
  ['/a//b/./c/../d%7e?x=1', '/a/b/d~', 'x=1'],
  // climbing above the root
  ['/..', 'GW_ERR_BAD_PATH'],
  ['/../', 'GW_ERR_BAD_PATH'],
  ['/%2e%2e/', 'GW_ERR_BAD_PATH'],
  ['/public/../../admin', 'GW_ERR_BAD_PATH'],
  ['//..//admin', 'GW_ERR_BAD_PATH'],
  // not origin-form
  ['', 'GW_ERR_BAD_PATH'],
  ['*', 'GW_ERR_BAD_PATH'],
  ['http://evil.example/public/x', 'GW_ERR_BAD_PATH'],
  ['evil.example:443', 'GW_ERR_BAD_PATH'],
  ['public/x', 'GW_ERR_BAD_PATH'],
  ['?x=1', 'GW_ERR_BAD_PATH'],
  // encoded separators and control bytes
  ['/admin%2f', 'GW_ERR_BAD_PATH'],
  ['/public%2F..%2Fadmin', 'GW_ERR_BAD_PATH'],
  ['/public/..%2fadmin', 'GW_ERR_BAD_PATH'],
  ['/public/%5c../admin', 'GW_ERR_BAD_PATH'],
  ['/public/%5C', 'GW_ERR_BAD_PATH'],
  ['/public/%00/admin', 'GW_ERR_BAD_PATH'],
  ['/public/..%00/', 'GW_ERR_BAD_PATH'],
  ['/public/%0a', 'GW_ERR_BAD_PATH'],
  ['/public/%0D%0Ax', 'GW_ERR_BAD_PATH'],
  ['/public/%7f', 'GW_ERR_BAD_PATH'],
  // double encoding, raw or with the hex digits themselves encoded
  ['/public/%2500', 'GW_ERR_BAD_PATH'],
  ['/public/%252e%252e/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%252F', 'GW_ERR_BAD_PATH'],
  ['/public/%25%32%65%25%32%65/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%25%32e', 'GW_ERR_BAD_PATH'],
  ['/public/%252%46', 'GW_ERR_BAD_PATH'],
  ['/public/%25%25%32%65', 'GW_ERR_BAD_PATH'],
  // invalid escapes
  ['/public/%zz', 'GW_ERR_BAD_PATH'],
  ['/public/%', 'GW_ERR_BAD_PATH'],
  ['/public/%4', 'GW_ERR_BAD_PATH'],
  ['/public/%4?x', 'GW_ERR_BAD_PATH'],
  ['/public/%u002e', 'GW_ERR_BAD_PATH'],
  ['/public?x=%zz', 'GW_ERR_BAD_PATH'],
  ['/public?x=%', 'GW_ERR_BAD_PATH'],
  // invalid UTF-8 after decoding (overlong forms, lone bytes, surrogates)
  ['/public/%c0%ae%c0%ae/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%C0%AF', 'GW_ERR_BAD_PATH'],
  ['/public/%e0%80%ae', 'GW_ERR_BAD_PATH'],
  ['/public/%ff', 'GW_ERR_BAD_PATH'],
  ['/public/%c3', 'GW_ERR_BAD_PATH'],
  ['/public/%ed%a0%80', 'GW_ERR_BAD_PATH'],
  // characters outside RFC 3986
  ['/public\\..\\admin', 'GW_ERR_BAD_PATH'],
  ['/public/a\\b', 'GW_ERR_BAD_PATH'],
  ['/public/x#frag', 'GW_ERR_BAD_PATH'],
  ['/public?x=1#frag', 'GW_ERR_BAD_PATH'],
  ['/public/é', 'GW_ERR_BAD_PATH'],
  ['/public/\u00c3\u00a9', 'GW_ERR_BAD_PATH'], // raw UTF-8 bytes as Node hands them over (latin1)
  ['/public/a\tb', 'GW_ERR_BAD_PATH'],
  ['/public/a b', 'GW_ERR_BAD_PATH'],
  ['/public/a\u0000b', 'GW_ERR_BAD_PATH'],
  ['/public/a"b', 'GW_ERR_BAD_PATH'],
  ['/public/a<b>', 'GW_ERR_BAD_PATH'],
  ['/public/a{b}', 'GW_ERR_BAD_PATH'],
  ['/public/a|b', 'GW_ERR_BAD_PATH'],
  ['/public/a^b', 'GW_ERR_BAD_PATH'],
  ['/public/a`b', 'GW_ERR_BAD_PATH'],
  ['/public?x=é', 'GW_ERR_BAD_PATH'],
  ['/public?x= 1', 'GW_ERR_BAD_PATH'],
  // semicolons (off by default)
  ['/admin;x', 'GW_ERR_BAD_PATH'],
  ['/public/..;/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%2e%2e;/admin', 'GW_ERR_BAD_PATH'],
  ['/public/x%3bjsessionid=1', 'GW_ERR_BAD_PATH'],
  ['/public?a=1;b=2', '/public', 'a=1;b=2'],
]

// With allowSemicolon: matrix parameters pass, but never on a dot segment.
const SEMI_TABLE: Row[] = [
  ['/public/x;v=1', '/public/x;v=1'],
  ['/public/x;v=1/y', '/public/x;v=1/y'],
  ['/public/x%3bv=1', '/public/x%3Bv=1'],
  ['/public/;/admin', '/public/;/admin'],
  ['/public/..;/admin', 'GW_ERR_BAD_PATH'],
  ['/public/..;x=1/admin', 'GW_ERR_BAD_PATH'],
  ['/public/.;/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%2e%2e;/admin', 'GW_ERR_BAD_PATH'],
  ['/public/%2e;x/admin', 'GW_ERR_BAD_PATH'],
  ['/public/..', '/'],
]

function checkRow([input, expected, query]: Row, o: HygieneOptions): void {
  if (expected.startsWith('GW_ERR_')) {
    assert.equal(
      codeOf(() => canonicalizeTarget(input, o)),
      expected,
      `input ${JSON.stringify(input)}`,
    )
  } else {
    assert.deepEqual(
      canonicalizeTarget(input, o),
      { path: expected, query: query ?? '' },
      `input ${JSON.stringify(input)}`,
    )
  }
}

describe('canonicalizeTarget', () => {
  it('maps each table input to its canonical path or rejection', () => {
    for (const row of TABLE) checkRow(row, opts)
  })

  it('with allowSemicolon, keeps matrix parameters but rejects dot segments with parameters', () => {
    for (const row of SEMI_TABLE) checkRow(row, semiOpts)
  })

  it('rejects targets over maxUrlLength with 414 and accepts the limit exactly', () => {
    const small: HygieneOptions = { allowSemicolon: false, maxUrlLength: 64 }
    const atLimit = `/${'a'.repeat(63)}`
    assert.equal(canonicalizeTarget(atLimit, small).path, atLimit)
    assert.equal(
      codeOf(() => canonicalizeTarget(`/${'a'.repeat(64)}`, small)),
      'GW_ERR_URI_TOO_LONG',
    )
    // the query counts too
    assert.equal(
      codeOf(() => canonicalizeTarget(`/a?${'b'.repeat(62)}`, small)),
      'GW_ERR_URI_TOO_LONG',
    )
    const e = (() => {
      try {
        canonicalizeTarget(`/${'x'.repeat(9000)}`, opts)
      } catch (err) {
        return err as GatewayError
      }
    })()
    assert.equal(e?.status, 414)
  })

  it('handles 100 KB paths without catastrophic behaviour', () => {
    const big: HygieneOptions = { allowSemicolon: false, maxUrlLength: 1_000_000 }
    const n = 100_000
    assert.equal(canonicalizeTarget(`/${'a'.repeat(n)}`, big).path.length, n + 1)
    assert.equal(canonicalizeTarget('/'.repeat(n), big).path, '/')
    assert.equal(canonicalizeTarget('/a/..'.repeat(n / 5), big).path, '/')
    const third = Math.floor(n / 3)
    assert.equal(canonicalizeTarget('/%41'.repeat(n / 4), big).path, '/A'.repeat(n / 4))
    assert.equal(canonicalizeTarget(`/${'%2e'.repeat(third)}`, big).path, `/${'.'.repeat(third)}`)
    assert.equal(canonicalizeTarget(`/${'./'.repeat(n / 2)}x`, big).path, '/x')
    assert.equal(canonicalizeTarget(`/${'%c3%a9'.repeat(n / 10)}`, big).path, `/${'%C3%A9'.repeat(n / 10)}`)
    assert.equal(
      codeOf(() => canonicalizeTarget('/..'.repeat(third), big)),
      'GW_ERR_BAD_PATH',
    )
    assert.equal(
      codeOf(() => canonicalizeTarget(`/${'%25'.repeat(third)}41`, big)),
      'GW_ERR_BAD_PATH',
    )
    assert.equal(
      codeOf(() => canonicalizeTarget(`/${'%c0'.repeat(third)}`, big)),
      'GW_ERR_BAD_PATH',
    )
    assert.equal(
      codeOf(() => canonicalizeTarget(`/${'a'.repeat(n)}`, opts)),
      'GW_ERR_URI_TOO_LONG',
    )
  })
})

// The hostile alphabet; some pieces repeat to weight them.
const PIECES = [
  '/',
  '/',
  '/',
  '//',
  '.',
  '.',
  '..',
  '%',
  '%',
  ...'0123456789abcdefABCDEF',
  '2e',
  '2E',
  '2f',
  '2F',
  '5c',
  '5C',
  '00',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2f',
  '%5c',
  '%00',
  '%41',
  '%7e',
  '%3b',
  '%c3%a9',
  '%25',
  '%25',
  ';',
  '\\',
  'a',
  'a',
  'public',
  '~',
  '?',
  '#',
  'C0',
  'AE',
  '%C0',
  '%AE',
  'é',
  '\u2215',
  '\uff0f',
  '😀',
  '\t',
  ' ',
]

function randomTarget(next: () => number): string {
  const len = 1 + Math.floor(next() * 24)
  let s = next() < 0.95 ? '/' : ''
  for (let i = 0; i < len; i++) s += PIECES[Math.floor(next() * PIECES.length)]
  return s
}

function segments(path: string): string[] {
  return path.split('/').slice(1)
}

/** The invariants every accepted target's canonical form must hold. */
function checkCanonical(input: string, o: HygieneOptions): 'accepted' | 'rejected' {
  let out: { path: string; query: string }
  try {
    out = canonicalizeTarget(input, o)
  } catch (err) {
    if (!(err instanceof GatewayError)) {
      assert.fail(`input ${JSON.stringify(input)} threw a non-GatewayError: ${String(err)}`)
    }
    assert.ok(
      err.code === 'GW_ERR_BAD_PATH' || err.code === 'GW_ERR_URI_TOO_LONG',
      `input ${JSON.stringify(input)} threw ${err.code}`,
    )
    return 'rejected'
  }
  const { path, query } = out
  const msg = `input ${JSON.stringify(input)} → ${JSON.stringify(path)}`
  assert.ok(path.startsWith('/'), msg)
  assert.ok(!path.includes('//'), msg)
  assert.ok(!path.includes('/./') && !path.includes('/../'), msg)
  assert.ok(!path.endsWith('/.') && !path.endsWith('/..'), msg)
  for (const seg of segments(path)) {
    assert.ok(seg !== '.' && seg !== '..', msg)
    if (o.allowSemicolon) assert.ok(!/^\.\.?;/.test(seg), msg)
  }
  assert.ok(!/%2f|%5c|%00/i.test(path), msg)
  assert.ok(!/%25[0-9a-f]{2}/i.test(path), msg)
  assert.ok(!path.includes('\\'), msg)
  assert.ok(!path.includes('#') && !path.includes('?'), msg)
  assert.ok(/^[\x21-\x7e]*$/.test(path), msg)
  if (!o.allowSemicolon) assert.ok(!path.includes(';'), msg)
  // escapes that remain are upper-case and not of unreserved characters
  for (const m of path.matchAll(/%(..)/g)) {
    const hex = m[1] as string
    assert.match(hex, /^[0-9A-F]{2}$/, msg)
    assert.ok(!/[A-Za-z0-9\-._~]/.test(String.fromCharCode(Number.parseInt(hex, 16))), msg)
  }
  const q = input.indexOf('?')
  assert.equal(query, q === -1 ? '' : input.slice(q + 1), msg)
  // idempotent
  assert.deepEqual(canonicalizeTarget(path, o), { path, query: '' }, `${msg} (second pass)`)
  if (query !== '') assert.deepEqual(canonicalizeTarget(`${path}?${query}`, o), out, msg)
  return 'accepted'
}

describe('canonicalizeTarget property test', () => {
  for (const [name, o, seed] of [
    ['default options', opts, 0x5eed],
    ['allowSemicolon', semiOpts, 0xc0ffee],
  ] as const) {
    it(`holds the canonical-form invariants for 20,000 random hostile targets (${name})`, () => {
      const next = prng(seed)
      let accepted = 0
      const N = 20_000
      for (let i = 0; i < N; i++) {
        if (checkCanonical(randomTarget(next), o) === 'accepted') accepted++
      }
      // The generator must reach the normalizer often enough for the test to mean something.
      assert.ok(accepted > N / 20, `only ${accepted} of ${N} inputs accepted`)
    })
  }

  it('holds the invariants for every table input', () => {
    for (const [input] of [...TABLE, ...SEMI_TABLE]) {
      checkCanonical(input, opts)
      checkCanonical(input, semiOpts)
    }
  })
})

describe('parseHost', () => {
  const ok: [string, string][] = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['localhost', 'localhost'],
    ['a', 'a'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[::1]:443', '[::1]'],
    ['[FE80::1]:8443', '[fe80::1]'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    [`${'a'.repeat(253)}`, 'a'.repeat(253)],
  ]
  const bad: (string | undefined)[] = [
    undefined,
    '',
    'a b',
    'good@evil.example',
    'user:pass@example.com',
    'example.com:',
    'example.com:123456',
    'example.com:80:80',
    '-example.com',
    'example.com-',
    'example.com.',
    'a_b.example',
    'évil.example',
    'example.com/x',
    'example.com?x',
    'example.com#x',
    'example.com\\x',
    'example.com\r\nx: y',
    'example.com, evil.example',
    '[::1',
    '::1',
    '[::1]x',
    '[::1]:',
    'a'.repeat(254),
    '*',
  ]

  it('returns the lower-cased host name without port', () => {
    for (const [input, expected] of ok) assert.equal(parseHost(input), expected, input)
  })

  it('rejects missing and malformed Host values with GW_ERR_BAD_HEADER', () => {
    for (const input of bad) {
      assert.equal(
        codeOf(() => parseHost(input)),
        'GW_ERR_BAD_HEADER',
        JSON.stringify(input),
      )
    }
  })

  it('handles a 100 KB Host value without catastrophic behaviour', () => {
    assert.equal(
      codeOf(() => parseHost('a'.repeat(100_000))),
      'GW_ERR_BAD_HEADER',
    )
    assert.equal(
      codeOf(() => parseHost(`${'a.'.repeat(50_000)}-`)),
      'GW_ERR_BAD_HEADER',
    )
    assert.equal(
      codeOf(() => parseHost(`[${':'.repeat(100_000)}`)),
      'GW_ERR_BAD_HEADER',
    )
  })
})
