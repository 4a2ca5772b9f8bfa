/**
 * Hostile request targets, end to end: each form is written byte for byte on a raw socket to a
 * real gateway whose routes cover only /public and /api, in front of an upstream that records the
 * exact `req.url` it receives. Each form is either rejected (and the upstream sees nothing) or
 * forwarded, and then the upstream sees exactly its canonical path. The table is mirrored in
 * docs/security/path-normalization.md; keep the two in sync.
 *
 * The suite runs over HTTP/1.1 (the request line) and over HTTP/2 (the `:path` pseudo-header,
 * HPACK literals, h2c prior knowledge on a second listener): the same forms, the same
 * expectations, except where nghttp2 (Node's HTTP/2 library) resets the stream before the gateway
 * sees it (`h2: 'reset'`: a `:path` that is not origin-form, or holds a space or a control
 * character; RFC 9113 §8.3.1). Over HTTP/2 every answer the gateway makes is a problem document.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { rawH2Request } from './helpers/raw-h2.js'
import { rawRequest } from './helpers/raw-http.js'
import {
  defaultConfig,
  type RecordingUpstream,
  startRecordingUpstream,
  startTestGateway,
  type TestGateway,
} from './helpers/servers.js'

interface Form {
  /** The request target exactly as sent; a latin1 string, so each char is one byte on the wire. */
  target: string
  method?: string
  /** Short label for the test name (defaults to the target). */
  label?: string
  /** The attack or ambiguity the form tries. */
  attack: string
  /** Rejected at the gateway: status and the problem `code`s accepted (none: no body checked). */
  reject?: { status: 400 | 404 | 414; codes: string[] }
  /** Forwarded: the exact request target the upstream must receive. */
  forward?: string
  /** Over HTTP/2: nghttp2 resets the stream (PROTOCOL_ERROR) before the gateway sees it. */
  h2?: 'reset'
}

const BAD_PATH = ['GW_ERR_BAD_PATH']
const NOT_FOUND = ['GW_ERR_ROUTE_NOT_FOUND']
// Forms Node's HTTP parser refuses before the gateway sees them; the gateway's clientError handler
// answers. Which parser error (and so which code) depends on the llhttp version.
const PARSER = ['GW_ERR_BAD_REQUEST', 'GW_ERR_REQUEST_SMUGGLING', 'GW_ERR_BAD_PATH']

const rej = (target: string, status: 400 | 404 | 414, codes: string[], attack: string, label?: string) =>
  ({ target, attack, reject: { status, codes }, ...(label ? { label } : {}) }) satisfies Form
const fwd = (target: string, forward: string, attack: string) => ({ target, attack, forward }) satisfies Form
/** nghttp2 refuses the form as a `:path` (stream reset) before the gateway sees it. */
const h2reset = (f: Form): Form => ({ ...f, h2: 'reset' })
/** A target containing raw UTF-8 bytes, as a latin1 string. */
const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1')

const FORMS: Form[] = [
  // dot segments: resolved before routing, so they can only land on the path they resolve to
  rej('/public/../admin', 404, NOT_FOUND, 'dot-segment traversal out of a routed prefix'),
  rej('/public/%2e%2e/admin', 404, NOT_FOUND, 'encoded dot segment (lower-case)'),
  rej('/public/%2E%2E/admin', 404, NOT_FOUND, 'encoded dot segment (upper-case)'),
  rej('/public/.%2e/admin', 404, NOT_FOUND, 'half-encoded dot segment'),
  rej('/public/x/../../admin', 404, NOT_FOUND, 'traversal through a deeper segment'),
  rej('/public/..', 404, NOT_FOUND, 'dot segment to the root (canonical "/", no route)'),
  rej('/%2e%2e/', 400, BAD_PATH, 'encoded dot segment above the root'),
  rej('/..', 400, BAD_PATH, 'dot segment above the root'),
  // empty segments
  rej('//admin', 404, NOT_FOUND, 'double slash (protocol-relative / empty segment)'),
  rej('///admin', 404, NOT_FOUND, 'triple slash'),
  // encoded separators
  rej('/admin%2f', 400, BAD_PATH, 'encoded slash'),
  rej('/public%2f..%2fadmin', 400, BAD_PATH, 'encoded slashes around a dot segment'),
  rej('/public/..%2fadmin', 400, BAD_PATH, 'dot segment with an encoded slash'),
  rej('/public/%2e%2e%2f', 400, BAD_PATH, 'fully encoded "../"'),
  rej('/public\\..\\admin', 400, BAD_PATH, 'backslash separators (IIS, Windows back ends)'),
  rej('/public/%5c../admin', 400, BAD_PATH, 'encoded backslash'),
  // path parameters
  rej('/admin;x', 400, BAD_PATH, 'path parameter'),
  rej('/public/..;/admin', 400, BAD_PATH, 'Tomcat "..;" traversal'),
  rej('/public/%2e%2e;/admin', 400, BAD_PATH, 'encoded Tomcat "..;" traversal'),
  rej('/public/%3b', 400, BAD_PATH, 'encoded semicolon'),
  // invalid UTF-8
  rej('/public/%c0%ae%c0%ae/admin', 400, BAD_PATH, 'overlong UTF-8 "." (2-byte)'),
  rej('/public/%e0%80%ae', 400, BAD_PATH, 'overlong UTF-8 "." (3-byte)'),
  rej('/public/%ff', 400, BAD_PATH, 'byte that is never valid UTF-8'),
  // NUL and double encoding
  rej('/public/%00/admin', 400, BAD_PATH, 'encoded NUL (C string truncation)'),
  rej('/public/..%00/', 400, BAD_PATH, 'NUL after a dot segment'),
  rej('/public/%2500', 400, BAD_PATH, 'double-encoded NUL'),
  rej('/public/%252e%252e/admin', 400, BAD_PATH, 'double-encoded dot segment'),
  rej('/public/%25%32%65%25%32%65/admin', 400, BAD_PATH, 'double encoding with encoded hex digits'),
  // malformed escapes
  rej('/public/%zz', 400, BAD_PATH, 'invalid escape'),
  rej('/public/%', 400, BAD_PATH, 'truncated escape'),
  rej('/public/%u002e', 400, BAD_PATH, 'IIS %u escape'),
  // request-target forms other than origin-form
  h2reset(rej('http://evil.example/public/x', 400, BAD_PATH, 'absolute-form with another host')),
  h2reset(rej('http://localhost/public/x', 400, BAD_PATH, 'absolute-form with the same host')),
  h2reset(rej('*', 400, BAD_PATH, 'asterisk-form with GET')),
  { ...rej('*', 400, BAD_PATH, 'asterisk-form with OPTIONS'), method: 'OPTIONS' },
  h2reset(rej('evil.example:443', 400, PARSER, 'authority-form with GET')),
  // characters outside RFC 3986
  rej('/public/x#frag', 400, BAD_PATH, 'fragment in the request line'),
  rej(utf8('/public/é'), 400, PARSER, 'raw UTF-8 bytes', '/public/<C3 A9>'),
  h2reset(rej('/public/a\tb', 400, PARSER, 'raw tab', '/public/a<TAB>b')),
  h2reset(rej('/public/a\u0000b', 400, PARSER, 'raw NUL', '/public/a<NUL>b')),
  h2reset(rej('/public/x y', 400, PARSER, 'raw space (request-line split)')),
  // routing is case-sensitive and segment-bounded
  rej('/PUBLIC/x', 404, NOT_FOUND, 'case variant of a routed prefix'),
  rej('/publicx', 404, NOT_FOUND, 'prefix without a segment boundary'),
  // length
  rej(
    `/public/${'a'.repeat(9000)}`,
    414,
    ['GW_ERR_URI_TOO_LONG'],
    'target over maxUrlLength',
    '/public/a×9000',
  ),
  // forwarded, and only ever as the canonical path
  fwd('/public/./././x', '/public/x', 'single-dot segments'),
  fwd('/./public/x', '/public/x', 'leading single-dot segment'),
  fwd('/public//x', '/public/x', 'empty segment inside a routed prefix'),
  fwd('/api/../public/x', '/public/x', 'traversal between two routed prefixes'),
  fwd('/api/v1/../../public', '/public', 'traversal to a routed prefix'),
  fwd('/public/x/%2e%2e', '/public/', 'trailing encoded dot segment'),
  fwd('/public/%2e', '/public/', 'trailing encoded single dot'),
  fwd('/public/%7Euser', '/public/~user', 'encoded unreserved "~" is decoded'),
  fwd('/public/%41', '/public/A', 'encoded unreserved "A" is decoded'),
  fwd('/public/%c3%a9', '/public/%C3%A9', 'valid UTF-8 escape kept, hex upper-cased'),
  fwd('/public/%25', '/public/%25', 'a lone encoded "%" is kept'),
  fwd(
    '/public/%ef%bc%8f..%ef%bc%8fadmin',
    '/public/%EF%BC%8F..%EF%BC%8Fadmin',
    'fullwidth solidus stays encoded',
  ),
  fwd('/public?x=%00', '/public?x=%00', 'query is forwarded raw'),
  fwd('/public/x?q=/../admin', '/public/x?q=/../admin', 'dot segments in the query are data'),
  fwd('/api', '/api', 'control: plain routed path'),
]

let up: RecordingUpstream
let gw: TestGateway

before(async () => {
  up = await startRecordingUpstream()
  gw = await startTestGateway(up.url, { configYaml: defaultConfig(up.url, { http2Listener: true }) })
})

after(async () => {
  await gw?.close()
  await up?.close()
})

/** Segment-bounded prefix check, as the router does it. */
function underRoutedPrefix(url: string): boolean {
  const path = url.split('?')[0] as string
  return ['/public', '/api'].some((p) => path === p || path.startsWith(`${p}/`))
}

const PROTOCOLS = ['HTTP/1.1', 'HTTP/2'] as const
type Protocol = (typeof PROTOCOLS)[number]

interface Answer {
  status: number | undefined
  /** The answer is the gateway's problem document. */
  problem: boolean
  code: string | undefined
  /** HTTP/2: RST_STREAM code the server sent instead of an answer. */
  reset: number | undefined
  timedOut: boolean
}

/** Sends form `i` over `protocol`, exactly as written, on a fresh connection. */
async function send(protocol: Protocol, form: Form, i: number): Promise<Answer> {
  const method = form.method ?? 'GET'
  if (protocol === 'HTTP/1.1') {
    const head = `${method} ${form.target} HTTP/1.1\r\nHost: localhost\r\nX-Form: ${i}\r\nX-Protocol: h1\r\nConnection: close\r\n\r\n`
    const res = await rawRequest(gw.ports[0] as number, Buffer.from(head, 'latin1'), { timeoutMs: 5000 })
    return {
      status: res.status,
      problem: res.headers['content-type']?.includes('problem+json') === true,
      code: res.code,
      reset: undefined,
      timedOut: res.timedOut || !res.closed,
    }
  }
  const res = await rawH2Request(
    gw.ports[1] as number,
    [
      [':method', method],
      [':scheme', 'http'],
      [':authority', 'localhost'],
      [':path', form.target],
      ['x-form', String(i)],
      ['x-protocol', 'h2'],
    ],
    { timeoutMs: 5000 },
  )
  return {
    status: res.status,
    // The raw HTTP/2 reader does not decode Huffman-coded header values: the problem document is
    // recognized by its body (its `type` names its code). test/http2.test.ts checks the head with
    // node:http2's client.
    problem: isProblem(res.body, res.code),
    code: res.code,
    reset: res.rstCode !== undefined && res.rstCode !== 0 ? res.rstCode : undefined,
    timedOut: res.timedOut,
  }
}

function isProblem(body: Buffer, code: string | undefined): boolean {
  try {
    return (JSON.parse(body.toString('utf8')) as { type?: unknown }).type === `urn:portcullis:error:${code}`
  } catch {
    return false
  }
}

const outcomes: { protocol: Protocol; form: Form; status: number | undefined; reset: boolean }[] = []

for (const protocol of PROTOCOLS) {
  const tag = protocol === 'HTTP/1.1' ? 'h1' : 'h2'
  describe(protocol, () => {
    FORMS.forEach((form, i) => {
      const name = `${form.method ?? 'GET'} ${form.label ?? JSON.stringify(form.target)}: ${form.attack}`
      test(name, async () => {
        const before = up.requests.length
        const res = await send(protocol, form, i)
        const reset = protocol === 'HTTP/2' && form.h2 === 'reset'
        outcomes.push({ protocol, form, status: res.status, reset: res.reset !== undefined })
        assert.ok(!res.timedOut, 'the gateway answered (and, over HTTP/1.1, closed the connection)')
        const received = up.requests.slice(before).filter((r) => r.headers['x-protocol'] === tag)
        if (reset) {
          // nghttp2 refused the :path: PROTOCOL_ERROR, no answer, nothing forwarded
          assert.equal(res.reset, 1, `stream reset (PROTOCOL_ERROR) for ${name}`)
          assert.deepEqual(received, [], 'a refused form must not reach the upstream')
          return
        }
        assert.equal(res.reset, undefined, `no stream reset for ${name}`)
        if (form.reject) {
          assert.equal(res.status, form.reject.status, `status for ${name}`)
          if (res.problem) {
            assert.ok(form.reject.codes.includes(res.code ?? ''), `code ${res.code} for ${name}`)
          } else {
            // Only Node's HTTP/1 parser answers without a problem body; then the form must be a parser one.
            assert.equal(protocol, 'HTTP/1.1', `expected a problem+json body for ${name}`)
            assert.equal(form.reject.codes, PARSER, `expected a problem+json body for ${name}`)
          }
          assert.deepEqual(
            received.map((r) => r.url),
            [],
            'a rejected form must not reach the upstream',
          )
        } else {
          assert.equal(res.status, 200, `status for ${name}`)
          assert.equal(received.length, 1, 'exactly one upstream request')
          const r = received[0]
          assert.equal(r?.headers['x-form'], String(i))
          assert.equal(r?.url, form.forward, 'the upstream receives exactly the canonical target')
          assert.ok(underRoutedPrefix(r?.url ?? ''), 'only routed prefixes reach the upstream')
        }
      })
    })
  })
}

test('no hostile form reached an upstream path other than its canonical one, over either protocol', () => {
  const forwarded = FORMS.filter((f) => f.forward !== undefined)
  assert.equal(outcomes.length, FORMS.length * PROTOCOLS.length, 'every form ran over both protocols')
  assert.equal(
    up.requests.length,
    forwarded.length * PROTOCOLS.length,
    'the upstream saw only the forwarded forms',
  )
  for (const r of up.requests) {
    const form = FORMS[Number(r.headers['x-form'])]
    assert.ok(form?.forward !== undefined, `upstream received ${r.url} for a rejected form`)
    assert.equal(r.url, form.forward)
    assert.ok(underRoutedPrefix(r.url), `upstream received ${r.url}, outside /public and /api`)
  }
  assert.ok(FORMS.length >= 30)
  for (const protocol of PROTOCOLS) {
    const mine = outcomes.filter((o) => o.protocol === protocol)
    const rejected = mine.filter((o) => o.form.reject)
    const by = (s: number) => rejected.filter((o) => o.status === s).length
    const resets = mine.filter((o) => o.reset).length
    console.log(
      `hostile paths over ${protocol}: ${FORMS.length} forms, ${rejected.length} rejected (400: ${by(400)}, ` +
        `404: ${by(404)}, 414: ${by(414)}, stream reset by nghttp2: ${resets}), ` +
        `${forwarded.length} forwarded canonically, 0 bypasses`,
    )
  }
})

/** The form's row in the documentation table. */
function docRow(form: Form, i: number): string {
  const shown = `${form.method ?? 'GET'} ${form.label ?? form.target}`
  const outcome = form.reject
    ? form.reject.codes === PARSER
      ? `${form.reject.status} (HTTP parser)`
      : `${form.reject.status} \`${form.reject.codes[0]}\``
    : '200, forwarded'
  const h2 =
    form.h2 === 'reset'
      ? 'stream reset (nghttp2)'
      : form.reject
        ? `${form.reject.status} \`${form.reject.codes === PARSER ? 'GW_ERR_BAD_PATH' : form.reject.codes[0]}\``
        : '200, forwarded'
  const upstream = form.forward === undefined ? 'nothing' : `\`${form.forward}\``
  return `| ${i + 1} | \`${shown}\` | ${outcome} | ${h2} | ${upstream} | ${form.attack} |`
}

test('docs/security/path-normalization.md lists exactly these forms and outcomes', () => {
  const expected = FORMS.map(docRow).join('\n')
  if (process.env.PRINT_HOSTILE_TABLE) console.log(expected)
  const doc = readFileSync(new URL('../../docs/security/path-normalization.md', import.meta.url), 'utf8')
  const table = doc.split('<!-- hostile-paths:start -->')[1]?.split('<!-- hostile-paths:end -->')[0] ?? ''
  const rows = table
    .split('\n')
    .filter((l) => /^\| \d+ \|/.test(l))
    .join('\n')
  assert.equal(rows, expected, 'doc table out of sync; run with PRINT_HOSTILE_TABLE=1 to print it')
})
