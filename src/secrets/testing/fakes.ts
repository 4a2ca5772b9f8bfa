/**
 * Fake credentials made at test time from parts: random characters of the right alphabet and
 * length, with valid checksums where the format has one (GitHub, npm, Portcullis), real key
 * material for PEM blocks. Literal fake tokens in the repository would trip other scanners (push
 * protection); these exist only while a test runs. Seeded, so a failure can be replayed.
 */
import { generateKeyPairSync } from 'node:crypto'
import { BASE62, checksum, crc32 } from '../../keys/format.js'
import { prng } from '../../util/prng.js'

const ALPHABETS: Record<string, string> = {
  a: BASE62,
  h: '0123456789abcdef',
  H: '0123456789ABCDEF',
  d: '0123456789',
  u: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  l: '0123456789abcdefghijklmnopqrstuvwxyz',
  L: 'abcdefghijklmnopqrstuvwxyz',
  A: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  b: `${BASE62}+/`,
  w: `${BASE62}_-`,
  B32: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567',
  bech: 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L',
}

export class Fakes {
  private readonly rand: () => number
  constructor(seed = 16) {
    this.rand = prng(seed)
  }

  /** `n` random characters of an alphabet; at least one letter and one digit when it has both. */
  chars(alphabet: string, n: number): string {
    const abc = ALPHABETS[alphabet] ?? alphabet
    for (let attempt = 0; ; attempt++) {
      let s = ''
      for (let i = 0; i < n; i++) s += abc[Math.floor(this.rand() * abc.length)]
      const needMix = /[0-9]/.test(abc) && /[A-Za-z]/.test(abc) && n >= 6
      if (!needMix || attempt > 20 || (/[0-9]/.test(s) && /[A-Za-z]/.test(s))) return s
    }
  }

  /** A token `<prefix>` + 30 base62 + their CRC32 in 6 base62 (GitHub, npm, Portcullis). */
  crcToken(prefix: string, valid = true): string {
    const random = this.chars('a', 30)
    let sum = checksum(random)
    if (!valid) sum = checksum(`${random}x`) === sum ? '000000' : checksum(`${random}x`)
    return `${prefix}${random}${sum}`
  }

  uuid(): string {
    const h = (n: number) => this.chars('h', n)
    return `${h(8)}-${h(4)}-4${h(3)}-a${h(3)}-${h(12)}`
  }

  /** A card number of `prefix` and `length` with a valid (or, `valid: false`, a wrong) Luhn digit. */
  card(prefix: string, length: number, valid = true): string {
    let d = prefix + this.chars('d', length - prefix.length - 1)
    let sum = 0
    for (let i = 0; i < d.length; i++) {
      let n = d.charCodeAt(d.length - 1 - i) - 48
      if (i % 2 === 0) {
        n *= 2
        if (n > 9) n -= 9
      }
      sum += n
    }
    const check = (10 - (sum % 10)) % 10
    d += String(valid ? check : (check + 1) % 10)
    return d
  }

  /** A signed-looking JWT (HS256 header, JSON payload, random signature). */
  jwt(): string {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
    return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: this.chars('a', 12), iat: 1700000000 + Math.floor(this.rand() * 1e6), scope: 'read write' })}.${this.chars('w', 43)}`
  }

  /** A real PEM private key of the given kind. */
  pem(kind: 'rsa' | 'ec' | 'pkcs8' | 'encrypted' | 'dsa'): string {
    if (kind === 'rsa')
      return generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
        type: 'pkcs1',
        format: 'pem',
      }) as string
    if (kind === 'ec')
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
        type: 'sec1',
        format: 'pem',
      }) as string
    if (kind === 'dsa') {
      // A DSA-labelled block with a DER SEQUENCE body (Node no longer makes DSA keys quickly).
      const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0xbb]), Buffer.from(this.chars('a', 443))])
      return `-----BEGIN DSA PRIVATE KEY-----\n${wrap(der.toString('base64'))}\n-----END DSA PRIVATE KEY-----\n`
    }
    const { privateKey } = generateKeyPairSync('ed25519')
    if (kind === 'encrypted')
      return privateKey.export({
        type: 'pkcs8',
        format: 'pem',
        cipher: 'aes-256-cbc',
        passphrase: 'pw',
      }) as string
    return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  }

  /** An OpenSSH-format private key block (openssh-key-v1 magic + random body). */
  openssh(): string {
    const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), Buffer.from(this.chars('a', 300))])
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${wrap(body.toString('base64'), 70)}\n-----END OPENSSH PRIVATE KEY-----\n`
  }

  /** A PGP secret key block (an OpenPGP packet tag byte + random body). */
  pgp(): string {
    const body = Buffer.concat([Buffer.from([0x95, 0x03, 0xc6]), Buffer.from(this.chars('a', 400))])
    return `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${wrap(body.toString('base64'))}\n=${this.chars('b', 4)}\n-----END PGP PRIVATE KEY BLOCK-----\n`
  }

  /** base64 of `user:password`. */
  basic(): string {
    return Buffer.from(`${this.chars('L', 6)}:${this.chars('a', 14)}`).toString('base64')
  }

  /**
   * Expands a template: `{a:36}` random base62, `{h:32}` hex, `{H:n}` upper hex, `{d:n}` digits,
   * `{u:n}` upper alnum, `{l:n}` lower alnum, `{L:n}` lower letters, `{A:n}` letters, `{b:n}`
   * base64, `{w:n}` base64url, `{B32:n}` base32, `{uuid}`, `{crc:PREFIX}` / `{badcrc:PREFIX}`,
   * `{jwt}`, `{basic}`.
   */
  fill(template: string): string {
    return template.replace(/\{([A-Za-z0-9]+)(?::([^}]+))?\}/g, (whole, kind: string, arg?: string) => {
      if (kind === 'uuid') return this.uuid()
      if (kind === 'crc') return this.crcToken(arg ?? '')
      if (kind === 'badcrc') return this.crcToken(arg ?? '', false)
      if (kind === 'jwt') return this.jwt()
      if (kind === 'basic') return this.basic()
      if (ALPHABETS[kind] !== undefined && arg !== undefined) return this.chars(kind, Number(arg))
      return whole
    })
  }
}

function wrap(s: string, width = 64): string {
  const lines: string[] = []
  for (let i = 0; i < s.length; i += width) lines.push(s.slice(i, i + width))
  return lines.join('\n')
}

/** CRC32 of a string, re-exported for tests that build checksummed values by hand. */
export { crc32 }
