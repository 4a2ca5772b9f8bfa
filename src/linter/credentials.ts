/**
 * Credentials in spec examples. One function, `findCredential`, so the secrets engine
 * (src/secrets/, being written) can replace this small shared pattern set without touching the
 * rules. Patterns are fixed, anchored on distinctive prefixes and run on bounded strings, so they
 * cannot backtrack badly; nothing here logs or returns the value itself, only its kind.
 */

export interface CredentialHit {
  /** What it looks like: `AWS access key id`, `password`, ... */
  kind: string
}

const PATTERNS: { kind: string; re: RegExp }[] = [
  { kind: 'AWS access key id', re: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: 'GitHub token', re: /\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}/ },
  { kind: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: 'Stripe live key', re: /\b(sk|rk)_live_[A-Za-z0-9]{16,}/ },
  { kind: 'Google API key', re: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { kind: 'private key', re: /-----BEGIN (RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY( BLOCK)?-----/ },
  { kind: 'JSON Web Token', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/ },
  { kind: 'URL with a password', re: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:[^\s:/@]{3,}@[^\s/]+/i },
]

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
 * findCredential('AKIAIOSFODNN7EXAMPLE') // → { kind: 'AWS access key id' }
 * findCredential('alice-password-1', 'password') // → { kind: 'password' }
 */
export function findCredential(value: string, key?: string): CredentialHit | undefined {
  if (value.length > 10_000) return undefined
  for (const p of PATTERNS) if (p.re.test(value)) return { kind: p.kind }
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
