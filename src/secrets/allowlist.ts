/**
 * Values that look like secrets but are not: documented example keys (kept here as SHA-256
 * hashes, so this file trips no other scanner), placeholders (`xxxx`, `<token>`, `${VAR}`,
 * `{{ secret }}`, `changeme`, `your_api_key`, `my-top-secret`, the `pass` of
 * `http://user:pass@…` and the other metasyntactic words documentation uses; `notasecret`, the
 * password Google publishes for every service-account P12 file) and values with too little
 * variety to be random.
 */
import { createHash } from 'node:crypto'

/**
 * SHA-256 (hex) of example credentials that providers publish in their documentation (the AWS
 * docs' examples end in EXAMPLE / EXAMPLEKEY and are caught as placeholders): the jwt.io
 * example token, GitHub's documented example OAuth token (gho_16C7…), Stripe's documented test
 * keys (sk_test_4eC3…, sk_test_BQok…), Slack's documented bot token (xoxb-1765…), the example
 * credentials of the OAuth RFCs (5849, 6749, 6750) and PyJWT's example token.
 */
export const EXAMPLE_KEY_HASHES: ReadonlySet<string> = new Set([
  '7f75367e7881255134e1375e723d1dea8ad5f6a4fdb79d938df1f1754a830606', // jwt.io's example token
  'bc3ae723f57c6b9e3fd80b699fcc420f6074b0b1718039669d22631d508ac0a7', // GitHub docs: gho_16C7…
  '3543c50b0cb9cea8e55eb1f529b79f043cb250d485fde7b66cabbb5183add7da', // the same as ghp_16C7…
  '2cafc0970149a84f3b9e62eaf169f36f59907a3b3e31f7b82e68c69cd27f7326', // Stripe docs: sk_test_4eC3…
  'f2d6ca16515033e5dce14eba840b979d27b5cbae24bb3e5bf484339667f86397', // Stripe docs: sk_test_BQok…
  '2ddc147f3a3b5a1722b8ed6be3c45c49a7156b17fca5d11410137a6d04def6eb', // Slack docs: xoxb-1765…
  // RFC 6749 (OAuth 2.0): the access token, refresh token, client credentials (Basic) and code
  // of its examples; RFC 6750: its bearer token.
  '6c96130f130ab0d6d158397e24d2bcc1c9a5e73ae081f6e983f1c7b545d24a4c', // 2YotnF…
  '00cf4c781dc37003f7c7dd7d4c9a6ef1e0f4c62d9a291aa8bc398774e3fefd32', // tGzv3J…
  'ca7459e2b26776de081b9a07e40227fd6cff232a1e3233ff6b6aa6d036ca9981', // czZCaG…
  'a35b81a7d7927b70ec99270dd2362b88580a28574af812f2c02f56469579186f', // SplxlO…
  'b8e148545b13c78bc74da2f1a7275dd71e56ddece129d7d2f7b3ecc06f7994da', // mF_9.B…
  // RFC 5849 (OAuth 1.0): the consumer key and secret, temporary and token credentials of its
  // examples (sections 1.2 and 3.1).
  '293257ab6495ebb11cf9e4aee0686ca30df8de2ab8d251f2cbbcf177bdfcae91', // dpf43f…
  'cb87c87e4a138d9a72259d2a01bab15623c9846e568c1509b287721645a6ea53', // kd94hf…
  'bb9b1163338b2a51495834ad5c65420443d6327381cf0f94ebf92b117f209d72', // nnch73…
  '649e1f5c769e718ba10d1a702a36499a731441d960b06da91c4c97786bf84595', // pfkkdh…
  '4c20e6f5cc11b93731e74cbe20739821d61c3563c9f50ecb884a27cd369f01fb', // hh5s93…
  '6aa14267d94944e6b6483c81f5ad37f87bbc7e88aa368d4aba1e71e0b79cd8c4', // hdhd02…
  '80f8b7c904d4a43f3b7036db73247daafe15b3f647b337d19031ff67b7c1a177', // 9djdj8…
  '2ff8b0fb93aca981c78f1e94355c298c23435461f1072ef4674848e620371787', // kkk9d7…
  '9d03b692e941d5ace207a9f8048834439f6de98e5c6c1590c22c4f4577c88a42', // ad180j…
  // PyJWT's README: its example token (HS256, payload {"some": "payload"}).
  'bf145d9380bbe05bdc1a72525796b224f8a8c93ae0e9e102eafbc255ac1af9e8', // eyJhbG…
])

/** sha256 hex of a string (UTF-8). */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

const PLACEHOLDER_RE =
  /example|xxxx|placeholder|changeme|change_me|change-me|your[_-]|yourapi|yourkey|yoursecret|<[^>]*>|\$\{|\{\{|\}\}|%s|dummy|sample|redacted|\*\*\*|\.\.\.|insert[_-]?|replace[_-]?me|todo|fixme|sekret|^my[-_ ]?(?:[a-z]+[-_ ]?)?(?:secret|passw|pwd|token|key)|^(?:null|none|undefined|true|false|password|passwd|pass|pwd|pw|secret|token|foo|bar|baz|qux|xyz|test|user|notasecret|123|1234|12345|123456)$/i

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
