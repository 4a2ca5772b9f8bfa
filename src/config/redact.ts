/**
 * The effective config with every secret redacted, for the admin API's `GET /v1/config`. Fails
 * closed: a value is replaced by {@link REDACTED} when any rule says it might be a secret.
 *
 * 1. Every value that came from `${env:…}` or `${file:…}` (the loader's `secretPaths`).
 * 2. Every string (and every string in an array) under a member whose name looks like a secret's:
 *    token, secret, password, passphrase, credential, cookie, authorization, bearer, hmac, jwk,
 *    private…, api-key, or a name ending in `key`/`keys` (`webhookKey`, `keys`) — compared without
 *    case, `-`, `_` and `.` — and everything nested under such a member. Unknown fields of later
 *    policies are covered by the same names; a few schema members that hold no secret despite their
 *    names (`credentialStuffing`, `jwksUrl`, `tokenHeader`, a rate limit's `key` list…) are not. (Policy ids, the members of a `policies` map, are
 *    not judged by name: `api-key-auth` is a policy.)
 * 3. The private members of anything shaped like a JWK (an object with `kty`): `d`, `p`, `q`,
 *    `dp`, `dq`, `qi`, `k`, `oth`.
 * 4. Any string holding PEM armour (`-----BEGIN`), whole; the user-info part of any URL in any
 *    string (`redis://user:pw@host` → `redis://[redacted]@host`).
 * 5. Any other string that contains a value redacted by rules 1–3 (a secret repeated elsewhere).
 *
 * Returns the redacted copy and the paths that were redacted (the values never).
 */
export const REDACTED = '[redacted]'

const SECRET_WORDS = [
  'secret',
  'token',
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'credential',
  'cookie',
  'authorization',
  'bearer',
  'hmac',
  'jwk',
  'private',
  'apikey',
  'signature',
  'salt',
]

/**
 * Members of the config schema whose names contain a secret word but that hold none (a detector's
 * settings, a URL or file of public keys, a header name, a limit); their values stay visible. Rule 4
 * still strips URL credentials inside them.
 */
const NOT_SECRET_MEMBERS = new Set([
  'credentialStuffing',
  'jwksUrl',
  'jwksFile',
  'tokenTypeHint',
  'tokenHeader',
  'forwardToken',
  'maxTokenBytes',
  'maxKeys',
  'onMissingKey',
])

/** Whether member `name` holding `value` is judged a secret by its name (rule 2). */
function secretMember(name: string, value: unknown): boolean {
  if (NOT_SECRET_MEMBERS.has(name)) return false
  // rate-limit's `key` is the list of request parts a limit counts per (`[ip, principal]`).
  if (name === 'key' && Array.isArray(value)) return false
  return secretLikeName(name)
}

const JWK_PRIVATE = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'])

/** Whether a member name looks like a secret's. */
export function secretLikeName(name: string): boolean {
  const n = name.toLowerCase().replace(/[-_.\s]/g, '')
  if (n === '') return false
  if (n.endsWith('key') || n.endsWith('keys')) return true
  return SECRET_WORDS.some((w) => n.includes(w))
}

const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi

function pathOf(segs: readonly (string | number)[]): string {
  let out = ''
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`
    else out += `[${JSON.stringify(s)}]`
  }
  return out
}

export function redactConfig(
  config: unknown,
  secretPaths: ReadonlySet<string>,
): { config: unknown; redacted: string[] } {
  const redacted: string[] = []
  const values = new Set<string>()
  const walk = (v: unknown, segs: (string | number)[], secretKey: boolean, inJwk: boolean): unknown => {
    const path = pathOf(segs)
    const last = segs[segs.length - 1]
    if (typeof v === 'string') {
      const jwkPrivate = inJwk && typeof last === 'string' && JWK_PRIVATE.has(last)
      if (secretPaths.has(path) || secretKey || jwkPrivate || v.includes('-----BEGIN')) {
        redacted.push(path)
        if (v.length >= 6 && !v.includes('-----BEGIN')) values.add(v)
        return REDACTED
      }
      const stripped = v.replace(URL_USERINFO, `$1${REDACTED}@`)
      if (stripped !== v) redacted.push(path)
      return stripped
    }
    if (v === null || typeof v !== 'object') {
      if (secretPaths.has(path)) {
        redacted.push(path)
        return REDACTED
      }
      return v
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...segs, i], secretKey, false))
    const o = v as Record<string, unknown>
    const jwk = typeof o.kty === 'string'
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(o)) {
      Object.defineProperty(out, k, {
        // A policy id (`api-key-auth`) names a policy, not a secret: its members are judged by their own names.
        value: walk(x, [...segs, k], secretKey || (last !== 'policies' && secretMember(k, x)), jwk),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  }
  const first = walk(config, [], false, false)
  // Rule 5: a secret repeated in a string no rule caught.
  const secrets = [...values].sort((a, b) => b.length - a.length)
  const again = (v: unknown, segs: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      if (v !== REDACTED && secrets.some((s) => v.includes(s))) {
        redacted.push(pathOf(segs))
        return REDACTED
      }
      return v
    }
    if (v === null || typeof v !== 'object') return v
    if (Array.isArray(v)) return v.map((x, i) => again(x, [...segs, i]))
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      ;(v as Record<string, unknown>)[k] = again(x, [...segs, k])
    }
    return v
  }
  const config2 = secrets.length > 0 ? again(first, []) : first
  return { config: config2, redacted: [...new Set(redacted)] }
}
