// Ground truth for the generic detectors on code nobody here wrote. Scanning the project's own
// node_modules (314 MB, 2026-12-08) gave 192 findings, nearly all of them names, references and
// documentation values rather than credentials. Each negative below is one class of them,
// written anew in a different style (TS, JS, d.ts, YAML, Java, Python, env, Markdown); each
// positive is a credential in the same syntax that must still be found. Left reported (no rule
// found that random values cannot also pass): a type named like a secret in a .d.ts
// (`secretRef: IoK8sApiCoreV1SecretReference;`) and a secret's ARN in a comment
// (`…:secret:SecretName-6RandomCharacters`).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { SecretScanner } from './engine.js'
import { runValidator } from './validators.js'

const scanner = new SecretScanner(BUILTIN_DETECTORS)
const found = (text: string): string[] => scanner.scan(text).matches.map((m) => m.detector.id)

const NEGATIVES: [string, string][] = [
  // A constant naming a metric or a setting: the value is a dotted/underscored name that itself
  // says "password" (OpenTelemetry's semantic conventions have dozens).
  [
    'metric name (TS)',
    'export const METRIC_LOGIN_PASSWORD_RESET_ATTEMPTS = "auth.login.password_reset_attempts";',
  ],
  ['enum value (TS)', 'export const RESULT_VALUE_PASSWORD_MISSING = "password_missing";'],
  ['placeholder in a README (YAML)', '  password: "my-top-secret"'],
  ['setting name (Python)', "VALIDATOR_SETTING_PASSWORD = 'django.contrib.auth.password_validation'"],
  // A list of names, not a name and its value.
  ['grant types (JS array)', "const grants = ['implicit', 'password', 'clientCredentials', 'refreshToken'];"],
  ['URL parts (JS array)', "var parts = ['protocol', 'username', 'password', 'hostname', 'port'];"],
  ['column names (Java)', 'List<String> cols = List.of("username", "password", "lastLogin");'],
  // A file that holds the password (Docker secrets), and the working directory (PWD).
  ['Docker secret file (YAML)', '    POSTGRES_PASSWORD_FILE: "/run/secrets/postgres_password"'],
  ['working directory (env dump)', "  env: { PWD: '/home/alice/projects/api', SHELL: '/bin/zsh' },"],
  // Code: a call, a constant re-exported under its own name.
  ['method call (TS)', 'return refreshToken = client2.fetchOAuthRefreshToken(session);'],
  ['constant re-export (CJS)', 'exports.K8S_SECRET_VOLUME_TYPE = K8S_SECRET_VOLUME_TYPE;'],
  // Documentation: a placeholder password in a URL, and Google's published P12 keystore password.
  ['placeholder URL password (Markdown)', 'const proxy = new URL("http://user:pass@example.com:8080")'],
  ['placeholder URL password (test)', "const url = 'http://foo:bar@localhost:' + port"],
  ['P12 keystore password (public default)', 'const GCP_P12_PASSWORD = "notasecret";'],
  ['digits as a URL password (docs)', '// Prints https://abc:123@example.com/'],
  // Found on /usr/lib/python3: keyword arguments, type checks, attribute names, lists, RECORD
  // files of installed packages, the example tokens of the OAuth RFCs.
  ['keyword argument (Python)', '            key_password=self.key_password,'],
  ['argument list (Python)', '    elif isinstance(private_key, ed25519.Ed25519PrivateKey):'],
  ['attribute name (Python dict)', '    AttributeOID.CHALLENGE_PASSWORD: "challengePassword",'],
  ['list of constants (Python)', "   'CURLOPT_MAIL_RCPT', 'CURLOPT_PASSWORD', 'CURLOPT_READDATA',"],
  ['list of paths (copyright file)', '"kadmin/dbutil", "kadmin/passwd", "kadmin/server", "lib/kadm5"'],
  ['list of methods (pg_hba.conf)', '# METHOD can be "trust", "reject", "md5", "password", "scram-sha-256",'],
  ['wheel RECORD line', 'yaml/tokens.py,sha256=lTQIzSVw8Mg9wv459-TjiOQe6wVziqaRlqX2_8gCWk8,2573'],
  ['RFC 6749 example token (JSON)', '{ "access_token":"2YotnFZFEjr1zCsicMWpAA", "token_type":"example" }'],
]

const POSITIVES: [string, string, string][] = [
  ['password literal (TS)', 'export const DB_PASSWORD = "Xk9#mQ2$vL7!pR4z";', 'generic-password'],
  ['password in a call (Java)', 'props.put("password", "Tr0ub4dor&3xyz");', 'generic-password'],
  ['passphrase of words (YAML)', '  password: "correct-horse-battery-staple"', 'generic-password'],
  ['password with its own word (Python)', "ADMIN_PASSWORD = 'password123!'", 'generic-password'],
  ['password of two words and a digit (env)', 'DB_PASSWORD="summer_2024"', 'generic-password'],
  ['secret key (env)', 'SECRET_KEY=9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c', 'generic-api-key'],
  ['api key (YAML)', 'api_key: a8F3kL9mQ2xZ7vB4nR6tY1wE5uI0oP3s', 'generic-api-key'],
  [
    'token in a header map (JS)',
    'headers: { "X-Auth-Token": "Zq8Xw2Lm5Rt9Yp3Kd7Hv1Nb6" },',
    'generic-api-key',
  ],
  [
    'token argument after a comma (Go)',
    'req.Header.Set("X-Api-Token", "Zq8Xw2Lm5Rt9Yp3Kd7Hv1Nb6")',
    'generic-api-key',
  ],
  ['URL password', 'DATABASE=https://svc:Qz7-kLm2x9PwR@db.internal.example.net/app', 'basic-auth-url'],
  ['.npmrc password', '//registry.example.org/:_password=c2VjcjN0LXBhc3N3MHJkIQ==', 'npmrc-auth'],
  [
    'token after a quoted name and a comma (Python)',
    'session.headers.setdefault("X-Auth-Token", "Zq8Xw2Lm5Rt9Yp3Kd7Hv1Nb6")',
    'generic-api-key',
  ],
  [
    'password argument after a comma (Java)',
    'ds.setCredentials("app", "password", "T7#kq9!vLm2$xP")',
    'generic-password',
  ],
]

test('generic detectors: names, lists, references, paths and documented placeholders are not secrets', () => {
  const wrong = NEGATIVES.map(([name, text]) => [name, found(text)] as const).filter(
    ([, ids]) => ids.length > 0,
  )
  assert.deepEqual(wrong, [], `reported: ${wrong.map(([n, ids]) => `${n} → ${ids.join(',')}`).join('; ')}`)
})

test('generic detectors: random values do not pass for names (random base62, 16–40 characters)', () => {
  // Deterministic pseudo-random values (a fixed LCG): the share read as identifiers or constant
  // names stays small (0.06% measured on 200,000 crypto-random values).
  let x = 12345
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    return x >>> 8
  }
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let passed = 0
  const n = 20_000
  for (let i = 0; i < n; i++) {
    let v = ''
    for (let j = 16 + (next() % 25); j > 0; j--) v += A[next() % 62]
    if (!runValidator('not-reference', v) || !runValidator('not-name', v)) passed++
  }
  assert.ok(passed <= n * 0.002, `${passed} of ${n} random values read as names`)
})

test('generic detectors: credentials in the same syntax are still found', () => {
  for (const [name, text, id] of POSITIVES) assert.ok(found(text).includes(id), `${name}: ${id} not found`)
})
