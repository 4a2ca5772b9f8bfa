import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { applyMasks, redactValue, SecretScanner } from './engine.js'
import { Fakes } from './testing/fakes.js'

const scanner = new SecretScanner(BUILTIN_DETECTORS)
const fakes = new Fakes(7)

test('adversarial inputs: work grows linearly with the input (bounded counts, not wall clock)', () => {
  const MB = 1 << 20
  const cases: [string, (n: number) => string][] = [
    ['keyword runs', (n) => 'ghp_'.repeat(n / 4)],
    ['mixed keyword runs', (n) => 'password=token=secret:AKIAeyJ'.repeat(n / 30)],
    ['one long line of a token alphabet', (n) => `sk_live_${'a1B2'.repeat(n / 4)}`],
    ['A runs (FCM / X keywords)', (n) => 'A'.repeat(n)],
    ['name runs (gated keywords, no assignment)', (n) => 'tokensecretpassword_'.repeat(n / 20)],
    ['URL keywords, no credentials', (n) => `https://${'a'.repeat(n - 8)}`],
    ['URL keywords repeated', (n) => 'https://x'.repeat(n / 9)],
    [
      'nested base64',
      (n) => {
        let s = `token=${fakes.crcToken('ghp_')}`
        for (let i = 0; i < 6; i++) s = Buffer.from(s).toString('base64')
        return `${s} `.repeat(Math.floor(n / (s.length + 1)))
      },
    ],
  ]
  for (const [name, make] of cases) {
    const small = Buffer.from(make(MB / 2))
    const big = Buffer.from(make(4 * MB))
    const a = scanner.scan(small).stats
    const b = scanner.scan(big).stats
    // Everything counted is at most linear: 8× the input costs at most ~8× (+ slack) the work.
    for (const k of [
      'bytesScanned',
      'keywordHits',
      'regexRuns',
      'regexUnits',
      'gateUnits',
      'decodes',
    ] as const) {
      assert.ok(b[k] <= 8 * a[k] * 1.1 + 1000, `${name}: ${k} ${a[k]} → ${b[k]} is not linear`)
    }
    // And bounded in absolute terms: the budget (64 units per input byte + 1 MiB).
    assert.ok(b.regexUnits <= 64 * big.length + MB, `${name}: regexUnits ${b.regexUnits}`)
    assert.ok(b.bytesScanned <= 3 * big.length, `${name}: bytesScanned ${b.bytesScanned}`)
    // Each character is looked at by the gates at most once per gated detector (and once more at
    // each gated keyword's end).
    const gated = BUILTIN_DETECTORS.filter((d) => d.gate !== undefined).length
    assert.ok(b.gateUnits <= gated * big.length + b.keywordHits, `${name}: gateUnits ${b.gateUnits}`)
  }
})

test('construction compiles no pattern; compileAll compiles every built-in detector', () => {
  const fresh = new SecretScanner(BUILTIN_DETECTORS)
  const compiled = () =>
    (fresh as unknown as { compiled: { core: unknown }[] }).compiled.filter((c) => c.core !== undefined)
      .length
  assert.equal(compiled(), 0)
  fresh.scan('GET /orders/42 200 12ms "https://app.example.com/orders"')
  assert.equal(compiled(), 0, 'a keyword that fails its gate compiles nothing')
  fresh.scan(`token: ${fakes.crcToken('ghp_')}`)
  assert.ok(compiled() >= 1 && compiled() <= 3, `${compiled()} compiled`)
  fresh.compileAll()
  assert.equal(compiled(), BUILTIN_DETECTORS.length)
})

test('gates: keyword occurrences that cannot start a match run no pattern', () => {
  // What real code says around keywords without holding a secret: a call after a name, a URL
  // without credentials, a prefix followed by a character its token cannot have, a wrong case.
  const lines = [
    'const ok = await verifyToken(req)',
    'for (const t of tokens.map(String)) secrets.push(t)',
    'fetch("https://api.example.com/v1/orders?page=2")',
    '// a key-value store, behind the api-gateway',
    'if (user.password) hash(user.password)',
    'credit (EUR), cards.length',
    'import { ApiKeyStore } from "./api_key/store.js"',
    '{"principal":"bench-user","locale":"en-us","note":"no-user-data"}',
  ]
  const text = Buffer.from(`${lines.join('\n')}\n`.repeat(2000))
  const { matches, stats } = scanner.scan(text)
  assert.equal(matches.length, 0)
  assert.ok(stats.keywordHits >= 2000 * 8, `keyword hits ${stats.keywordHits}`)
  assert.equal(stats.regexRuns, 0)
})

test('a 10 MB line without keywords costs one pass and no pattern run', () => {
  const line = Buffer.from('q'.repeat(10 << 20))
  const s = scanner.scan(line).stats
  assert.equal(s.regexRuns, 0)
  assert.equal(s.keywordHits, 0)
})

test('nested encodings: base64 and percent-encoded secrets are found, depth 2 at most', () => {
  const tok = fakes.crcToken('ghp_')
  const once = Buffer.from(`x=${tok}`).toString('base64')
  const twice = Buffer.from(`y ${once} z`).toString('base64')
  const thrice = Buffer.from(`w ${twice} v`).toString('base64')
  const r1 = scanner.scan(`data: ${once}`).matches
  assert.deepEqual(
    r1.map((m) => [m.detector.id, m.encodings]),
    [['github-pat', ['base64']]],
  )
  assert.equal(r1[0]?.secret, tok)
  const r2 = scanner.scan(`data: ${twice}`).matches
  assert.deepEqual(
    r2.map((m) => m.encodings),
    [['base64', 'base64']],
  )
  assert.equal(scanner.scan(`data: ${thrice}`).matches.length, 0, 'depth 3 is not decoded')
  const pct = scanner.scan(
    `GET /cb?u=https%3A%2F%2Fdeploy%3A${'Zq8'}xT4mW9pL2vR7k%40artifacts.internal%2Fx`,
  ).matches
  assert.deepEqual(
    pct.map((m) => [m.detector.id, m.encodings]),
    [['basic-auth-url', ['percent']]],
  )
})

test('mask: secrets replaced in place, prefix kept for prefixed tokens; no keyword → same string', () => {
  const tok = fakes.crcToken('ghp_')
  const text = `GET /x?access_token=${tok}&page=2 password="${'hunter2hunter2'}"`
  const masked = scanner.mask(text)
  assert.ok(!masked.includes(tok))
  assert.ok(masked.includes('ghp_***'))
  assert.ok(!masked.includes('hunter2hunter2'))
  const plain = 'GET /orders/42 200 12ms'
  assert.equal(scanner.mask(plain), plain)
  assert.equal(applyMasks('abc', []), 'abc')
  assert.equal(redactValue(tok), 'ghp_***')
  assert.equal(redactValue('short'), '***')
})
