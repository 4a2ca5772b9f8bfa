/**
 * Hostile request targets, end to end: each form is written byte for byte on a raw socket to a
 * real gateway whose routes cover only /public and /api, in front of an upstream that records the
 * exact `req.url` it receives. Each form is either rejected (and the upstream sees nothing) or
 * forwarded, and then the upstream sees exactly its canonical path. The table is mirrored in
 * docs/security/path-normalization.md; keep the two in sync.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { rawRequest } from './helpers/raw-http.js'
import {
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
}

const BAD_PATH = ['GW_ERR_BAD_PATH']
const NOT_FOUND = ['GW_ERR_ROUTE_NOT_FOUND']
// Forms Node's HTTP parser refuses before the gateway sees them; the gateway's clientError handler
// answers. Which parser error (and so which code) depends on the llhttp version.
const PARSER = ['GW_ERR_BAD_REQUEST', 'GW_ERR_REQUEST_SMUGGLING', 'GW_ERR_BAD_PATH']

const rej = (target: string, status: 400 | 404 | 414, codes: string[], attack: string, label?: string) =>
  ({ target, attack, reject: { status, codes }, ...(label ? { label } : {}) }) satisfies Form
const fwd = (target: string, forward: string, attack: string) => ({ target, attack, forward }) satisfies Form
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
  rej('http://evil.example/public/x', 400, BAD_PATH, 'absolute-form with another host'),
  rej('http://localhost/public/x', 400, BAD_PATH, 'absolute-form with the same host'),
  rej('*', 400, BAD_PATH, 'asterisk-form with GET'),
  { ...rej('*', 400, BAD_PATH, 'asterisk-form with OPTIONS'), method: 'OPTIONS' },
  rej('evil.example:443', 400, PARSER, 'authority-form with GET'),
  // characters outside RFC 3986
  rej('/public/x#frag', 400, BAD_PATH, 'fragment in the request line'),
  rej(utf8('/public/é'), 400, PARSER, 'raw UTF-8 bytes', '/public/<C3 A9>'),
  rej('/public/a\tb', 400, PARSER, 'raw tab', '/public/a<TAB>b'),
  rej('/public/a\u0000b', 400, PARSER, 'raw NUL', '/public/a<NUL>b'),
  rej('/public/x y', 400, PARSER, 'raw space (request-line split)'),
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
  gw = await startTestGateway(up.url)
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

const outcomes: { form: Form; status: number | undefined }[] = []

FORMS.forEach((form, i) => {
  const name = `${form.method ?? 'GET'} ${form.label ?? JSON.stringify(form.target)}: ${form.attack}`
  test(name, async () => {
    const before = up.requests.length
    const head = `${form.method ?? 'GET'} ${form.target} HTTP/1.1\r\nHost: localhost\r\nX-Form: ${i}\r\nConnection: close\r\n\r\n`
    const res = await rawRequest(gw.port, Buffer.from(head, 'latin1'), { timeoutMs: 5000 })
    outcomes.push({ form, status: res.status })
    assert.ok(!res.timedOut, 'the gateway answered and closed the connection')
    const received = up.requests.slice(before)
    if (form.reject) {
      assert.equal(res.status, form.reject.status, `status for ${name}`)
      if (res.headers['content-type']?.includes('problem+json')) {
        assert.ok(form.reject.codes.includes(res.code ?? ''), `code ${res.code} for ${name}`)
      } else {
        // Only Node's parser answers without a problem body; then the form must be a parser one.
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

test('no hostile form reached an upstream path other than its canonical one', () => {
  const forwarded = FORMS.filter((f) => f.forward !== undefined)
  assert.equal(outcomes.length, FORMS.length, 'every form ran')
  assert.equal(up.requests.length, forwarded.length, 'the upstream saw only the forwarded forms')
  for (const r of up.requests) {
    const form = FORMS[Number(r.headers['x-form'])]
    assert.ok(form?.forward !== undefined, `upstream received ${r.url} for a rejected form`)
    assert.equal(r.url, form.forward)
    assert.ok(underRoutedPrefix(r.url), `upstream received ${r.url}, outside /public and /api`)
  }
  assert.ok(FORMS.length >= 30)
  const rejected = outcomes.filter((o) => o.form.reject)
  const by = (s: number) => rejected.filter((o) => o.status === s).length
  console.log(
    `hostile paths: ${FORMS.length} forms, ${rejected.length} rejected (400: ${by(400)}, 404: ${by(404)}, ` +
      `414: ${by(414)}), ${forwarded.length} forwarded canonically`,
  )
})

/** The form's row in the documentation table. */
function docRow(form: Form, i: number): string {
  const shown = `${form.method ?? 'GET'} ${form.label ?? form.target}`
  const outcome = form.reject
    ? form.reject.codes === PARSER
      ? `${form.reject.status} (HTTP parser)`
      : `${form.reject.status} \`${form.reject.codes[0]}\``
    : '200, forwarded'
  const upstream = form.forward === undefined ? 'nothing' : `\`${form.forward}\``
  return `| ${i + 1} | \`${shown}\` | ${outcome} | ${upstream} | ${form.attack} |`
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
