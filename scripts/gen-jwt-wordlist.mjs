#!/usr/bin/env node
// Generates src/scanner/checks/jwt-wordlist.ts, the scanner's built-in list of weak JWT (HMAC)
// secrets. Reproduce it with:
//
//   cd /tmp && npm pack zxcvbn@4.4.2 && tar xzf zxcvbn-4.4.2.tgz
//   node scripts/gen-jwt-wordlist.mjs /tmp/package/lib/frequency_lists.js > src/scanner/checks/jwt-wordlist.ts
//   npx biome format --write src/scanner/checks/jwt-wordlist.ts
//
// Sources, in order (most likely first, duplicates dropped):
// 1. Secrets seen in tutorials, framework defaults and leaked configs (hand-assembled below), and
//    their combinations: "<word><sep><word>" for the words secret, jwt, token, key, … with "", "-",
//    "_", in lower, UPPER and Capitalized case, bare and with a common suffix (123, 1, !, a year).
// 2. The 3,000 most common passwords of zxcvbn 4.4.2's "passwords" frequency list (MIT licence,
//    (c) 2012-2016 Dan Wheeler and Dropbox, Inc.; itself built from leaked password sets), less a
//    few slurs and obscenities.
import { readFileSync } from 'node:fs'

const file = process.argv[2]
if (!file) {
  console.error('usage: node scripts/gen-jwt-wordlist.mjs path/to/zxcvbn/lib/frequency_lists.js')
  process.exit(2)
}
const src = readFileSync(file, 'utf8')
const m = /passwords:\s*"([^"]*)"/.exec(src)
if (!m) throw new Error('no passwords list in the file')
const OBSCENE =
  /fuck|shit|pussy|cock|dick|cunt|bitch|asshole|nigg|fag|slut|whore|porn|sex|penis|vagina|blow|suck|tits|boob|horny|anal|cum|rape/i
const passwords = m[1]
  .split(',')
  .filter((w) => w.length >= 3 && !OBSCENE.test(w))
  .slice(0, 3000)

const KNOWN = [
  'secret',
  'Secret',
  'SECRET',
  'secretkey',
  'secret-key',
  'secret_key',
  'SECRET_KEY',
  'mysecret',
  'my-secret',
  'my_secret',
  'mysecretkey',
  'my-secret-key',
  'my_secret_key',
  'supersecret',
  'super-secret',
  'super_secret',
  'supersecretkey',
  'super-secret-key',
  'topsecret',
  'top-secret',
  'jwt',
  'jwtsecret',
  'jwt-secret',
  'jwt_secret',
  'JWT_SECRET',
  'jwtkey',
  'jwt-key',
  'jwt_key',
  'jwtSecret',
  'jwtSecretKey',
  'jwt-secret-key',
  'jwt_secret_key',
  'key',
  'private',
  'privatekey',
  'private-key',
  'password',
  'Password',
  'password1',
  'passw0rd',
  'P@ssw0rd',
  'changeme',
  'changeit',
  'change-me',
  'change_me',
  'CHANGEME',
  'default',
  'admin',
  'administrator',
  'root',
  'test',
  'testing',
  'test123',
  'dev',
  'development',
  'prod',
  'production',
  'staging',
  'example',
  'sample',
  'demo',
  'qwerty',
  'letmein',
  'welcome',
  '123456',
  '12345678',
  '123456789',
  '1234567890',
  'abc123',
  'token',
  'auth',
  'api',
  'apikey',
  'api-key',
  'api_key',
  'hello',
  'shhhhh',
  'shhhhhhared-secret',
  'keyboard cat',
  'your-256-bit-secret',
  'your-384-bit-secret',
  'your-512-bit-secret',
  'your-secret-key',
  'your_jwt_secret',
  'your-jwt-secret',
  'your_secret_key',
  'yoursecretkey',
  'gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr9C',
  'secret123',
  'secretpassword',
  's3cr3t',
  's3cret',
  'n0tsecret',
  'notsecret',
  'not-so-secret',
  'node',
  'express',
  'app',
  'application',
  'random',
  'randomsecret',
  'random-secret',
  'random_secret',
  'random_secret_key',
  'signing-key',
  'signingkey',
  'signing_key',
  'hmac',
  'hmac-secret',
  'hmacsecret',
  'session',
  'session-secret',
  'sessionsecret',
  'session_secret',
  'cookie-secret',
  'access',
  'access-secret',
  'access_token_secret',
  'refresh',
  'refresh-secret',
  'refresh_token_secret',
  'token-secret',
  'token_secret',
  'tokensecret',
  'auth-secret',
  'authsecret',
  'auth_secret',
  'app-secret',
  'appsecret',
  'app_secret',
  'APP_SECRET',
  'SECRET_KEY_BASE',
  'django-insecure',
  'flask-secret',
  'laravel',
  'rails',
  'spring',
  'symfony',
  'ThisIsASecret',
  'thisisasecret',
  'this-is-a-secret',
  'thisismysecret',
  'this_is_my_secret',
  'mysupersecret',
  'mysupersecretkey',
  'my-super-secret',
  'verysecret',
  'very-secret',
  'very_secret',
  'secret1',
  'secret!',
  'Secret123',
  'secretsecret',
  'a-string-secret-at-least-256-bits-long',
  'shared-secret',
  'sharedsecret',
  'server-secret',
  'serversecret',
  'nodejs',
  'javascript',
  'golang',
  'python',
  'java',
  'php',
  'docker',
  'kubernetes',
  'github',
  'gitlab',
  'aws',
  'firebase',
  'supabase',
  'auth0',
  'okta',
  'keycloak',
  'oauth',
  'oauth2',
  'openid',
  'bearer',
  'pass',
  'pwd',
  'qwerty123',
  'password123',
  'admin123',
  'root123',
  'toor',
]

const WORDS = [
  'secret',
  'jwt',
  'token',
  'key',
  'auth',
  'api',
  'app',
  'private',
  'signing',
  'session',
  'access',
  'refresh',
  'hmac',
  'my',
  'super',
  'top',
  'your',
  'default',
  'test',
  'dev',
  'prod',
  'server',
  'backend',
  'user',
  'admin',
  'web',
  'site',
  'login',
  'cookie',
  'hash',
  'salt',
  'encryption',
  'crypto',
  'master',
  'shared',
  'global',
]
const PAIRS = []
for (const a of WORDS)
  for (const b of ['secret', 'key', 'token', 'jwt', 'pass', 'password']) if (a !== b) PAIRS.push([a, b])
const SUFFIXES = ['', '123', '1', '!', '2023', '2024', '2025', '12345']
const combos = []
for (const [a, b] of PAIRS)
  for (const sep of ['', '-', '_'])
    for (const suffix of SUFFIXES) {
      const base = `${a}${sep}${b}`
      combos.push(`${base}${suffix}`)
      if (suffix === '') {
        combos.push(base.toUpperCase())
        combos.push(`${a[0].toUpperCase()}${a.slice(1)}${sep}${b[0].toUpperCase()}${b.slice(1)}`)
      }
    }
const variants = []
for (const w of ['secret', 'jwt', 'token', 'key', 'password', 'changeme', 'admin', 'test'])
  for (const suffix of SUFFIXES) variants.push(`${w}${suffix}`, `${w[0].toUpperCase()}${w.slice(1)}${suffix}`)

const seen = new Set()
const out = []
for (const w of [...KNOWN, ...variants, ...combos, ...passwords]) {
  if (w.length === 0 || w.length > 128 || seen.has(w) || /[\n\r]/.test(w)) continue
  seen.add(w)
  out.push(w)
}

const text = out.join('\n')
process.stdout.write(`/**
 * The built-in wordlist of weak JWT (HMAC) secrets: ${out.length} entries. GENERATED by
 * scripts/gen-jwt-wordlist.mjs (see there to reproduce it): secrets from tutorials, framework
 * defaults and leaked configs and their combinations, then the 3,000 most common passwords of
 * zxcvbn 4.4.2's "passwords" frequency list (MIT licence, (c) 2012-2016 Dan Wheeler and Dropbox,
 * Inc.), less a few slurs and obscenities. Do not edit by hand.
 */
const WORDS = ${JSON.stringify(text)}

export const JWT_WORDLIST: readonly string[] = WORDS.split('\\n')
`)
