// biome-ignore-all lint/suspicious/noTemplateCurlyInString: placeholders like ${VAR} are test data here
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { SecretScanner } from './engine.js'
import { CONTEXTS, CORPUS } from './testing/corpus.js'
import { Fakes } from './testing/fakes.js'

const fakes = new Fakes(16)
const scanner = new SecretScanner(BUILTIN_DETECTORS)

/** Expands the `@` specials (real key material) and the `{…}` templates. */
function expand(s: string): string {
  const special: Record<string, () => string> = {
    '@gcpsa': () =>
      JSON.stringify(
        {
          type: 'service_account',
          project_id: `p-${fakes.chars('l', 6)}`,
          private_key_id: fakes.chars('h', 40),
          private_key: fakes.pem('pkcs8'),
          client_email: 'svc@p.iam.gserviceaccount.com',
        },
        null,
        2,
      ),
    '@pem:rsa': () => fakes.pem('rsa'),
    '@pem:ec': () => fakes.pem('ec'),
    '@pem:dsa': () => fakes.pem('dsa'),
    '@pem:pkcs8': () => fakes.pem('pkcs8'),
    '@pem:encrypted': () => fakes.pem('encrypted'),
    '@pemjson:rsa': () => JSON.stringify({ key: fakes.pem('rsa') }),
    '@pemjson:ec': () => JSON.stringify({ key: fakes.pem('ec') }),
    '@pemjson:dsa': () => JSON.stringify({ key: fakes.pem('dsa') }),
    '@pemjson:pkcs8': () => JSON.stringify({ key: fakes.pem('pkcs8') }),
    '@pemjson:encrypted': () => JSON.stringify({ key: fakes.pem('encrypted') }),
    '@openssh': () => fakes.openssh(),
    '@pgp': () => fakes.pgp(),
    '@card4': () => fakes.card('4', 16),
    '@card5': () => fakes.card('51', 16),
    '@card3': () => fakes.card('37', 15),
    '@badcard': () => fakes.card('4', 16, false),
    '@b64text': () => Buffer.from(fakes.chars('a', 18)).toString('base64'),
  }
  let out = s
  for (const [k, f] of Object.entries(special)) while (out.includes(k)) out = out.replace(k, f())
  return fakes.fill(out)
}

interface Tally {
  tp: number
  fn: number
  fp: number
}

test('labelled corpus: ≥3 positives and ≥2 near-misses per detector; recall and precision ≥ 95%', () => {
  const tally = new Map<string, Tally>(BUILTIN_DETECTORS.map((d) => [d.id, { tp: 0, fn: 0, fp: 0 }]))
  const t = (id: string) => tally.get(id) as Tally
  const problems: string[] = []
  for (const d of BUILTIN_DETECTORS) {
    const entry = CORPUS[d.id]
    assert.ok(entry, `no corpus entry for detector ${d.id}`)
    const positives = entry.t !== undefined ? CONTEXTS.map((c) => c(entry.t as string)) : (entry.p ?? [])
    assert.ok(positives.length >= 3, `${d.id}: at least 3 positives`)
    assert.ok(entry.n.length >= 2, `${d.id}: at least 2 negatives`)
    const also = new Set(entry.also ?? [])
    for (const tpl of positives) {
      const sample = expand(tpl)
      const found = scanner.scan(Buffer.from(sample)).matches
      if (found.some((m) => m.detector.id === d.id)) t(d.id).tp++
      else {
        t(d.id).fn++
        problems.push(
          `missed ${d.id}: ${JSON.stringify(sample.slice(0, 160))} → [${found.map((m) => m.detector.id)}]`,
        )
      }
      for (const m of found) {
        if (m.detector.id !== d.id && !also.has(m.detector.id)) {
          t(m.detector.id).fp++
          problems.push(
            `false ${m.detector.id} on a ${d.id} positive: ${JSON.stringify(sample.slice(0, 120))}`,
          )
        }
      }
    }
    for (const tpl of entry.n) {
      const sample = expand(tpl)
      for (const m of scanner.scan(Buffer.from(sample)).matches) {
        t(m.detector.id).fp++
        problems.push(`false ${m.detector.id} on a ${d.id} negative: ${JSON.stringify(sample.slice(0, 160))}`)
      }
    }
  }
  let tp = 0
  let fn = 0
  let fp = 0
  const rows: string[] = []
  for (const [id, x] of tally) {
    tp += x.tp
    fn += x.fn
    fp += x.fp
    const recall = x.tp + x.fn === 0 ? 1 : x.tp / (x.tp + x.fn)
    const precision = x.tp + x.fp === 0 ? 1 : x.tp / (x.tp + x.fp)
    rows.push(
      `${id.padEnd(36)} recall ${(recall * 100).toFixed(0).padStart(3)}%  precision ${(precision * 100).toFixed(0).padStart(3)}%`,
    )
  }
  const recall = tp / (tp + fn)
  const precision = tp / (tp + fp)
  console.log(rows.join('\n'))
  console.log(
    `corpus: ${tally.size} detectors, tp ${tp}, fn ${fn}, fp ${fp}: recall ${(recall * 100).toFixed(1)}%, precision ${(precision * 100).toFixed(1)}%`,
  )
  if (problems.length > 0) console.log(problems.join('\n'))
  assert.ok(BUILTIN_DETECTORS.length >= 100, 'at least 100 detectors')
  assert.ok(recall >= 0.95, `recall ${recall}`)
  assert.ok(precision >= 0.95, `precision ${precision}`)
})

test('documented example keys and placeholders stay silent', () => {
  const quiet = [
    'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE',
    'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    'aws_access_key_id = AKIAI44QH8DHBEXAMPLE\naws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY',
    'token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
    'GITHUB_TOKEN=gho_16C7e42F292c6912E7710c838347Ae178B4a',
    'stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"',
    'SLACK_BOT_TOKEN=xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy',
    'API_KEY=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    'api_key: "<token>"',
    'password: "${DB_PASSWORD}"',
    'client_secret = "{{ client_secret }}"',
    'API_TOKEN=your_api_token_here_1234',
    'password = "changeme123"',
    'secret_key = "0123456789abcdef0123"',
    'token: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"',
    'DATABASE_URL=postgres://user:password@localhost/db',
    'Authorization: Bearer YOUR_ACCESS_TOKEN',
    'ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    'sk_live_XXXXXXXXXXXXXXXXXXXXXXXX',
    'AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX',
  ]
  for (const line of quiet) {
    const found = scanner.scan(Buffer.from(line)).matches
    assert.deepEqual(
      found.map((m) => m.detector.id),
      [],
      `should stay silent: ${line}`,
    )
  }
})

test('hasCandidate: true wherever a scan without decoding finds a secret; false when only gates fail', () => {
  // Every corpus sample (positives and near misses): a secret found in clear has a keyword whose
  // cheap checks pass, so the log masks (which skip lines without a candidate) lose nothing.
  let checked = 0
  for (const d of BUILTIN_DETECTORS) {
    const entry = CORPUS[d.id]
    if (!entry) continue
    const positives = entry.t !== undefined ? CONTEXTS.map((c) => c(entry.t as string)) : (entry.p ?? [])
    for (const tpl of [...positives, ...entry.n]) {
      const sample = expand(tpl)
      const found = scanner.scan(sample, { decode: false }).matches
      if (found.length > 0) {
        checked++
        assert.ok(
          scanner.hasCandidate(sample),
          `${d.id}: no candidate in ${JSON.stringify(sample.slice(0, 120))}`,
        )
      }
    }
  }
  assert.ok(checked >= 3 * BUILTIN_DETECTORS.length * 0.9, `only ${checked} samples with a finding`)
  // Keywords in ordinary words, whose gates fail: no candidate, though the keyword pass sees them.
  for (const line of [
    '{"principal":"bench-user","lang":"en-us","region":"us-east-1"}',
    'GET /api/orders/42 200 principal=support-user ua="curl/8.5"',
    'discarded cardinality of the Asia/Tokyo zone',
  ]) {
    assert.equal(scanner.hasKeyword(line), true, `a keyword occurs in ${line}`)
    assert.equal(scanner.hasCandidate(line), false, `no candidate in ${line}`)
    assert.deepEqual(scanner.scan(line, { decode: false }).matches, [])
  }
  // The same words next to a real-looking Mailchimp key: a candidate.
  const key = `${'0123456789abcdef'.repeat(2)}-us6`
  assert.equal(scanner.hasCandidate(`principal=bench-user key=${key}`), true)
})
