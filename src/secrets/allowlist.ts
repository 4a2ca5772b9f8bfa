/**
 * Values that look like secrets but are not: documented example keys (kept here as SHA-256
 * hashes, so this file trips no other scanner), placeholders (`xxxx`, `<token>`, `${VAR}`,
 * `{{ secret }}`, `changeme`, `your_api_key`, `my-top-secret`, the `pass` of `http://user:pass@…` and the other
 * metasyntactic words documentation uses; `notasecret`, the password Google publishes for every
 * service-account P12 file) and values with too little variety to be random.
 */
import { createHash } from 'node:crypto'

/**
 * SHA-256 (hex) of example credentials that providers publish in their documentation (the AWS
 * docs' examples end in EXAMPLE / EXAMPLEKEY and are caught as placeholders): the jwt.io
 * example token, GitHub's documented example OAuth token (gho_16C7…), Stripe's documented test
 * keys (sk_test_4eC3…, sk_test_BQok…) and Slack's documented bot token (xoxb-1765…).
 */
export const EXAMPLE_KEY_HASHES: ReadonlySet<string> = new Set([
  '7f75367e7881255134e1375e723d1dea8ad5f6a4fdb79d938df1f1754a830606', // jwt.io's example token
  'bc3ae723f57c6b9e3fd80b699fcc420f6074b0b1718039669d22631d508ac0a7', // GitHub docs: gho_16C7…
  '3543c50b0cb9cea8e55eb1f529b79f043cb250d485fde7b66cabbb5183add7da', // the same as ghp_16C7…
  '2cafc0970149a84f3b9e62eaf169f36f59907a3b3e31f7b82e68c69cd27f7326', // Stripe docs: sk_test_4eC3…
  'f2d6ca16515033e5dce14eba840b979d27b5cbae24bb3e5bf484339667f86397', // Stripe docs: sk_test_BQok…
  '2ddc147f3a3b5a1722b8ed6be3c45c49a7156b17fca5d11410137a6d04def6eb', // Slack docs: xoxb-1765…
])

/** sha256 hex of a string (UTF-8). */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

const PLACEHOLDER_RE =
  /example|xxxx|placeholder|changeme|change_me|change-me|your[_-]|yourapi|yourkey|yoursecret|<[^>]*>|\$\{|\{\{|\}\}|%s|dummy|sample|redacted|\*\*\*|\.\.\.|insert[_-]?|replace[_-]?me|todo|fixme|sekret|^my[-_ ]?(?:[a-z]+[-_ ]?)?(?:secret|passw|pwd|token|key)|^(?:null|none|undefined|true|false|password|passwd|pass|pwd|pw|secret|token|foo|bar|baz|qux|xyz|test|user|notasecret)$/i

/** Why a candidate value is allowed (not reported), or undefined when it is not. */
export function allowedValue(
  secret: string,
  exampleHashes: ReadonlySet<string> = EXAMPLE_KEY_HASHES,
): string | undefined {
  if (PLACEHOLDER_RE.test(secret)) return 'placeholder'
  // A reference to a variable rather than a value: $VAR, %VAR%, env(VAR), process.env.X.
  if (/^(?:\$[A-Za-z_(]|%[A-Za-z_]+%$|env\(|process\.env|os\.environ|getenv)/.test(secret)) return 'variable'
  if (lowVariety(secret)) return 'low-variety'
  if (exampleHashes.has(sha256Hex(secret))) return 'documented-example'
  // base64 of a placeholder (a Kubernetes Secret's `data:` value, an `_auth=`): decode once.
  if (secret.length >= 8 && secret.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
    const text = Buffer.from(secret, 'base64').toString('latin1')
    if (/^[\x20-\x7e]+$/.test(text) && (PLACEHOLDER_RE.test(text) || lowVariety(text)))
      return 'encoded-placeholder'
  }
  return undefined
}

/**
 * True when the value (after a provider prefix such as `ghp_`) uses very few distinct characters
 * or is a plain run (`aaaa…`, `0123456789…`, `abcdef…`).
 */
export function lowVariety(secret: string): boolean {
  const body = secret.replace(/^[A-Za-z]{2,8}[_-]/, '')
  if (body.length < 8) return false
  const distinct = new Set(body).size
  if (distinct <= 3) return true
  let runs = 0
  for (let i = 1; i < body.length; i++) {
    const d = body.charCodeAt(i) - body.charCodeAt(i - 1)
    if (d === 1 || d === 0) runs++
  }
  return runs >= body.length * 0.8
}
