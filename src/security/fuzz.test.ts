/**
 * Property-based fuzzing of the parsers that read what clients send (issue 23): path hygiene, the
 * urlencoded reader, header framing checks, the guarded JSON parser and the multipart parser.
 * Fixed seed and bounded runs here (`FUZZ_RUNS` raises the count, `FUZZ_SEED` changes the seed:
 * docs/security/fuzzing.md). Each property says what must hold for ANY input: the parser either
 * refuses with its own typed error or returns a value with the documented invariants; it never
 * throws anything else.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { GatewayError } from '../gateway/errors.js'
import { canonicalizeTarget, checkFraming } from '../gateway/hygiene.js'
import { parseParams, withoutParams } from '../gateway/query.js'
import { DEFAULT_JSON_LIMITS, JsonGuardError, parseJsonGuarded } from '../openapi/json-guard.js'
import {
  DEFAULT_MULTIPART_LIMITS,
  MultipartError,
  MultipartParser,
} from '../policies/openapi-validation/multipart.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const SEED = Number(process.env.FUZZ_SEED ?? 20261207)
const params = { numRuns: RUNS, seed: SEED }

/** Strings built from the characters that matter to each parser, and some that should not. */
const pieces = (alphabet: string[]) =>
  fc.array(fc.constantFrom(...alphabet), { maxLength: 60 }).map((a) => a.join(''))
const PATH_BITS = [
  '/',
  '.',
  '..',
  '%',
  '%2e',
  '%2E',
  '%2f',
  '%2F',
  '%5c',
  '%25',
  '%00',
  '%c0%ae',
  '\\',
  ';',
  '?',
  '#',
  'a',
  'Z',
  '9',
  '-',
  '~',
  '%41',
  '%e2%80%ae',
  ' ',
  '\u00e9',
  '//',
  '/./',
  '/../',
  '*',
  '@',
  ':',
]
const QUERY_BITS = [
  '&',
  '=',
  '+',
  '%',
  '%2B',
  '%26',
  '%3D',
  '%zz',
  '%FF',
  '%C3%A9',
  'id',
  'ID',
  'id[]',
  '[0]',
  ';',
  'a',
  'b',
  '',
  '%00',
  '%',
  '.',
]

describe('fuzz: path hygiene', () => {
  test('canonicalizeTarget refuses with a GatewayError or returns a canonical, idempotent path', () => {
    const opts = { allowSemicolon: false, maxUrlLength: 8192 }
    fc.assert(
      fc.property(pieces(PATH_BITS), (tail) => {
        const raw = `/${tail}`
        let t: ReturnType<typeof canonicalizeTarget>
        try {
          t = canonicalizeTarget(raw, opts)
        } catch (err) {
          assert.ok(err instanceof GatewayError, String(err))
          return
        }
        assert.ok(t.path.startsWith('/'))
        assert.ok(!t.path.includes('//'), t.path)
        for (const seg of t.path.split('/')) assert.ok(seg !== '.' && seg !== '..', t.path)
        assert.ok(!/%2f|%5c|\\/i.test(t.path), t.path)
        assert.ok(!/[\u0000-\u001f\u007f]/.test(t.path), t.path)
        // idempotent: the canonical path is its own canonical form
        assert.equal(canonicalizeTarget(t.path, opts).path, t.path)
      }),
      params,
    )
  })
})

describe('fuzz: the urlencoded reader', () => {
  test('parseParams refuses with a GatewayError or returns parameters that survive a round trip', () => {
    fc.assert(
      fc.property(pieces(QUERY_BITS), (raw) => {
        let p: ReturnType<typeof parseParams>
        try {
          p = parseParams(raw)
        } catch (err) {
          assert.ok(err instanceof GatewayError, String(err))
          assert.ok(err.code === 'GW_ERR_BAD_REQUEST')
          return
        }
        // re-encoded, the same parameters
        const again = parseParams(
          p.list.map((x) => `${encodeURIComponent(x.name)}=${encodeURIComponent(x.value)}`).join('&'),
        )
        assert.deepEqual(again.list, p.list)
        // lookups agree with the list, or refuse as ambiguous (never another error)
        for (const name of ['id', 'a', '']) {
          try {
            const v = p.single(name)
            assert.equal(v, p.list.find((x) => x.name === name)?.value)
          } catch (err) {
            assert.ok(err instanceof GatewayError && err.code === 'GW_ERR_PARAMETER_POLLUTION', String(err))
          }
        }
        // what withoutParams keeps no longer holds the name, in any spelling
        const kept = parseParams(withoutParams(raw, new Set(['id'])))
        assert.ok(
          !kept.list.some((x) => x.name.toLowerCase() === 'id' || x.name.toLowerCase().startsWith('id[')),
        )
      }),
      params,
    )
  })
})

describe('fuzz: header framing', () => {
  const NAMES = [
    'Host',
    'host',
    'HOST',
    'Cookie',
    'cookie',
    'Content-Type',
    'content-type',
    'Authorization',
    'Proxy-Authorization',
    'X-A',
    'Transfer-Encoding',
    'User-Agent',
  ]
  test('checkFraming refuses with a GatewayError or passes; two copies of a refused singleton never pass', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.string({ maxLength: 8 })), { maxLength: 12 }),
        fc.constantFrom(0, 1),
        (headers, minor) => {
          const rawHeaders = headers.flat()
          const te = headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1]
          const req = {
            method: 'GET',
            httpVersionMajor: 1,
            httpVersionMinor: minor,
            rawHeaders,
            headers: { 'transfer-encoding': te },
          }
          let passed = true
          try {
            checkFraming(req, 100)
          } catch (err) {
            assert.ok(err instanceof GatewayError, String(err))
            passed = false
          }
          const count = (n: string) => headers.filter(([h]) => h.toLowerCase() === n).length
          if (passed) {
            for (const n of ['host', 'cookie', 'content-type', 'authorization', 'proxy-authorization'])
              assert.ok(count(n) <= 1, `${n} twice passed`)
          }
        },
      ),
      params,
    )
  })
})

describe('fuzz: guarded JSON', () => {
  test('parseJsonGuarded agrees with JSON.parse on what it accepts, refuses with JsonGuardError only', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json({ maxDepth: 6 }),
          fc.string({ maxLength: 80 }),
          pieces([
            '{',
            '}',
            '[',
            ']',
            '"',
            ':',
            ',',
            '1',
            'e',
            '-',
            'true',
            'null',
            '"__proto__"',
            '\\u0000',
            ' ',
          ]),
        ),
        (text) => {
          let mine: unknown
          try {
            mine = parseJsonGuarded(text, DEFAULT_JSON_LIMITS)
          } catch (err) {
            assert.ok(err instanceof JsonGuardError, String(err))
            return
          }
          // what it accepts is valid JSON with the same value
          assert.deepEqual(mine, JSON.parse(text))
        },
      ),
      params,
    )
  })
})

describe('fuzz: multipart', () => {
  test('MultipartParser refuses with MultipartError or returns parts within its limits, whatever the chunking', () => {
    const boundary = 'XyZ'
    const bits = [
      '--XyZ',
      '--XyZ--',
      '\r\n',
      'Content-Disposition: form-data; name="a"',
      'Content-Disposition: form-data; name="f"; filename="x.txt"',
      'Content-Type: text/plain',
      '\r\n\r\n',
      'value',
      '--',
      'X',
      '\r',
      '\n',
      '"',
      ';',
    ]
    fc.assert(
      fc.property(pieces(bits), fc.array(fc.integer({ min: 1, max: 16 }), { maxLength: 8 }), (body, cuts) => {
        const bytes = Buffer.from(body, 'latin1')
        const parser = new MultipartParser(
          boundary,
          DEFAULT_MULTIPART_LIMITS,
          (_n, filename) => filename !== undefined,
        )
        try {
          let at = 0
          for (const c of cuts) {
            if (at >= bytes.length) break
            parser.write(bytes.subarray(at, at + c))
            at += c
          }
          if (at < bytes.length) parser.write(bytes.subarray(at))
          const parts = parser.end()
          assert.ok(parts.length <= DEFAULT_MULTIPART_LIMITS.maxParts)
        } catch (err) {
          assert.ok(err instanceof MultipartError, String(err))
        }
      }),
      params,
    )
  })
})
