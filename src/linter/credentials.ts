/**
 * Credentials in spec examples. One function, `findCredential`: the secrets engine's built-in
 * detectors (src/secrets, the same ones `portcullis secrets` runs: provider key formats, private
 * keys, JWTs, generic assignments), then one rule of the linter's own for example values: a
 * secret-looking value under a secret-sounding key (`password: Summer2024!`), which the engine,
 * tuned for source code, leaves alone. Nothing here logs or returns the value, only its kind.
 */
import { BUILTIN_DETECTORS } from '../secrets/detectors/index.js'
import { SecretScanner } from '../secrets/engine.js'

export interface CredentialHit {
  /** What it looks like: the engine detector's name, or `password`, `token`, `secret`. */
  kind: string
}

let scanner: SecretScanner | undefined

/** Values that are obviously placeholders, not credentials. */
const PLACEHOLDER =
  /^(\*+|x+|\.+|-+|string|password|secret|token|changeme|change-me|example|sample|test|demo|redacted|hidden|null|none|<[^>]*>|\{[^}]*\}|\$\{[^}]*\}|your[_-]?\w*|my[_-]?\w*|\w*[_-]?here)$/i

/** Whether a property name says its value is a secret (password, apiKey, clientSecret...). */
const SECRET_KEY =
  /^(password|passwd|pwd|passphrase|secret|clientsecret|apikey|apisecret|privatekey|accesskey|secretaccesskey|secretkey|accesstoken|refreshtoken|token|authtoken|bearertoken)$/

/**
 * Whether a string value (found under property `key`, if any) is a credential.
 *
 * @example
 * findCredential('-----BEGIN RSA PRIVATE KEY-----\nMIIE…') // → { kind: 'RSA private key' } (the engine's name)
 * findCredential('alice-password-1', 'password') // → { kind: 'password' }
 */
export function findCredential(value: string, key?: string): CredentialHit | undefined {
  if (value.length > 10_000) return undefined
  // Built on first use: a spec without examples never pays for compiling the detectors.
  scanner ??= new SecretScanner(BUILTIN_DETECTORS)
  const text = key !== undefined ? `${key}: ${value}` : value
  if (scanner.hasKeyword(text)) {
    const m = scanner
      .scan(text, { decode: false, budgetFactor: 16 })
      .matches.find((x) => value.includes(x.secret))
    if (m !== undefined) return { kind: m.detector.name }
  }
  if (key !== undefined) {
    const k = key.toLowerCase().replace(/[_\-.]/g, '')
    // A value under a secret-sounding key counts when it looks like one: letters with digits or
    // symbols (`Summer2024!`), or long and mixed (`3q2-7wFvR8nYb0xQm4pL`); `oa_citations` does not.
    const v = value.trim()
    const mixed = /[A-Za-z]/.test(v) && /[0-9!@#$%^&*()+=?.,;:~-]/.test(v)
    const long = v.length >= 20 && /[a-z]/.test(v) && /[A-Z0-9]/.test(v)
    if (SECRET_KEY.test(k) && v.length >= 6 && (mixed || long) && !PLACEHOLDER.test(v) && !/\s/.test(v)) {
      return {
        kind: k.includes('token') ? 'token' : k.includes('pass') || k === 'pwd' ? 'password' : 'secret',
      }
    }
  }
  return undefined
}
