/**
 * A local token issuer for tests, on 127.0.0.1: real RS256 / ES256 key pairs (jose), an OIDC
 * discovery document and a JWKS over HTTP, tokens minted with any claims and header members, key
 * rotation (publish a key, sign with it, withdraw the old one), and an outage (down / up on the
 * same port).
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose'

export type IssuerAlg = 'RS256' | 'ES256'

export interface IssuerKey {
  kid: string
  alg: IssuerAlg
  privateKey: CryptoKey
  publicKey: CryptoKey
  /** The public JWK as published (kid, alg, use included). */
  publicJwk: JWK
  /** The public key as PEM (SPKI). */
  spki: string
}

export interface MintOptions {
  /** Signing key (default: the current signing key). */
  key?: IssuerKey
  /** `kid` header: default the key's kid; null leaves it out; a string overrides it. */
  kid?: string | null
  /** Extra protected header members (typ, jku, x5u, jwk, x5c, ...). */
  header?: Record<string, unknown>
  /** Lifetime from now in seconds (default 300); ignored when `claims.exp` is given. */
  expiresInSec?: number
  /** Claims on top of the defaults (iss, aud, sub, iat, exp, jti); a value of undefined removes one. */
  claims?: Record<string, unknown>
}

export const TEST_AUDIENCE = 'portcullis-test'

/** Generates a key pair with jose. */
export async function generateIssuerKey(
  alg: IssuerAlg,
  kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`,
) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicKey, publicJwk, spki: await exportSPKI(publicKey) } satisfies IssuerKey
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

export class JwksIssuer {
  private server: Server
  private port = 0
  /** Published keys (the JWKS). */
  keys: IssuerKey[] = []
  /** The key tokens are signed with by default. */
  signingKey: IssuerKey | undefined
  jwksRequests = 0
  discoveryRequests = 0
  /** Extra or replaced paths (redirects, oversized documents, a wrong issuer, ...). */
  readonly routes = new Map<string, Handler>()
  /** Overrides the `issuer` member of the discovery document. */
  discoveryIssuer: string | undefined

  private constructor() {
    this.server = this.makeServer()
  }

  static async start(algs: IssuerAlg[] = ['RS256']): Promise<JwksIssuer> {
    const i = new JwksIssuer()
    for (const a of algs) await i.addKey(a)
    i.signingKey = i.keys[0]
    await i.up()
    return i
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}`
  }
  get jwksUrl(): string {
    return `${this.issuer}/jwks.json`
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) }
  }

  private makeServer(): Server {
    return createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] as string
      const custom = this.routes.get(path)
      if (custom) return custom(req, res)
      if (path === '/.well-known/openid-configuration') {
        this.discoveryRequests++
        return json(res, { issuer: this.discoveryIssuer ?? this.issuer, jwks_uri: this.jwksUrl })
      }
      if (path === '/jwks.json') {
        this.jwksRequests++
        return json(res, this.jwks())
      }
      res.writeHead(404).end()
    })
  }

  /** Generates and publishes a key (not yet used for signing). */
  async addKey(alg: IssuerAlg = 'RS256', kid?: string): Promise<IssuerKey> {
    const k = await generateIssuerKey(alg, kid)
    this.keys.push(k)
    return k
  }

  /** Signs new tokens with this key from now on. */
  useKey(k: IssuerKey): void {
    this.signingKey = k
  }

  /** Withdraws a key from the JWKS. */
  removeKey(k: IssuerKey): void {
    this.keys = this.keys.filter((x) => x !== k)
  }

  async mint(o: MintOptions = {}): Promise<string> {
    const key = o.key ?? this.signingKey
    if (!key) throw new Error('no signing key')
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = {
      iss: this.issuer,
      aud: TEST_AUDIENCE,
      sub: 'alice',
      iat: now,
      exp: now + (o.expiresInSec ?? 300),
      jti: randomUUID(),
      ...o.claims,
    }
    for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k]
    const header: Record<string, unknown> = { alg: key.alg, ...o.header }
    if (o.kid !== null) header.kid = o.kid ?? key.kid
    return new SignJWT(claims as JWTPayload)
      .setProtectedHeader(header as { alg: string })
      .sign(key.privateKey)
  }

  /** Stops answering: the port is closed and open connections are cut. */
  async down(): Promise<void> {
    if (!this.server.listening) return
    const closed = new Promise<void>((r) => this.server.close(() => r()))
    this.server.closeAllConnections()
    await closed
    this.server = this.makeServer()
  }

  /** Listens again (on the same port after a `down`). */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
  }

  async close(): Promise<void> {
    await this.down()
  }
}

function json(res: ServerResponse, body: unknown): void {
  const b = JSON.stringify(body)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) })
  res.end(b)
}

/** base64url of a JSON value (to craft tampered and unsigned tokens in attack tests). */
export function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}
