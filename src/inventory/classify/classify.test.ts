import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DATA_CLASSES, regulationsOf } from './classes.js'
import { scanForm, scanHeaders, scanJson, scanText } from './scan.js'
import {
  isAadhaar,
  isBrazilCpf,
  isCanadaSin,
  isDate,
  isDutchBsn,
  isEmail,
  isIban,
  isIpv4,
  isIpv6,
  isJwt,
  isKnownCredential,
  isPaymentCard,
  isPhone,
  isSpanishDniNie,
  isUkNino,
  isUsSsn,
  luhn,
  verhoeff,
} from './validators.js'

// Ground truth: published test numbers and documentation examples (valid), and the same with one
// digit changed, a wrong length or a never-issued range (invalid).
const JWT = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.c2lnbmF0dXJl`

describe('validators', () => {
  test('payment cards: network test numbers pass; Luhn failures, unknown prefixes and repeats do not', () => {
    for (const ok of [
      '4111111111111111',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '5555555555554444',
      '2223003122003222',
      '378282246310005',
      '6011111111111117',
      '3530111333300000',
      '30569309025904',
      '6200000000000005',
    ])
      assert.equal(isPaymentCard(ok), true, ok)
    for (const bad of [
      '4111111111111112',
      '1234567812345670',
      '0000000000000000',
      '4444444444444444',
      '41111111111111111111',
      '411111111111',
      '4111_1111_1111_1111',
      '5555 5555 5555 4445',
      '12345678901234',
    ])
      assert.equal(isPaymentCard(bad), false, bad)
    assert.equal(luhn('79927398713'), true)
    assert.equal(luhn('79927398710'), false)
  })

  test('IBAN: ISO 13616 examples pass mod 97 and their country length; altered ones do not', () => {
    for (const ok of [
      'DE89370400440532013000',
      'GB82WEST12345698765432',
      'GB82 WEST 1234 5698 7654 32',
      'FR1420041010050500013M02606',
      'NL91ABNA0417164300',
      'CH9300762011623852957',
    ])
      assert.equal(isIban(ok), true, ok)
    for (const bad of [
      'DE89370400440532013001',
      'GB82WEST1234569876543',
      'XX89370400440532013000',
      'de89370400440532013000',
      'DE8937040044053201300',
    ])
      assert.equal(isIban(bad), false, bad)
  })

  test('US SSN: allocation rules', () => {
    assert.equal(isUsSsn('536-22-1234'), true)
    assert.equal(isUsSsn('536221234'), false, 'bare digits need a hint')
    assert.equal(isUsSsn('536221234', true), true)
    for (const bad of [
      '000-12-3456',
      '666-12-3456',
      '912-34-5678',
      '536-00-1234',
      '536-22-0000',
      '078-05-1120',
      '123-45-6789',
    ])
      assert.equal(isUsSsn(bad), false, bad)
  })

  test('national ids: NINO, DNI/NIE, CPF, BSN, SIN, Aadhaar (Verhoeff)', () => {
    assert.equal(isUkNino('AB123456C'), true)
    assert.equal(isUkNino('AB 12 34 56 C'), true)
    for (const bad of ['BG123456C', 'DA123456A', 'AB123456E', 'AO123456A'])
      assert.equal(isUkNino(bad), false, bad)
    assert.equal(isSpanishDniNie('12345678Z'), true)
    assert.equal(isSpanishDniNie('12345678A'), false)
    assert.equal(isSpanishDniNie('X1234567L'), true)
    assert.equal(isSpanishDniNie('X1234567T'), false)
    assert.equal(isBrazilCpf('111.444.777-35'), true)
    assert.equal(isBrazilCpf('111.444.777-36'), false)
    assert.equal(isBrazilCpf('111.111.111-11'), false)
    assert.equal(isBrazilCpf('11144477735'), false, 'bare needs a hint')
    assert.equal(isBrazilCpf('11144477735', true), true)
    assert.equal(isDutchBsn('111222333'), true)
    assert.equal(isDutchBsn('123456782'), true)
    assert.equal(isDutchBsn('123456789'), false)
    assert.equal(isCanadaSin('130 692 544'), true)
    assert.equal(isCanadaSin('130 692 545'), false)
    assert.equal(isCanadaSin('046 454 286'), false, 'first digit 0: fictitious numbers only')
    // Verhoeff: Wikipedia's worked example (236 → check digit 3).
    assert.equal(verhoeff('2363'), true)
    assert.equal(verhoeff('2364'), false)
    // Exactly one check digit completes an 11-digit Aadhaar prefix.
    const prefix = '23412341234'
    const passing = [...'0123456789'].filter((d) => isAadhaar(prefix + d))
    assert.equal(passing.length, 1)
    assert.equal(isAadhaar(`1${prefix.slice(1)}${passing[0]}`), false, 'first digit 2-9')
  })

  test('email, phone, IP, dates, JWT, credentials', () => {
    for (const ok of ['alice@example.com', 'a.b+tag@sub.example.co.uk', 'x_y@ex-ample.io'])
      assert.equal(isEmail(ok), true, ok)
    for (const bad of ['a@b', '@example.com', 'alice@', 'a..b@example.com', 'alice@example', 'not an email'])
      assert.equal(isEmail(bad), false, bad)
    assert.equal(isPhone('+44 20 7946 0958'), true)
    assert.equal(isPhone('+1 (415) 555-2671'), true)
    assert.equal(isPhone('415-555-2671'), false, 'national format needs a hint')
    assert.equal(isPhone('415-555-2671', true), true)
    assert.equal(isPhone('+0 12345678'), false)
    assert.equal(isIpv4('203.0.113.7'), true)
    assert.equal(isIpv4('256.1.1.1'), false)
    assert.equal(isIpv4('01.2.3.4'), false)
    assert.equal(isIpv6('2001:db8::1'), true)
    assert.equal(isIpv6('::ffff:192.0.2.1'), true)
    assert.equal(isIpv6('2001:db8:::1'), false)
    assert.equal(isIpv6('12:30'), false)
    assert.equal(isDate('1990-02-28'), true)
    assert.equal(isDate('1990-02-30'), false)
    assert.equal(isDate('31/12/1980'), true)
    assert.equal(isJwt(JWT), true)
    assert.equal(isJwt('eyJhbGciOi.not.ajwt'), false)
    assert.equal(isKnownCredential('AKIAIOSFODNN7EXAMPLE'), true)
    assert.equal(isKnownCredential(`ghp_${'a1B2'.repeat(9)}`), true)
    assert.equal(isKnownCredential('postgres://app:s3cret@db.internal:5432/app'), true)
    assert.equal(isKnownCredential('https://example.com/path'), false)
  })
})

function collect(fn: (sink: (c: string, p: string) => void) => void): Map<string, string[]> {
  const out = new Map<string, string[]>()
  fn((c, p) => out.set(c, [...(out.get(c) ?? []), p]))
  return out
}

describe('scan', () => {
  test('a JSON body: each class at its field path', () => {
    const body = {
      user: {
        id: 42,
        email: 'alice@example.com',
        phone: '415-555-2671',
        dateOfBirth: '1990-02-28',
        ssn: '536-22-1234',
        password: 'hunter2!',
        location: { lat: 48.85837, lng: 2.294481 },
      },
      payments: [
        { card: '4111 1111 1111 1111', cvv: '123', iban: 'DE89370400440532013000' },
        { card: '5555555555554444', cvv: '4567', iban: 'GB82WEST12345698765432' },
      ],
      session: { token: JWT, apiKey: 'AKIAIOSFODNN7EXAMPLE' },
      lastLoginIp: '203.0.113.7',
      note: 'call me back at +44 20 7946 0958 or write to bob@example.org please',
    }
    const found = collect((sink) => scanJson(body, sink))
    assert.deepEqual(found.get('email'), ['$.user.email', '$.note'])
    assert.deepEqual(found.get('phone'), ['$.user.phone'])
    assert.deepEqual(found.get('date-of-birth'), ['$.user.dateOfBirth'])
    assert.deepEqual(found.get('us-ssn'), ['$.user.ssn'])
    assert.deepEqual(found.get('password'), ['$.user.password'])
    assert.deepEqual(found.get('geo-location'), ['$.user.location'])
    assert.deepEqual(found.get('payment-card'), ['$.payments[].card', '$.payments[].card'])
    assert.deepEqual(found.get('card-security-code'), ['$.payments[].cvv', '$.payments[].cvv'])
    assert.deepEqual(found.get('iban'), ['$.payments[].iban', '$.payments[].iban'])
    assert.deepEqual(found.get('jwt'), ['$.session.token'])
    assert.deepEqual(found.get('credential'), ['$.session.apiKey'])
    assert.deepEqual(found.get('ip-address'), ['$.lastLoginIp'])
  })

  test('no false positives on ordinary API data', () => {
    const body = {
      id: 1234567890123,
      orderId: '4111111111111112',
      createdAt: '2024-05-01T10:00:00Z',
      version: '1.2.3.4',
      uuid: '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
      total: 49.9,
      quantity: 2,
      sku: 'ABC-123-XYZ',
      status: 'shipped',
      description: 'A keyboard with 104 keys, ships in 2-3 days, model 2024-05',
      passwordPolicy: { minLength: 12 },
      passwordResetRequired: false,
      coordinatesNote: 'none',
      phoneCount: 3,
      zip: '75001',
      hash: 'deadbeefdeadbeefdeadbeef',
      token: 'short',
      items: [{ lat: 1, lng: 2 }],
    }
    const found = collect((sink) => scanJson(body, sink))
    assert.deepEqual([...found.keys()], [])
  })

  test('field paths and types are reported for schema inference', () => {
    const seen: string[] = []
    scanJson(
      { a: [{ b: 'x@example.com', c: 1.5 }], d: null, e: true, f: '2024-01-01' },
      () => undefined,
      (p, t) => seen.push(`${p} ${t}`),
    )
    assert.deepEqual(seen, [
      '$ object',
      '$.a array',
      '$.a[] object',
      '$.a[].b string:email',
      '$.a[].c number',
      '$.d null',
      '$.e boolean',
      '$.f string:date',
    ])
  })

  test('query strings, headers and free text', () => {
    const q = collect((sink) =>
      scanForm('email=alice%40example.com&card=4111111111111111&page=2&ip=10.1.2.3', sink),
    )
    assert.deepEqual(Object.fromEntries(q), {
      email: ['?email'],
      'payment-card': ['?card'],
      'ip-address': ['?ip'],
    })
    const h = collect((sink) =>
      scanHeaders(
        {
          authorization: `Bearer ${JWT}`,
          'x-api-key': 'pcl_abc',
          cookie: 'theme=dark; sessionid=0123456789abcdef0123',
          'x-user-email': 'carol@example.com',
          'content-type': 'application/json',
          accept: '*/*',
        },
        sink,
      ),
    )
    assert.deepEqual(Object.fromEntries(h), {
      jwt: ['header:authorization'],
      credential: ['header:x-api-key', 'header:cookie'],
      email: ['header:x-user-email'],
    })
    const t = collect((sink) =>
      scanText(
        'Customer: Jane, card 4111-1111-1111-1111, IBAN GB82 WEST 1234 5698 7654 32, ssn 536-22-1234',
        '$',
        sink,
      ),
    )
    assert.deepEqual([...t.keys()].sort(), ['iban', 'payment-card', 'us-ssn'])
  })

  test('hostile input: deep nesting, huge arrays, long strings and odd keys stay bounded', () => {
    let deep: unknown = 'alice@example.com'
    for (let i = 0; i < 10_000; i++) deep = [deep]
    let calls = 0
    scanJson(
      deep,
      () => calls++,
      () => calls++,
    )
    assert.ok(calls <= 40, `depth bounded (${calls})`)
    const wide = Array.from({ length: 100_000 }, () => 'alice@example.com')
    let hits = 0
    let fields = 0
    scanJson(
      wide,
      () => hits++,
      () => fields++,
    )
    assert.ok(fields <= 5000 && hits <= 5000, `nodes bounded (${fields}, ${hits})`)
    const odd = JSON.parse(
      '{"__proto__": {"email": "a@example.com"}, "constructor": "x", "a.b[c]|d": "4111111111111111"}',
    )
    const found = collect((sink) => scanJson(odd, sink))
    assert.deepEqual(Object.fromEntries(found), {
      email: ['$.__proto__.email'],
      'payment-card': ['$.a%2Eb%5Bc%5D%7Cd'],
    })
    const started = performance.now()
    scanText(`${'1 '.repeat(50_000)}x`, '$', () => undefined)
    scanText(`${'a@'.repeat(50_000)}`, '$', () => undefined)
    scanJson({ s: `${'9'.repeat(100_000)}` }, () => undefined)
    assert.ok(performance.now() - started < 5000, 'no catastrophic backtracking')
  })

  test('every class maps to at least one regulation; the union is reported sorted', () => {
    for (const c of DATA_CLASSES) assert.ok(Object.keys(c.regulations).length > 0, c.id)
    assert.deepEqual(regulationsOf(['payment-card', 'email']), ['ccpa', 'gdpr', 'hipaa', 'pci-dss'])
    assert.deepEqual(regulationsOf(['card-security-code']), ['ccpa', 'pci-dss'])
  })
})
