#!/usr/bin/env node
// @ts-check
/**
 * The demo's local token issuer: a tiny OAuth-style authorization server for the Portcullis tour,
 * so the gateway's jwt-auth policy can be shown with real tokens. DEMO ONLY: one fixed client
 * secret, no user passwords, a fresh key at every start.
 *
 * - Listens on 127.0.0.1 only (port 8082 by default; `--port 0` picks a free one).
 * - Generates an RS256 key pair at start (jose) and publishes the public key:
 *   `GET /.well-known/openid-configuration` (also `/.well-known/oauth-authorization-server`) and
 *   `GET /jwks.json`.
 * - `POST /token` (application/x-www-form-urlencoded, RFC 6749 client credentials with the demo
 *   client `demo-client` / `demo-secret`, by HTTP Basic or in the body) mints an RFC 9068 access
 *   token (`typ: at+jwt`) valid 5 minutes: iss, aud, sub, client_id, scope, iat, exp, jti, and
 *   for a demo user `amr: ["pwd"]`, or `["pwd", "mfa"]` with `mfa=true` (step-up).
 *   Demo extension: `sub=alice|bob|admin` names the user the token is for; without it the token is
 *   the client's own (sub = client_id, no amr).
 * - Bounded: bodies over 8 KiB get 413, header and request timeouts, a connection cap; no state
 *   grows with requests.
 *
 * Usage:
 *   node examples/token-issuer/issuer.mjs [serve] [--port 8082]
 *   node examples/token-issuer/issuer.mjs mint [--sub alice] [--scope "orders:read users:read"] [--mfa]
 *                                             [--url http://127.0.0.1:8082]
 * `mint` asks the running issuer for a token (as the demo client) and prints only the token.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'

export const DEFAULT_PORT = 8082
/** The only address the issuer listens on. */
export const HOST = '127.0.0.1'
/** `aud` of every token (the demo gateway config expects it). */
export const DEMO_AUDIENCE = 'portcullis-demo'
/** The one client. A fixed, published demo secret: never reuse this pattern outside a demo. */
export const DEMO_CLIENT = Object.freeze({ id: 'demo-client', secret: 'demo-secret' })
/** Users a token may be minted for (the demo API's seed users). */
export const DEMO_USERS = Object.freeze(['alice', 'bob', 'admin'])
/** Scopes a token may carry. */
export const DEMO_SCOPES = Object.freeze([
  'orders:read',
  'orders:write',
  'accounts:read',
  'users:read',
  'admin',
])
/** Scope of a token when the request names none. */
export const DEFAULT_SCOPE = 'orders:read'
export const TOKEN_LIFETIME_SEC = 300
/** Largest token request body read, in bytes. */
export const MAX_BODY_BYTES = 8192

const FORM = 'application/x-www-form-urlencoded'
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' }
const sha256 = (/** @type {string} */ s) => createHash('sha256').update(s).digest()
const CLIENT_ID_HASH = sha256(DEMO_CLIENT.id)
const CLIENT_SECRET_HASH = sha256(DEMO_CLIENT.secret)

/** A refusal with an RFC 6749 §5.2 error body. */
class OAuthError extends Error {
  /**
   * @param {number} status
   * @param {string} error
   * @param {string} description
   * @param {Record<string, string>} [headers]
   */
  constructor(status, error, description, headers = {}) {
    super(description)
    this.status = status
    this.error = error
    this.headers = headers
  }
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}

/**
 * Reads the whole body, at most `limit` bytes; resolves undefined when it is larger (and stops
 * collecting: the rest is discarded until the connection closes).
 * @param {import('node:http').IncomingMessage} req
 * @param {number} limit
 * @returns {Promise<Buffer | undefined>}
 */
function readBody(req, limit) {
  return new Promise((done, fail) => {
    /** @type {Buffer[]} */
    const chunks = []
    let size = 0
    let over = false
    req.on('data', (/** @type {Buffer} */ c) => {
      if (over) return
      size += c.length
      if (size > limit) {
        over = true
        chunks.length = 0
        done(undefined)
        return
      }
      chunks.push(c)
    })
    req.on('end', () => {
      if (!over) done(Buffer.concat(chunks))
    })
    req.on('error', fail)
  })
}

/**
 * Parses a form body: every parameter at most once (RFC 6749 §3.2), values as strings.
 * @param {Buffer} body
 * @returns {Map<string, string>}
 */
function parseForm(body) {
  const params = new Map()
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
    if (params.has(k)) throw new OAuthError(400, 'invalid_request', `parameter ${k} given more than once`)
    params.set(k, v)
  }
  return params
}

/**
 * Constant-time check of the demo client's credentials (fixed-length hashes).
 * @param {string} id
 * @param {string} secret
 */
function clientMatches(id, secret) {
  const idOk = timingSafeEqual(sha256(id), CLIENT_ID_HASH)
  const secretOk = timingSafeEqual(sha256(secret), CLIENT_SECRET_HASH)
  return idOk && secretOk
}

/**
 * The client's credentials, from HTTP Basic or the body (not both, RFC 6749 §2.3).
 * @param {string | undefined} authorization
 * @param {Map<string, string>} params
 */
function authenticateClient(authorization, params) {
  const challenge = { 'www-authenticate': 'Basic realm="portcullis-demo-issuer"' }
  const inBody = params.has('client_id') || params.has('client_secret')
  let id
  let secret
  if (authorization !== undefined) {
    if (inBody) throw new OAuthError(400, 'invalid_request', 'client credentials given twice')
    const m = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(authorization)
    const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : ''
    const colon = decoded.indexOf(':')
    if (colon < 0) throw new OAuthError(401, 'invalid_client', 'client authentication failed', challenge)
    id = decoded.slice(0, colon)
    secret = decoded.slice(colon + 1)
  } else {
    id = params.get('client_id')
    secret = params.get('client_secret')
  }
  if (id === undefined || secret === undefined || !clientMatches(id, secret)) {
    throw new OAuthError(401, 'invalid_client', 'client authentication failed', challenge)
  }
  return DEMO_CLIENT.id
}

/**
 * Validates a token request's parameters into the token's subject, scope and amr.
 * @param {Map<string, string>} params
 * @param {string} clientId
 */
function tokenRequest(params, clientId) {
  const grant = params.get('grant_type')
  if (grant === undefined) throw new OAuthError(400, 'invalid_request', 'grant_type is required')
  if (grant !== 'client_credentials') {
    throw new OAuthError(400, 'unsupported_grant_type', 'only client_credentials is supported')
  }
  const user = params.get('sub')
  if (user !== undefined && !DEMO_USERS.includes(user)) {
    throw new OAuthError(400, 'invalid_request', `sub must be one of ${DEMO_USERS.join(', ')}`)
  }
  const rawScope = params.get('scope') ?? DEFAULT_SCOPE
  const scopes = rawScope.split(' ')
  if (scopes.some((s) => !DEMO_SCOPES.includes(s))) {
    throw new OAuthError(400, 'invalid_scope', `scopes are space-separated, from: ${DEMO_SCOPES.join(' ')}`)
  }
  const mfa = params.get('mfa') ?? 'false'
  if (mfa !== 'true' && mfa !== 'false')
    throw new OAuthError(400, 'invalid_request', 'mfa must be true or false')
  if (mfa === 'true' && user === undefined) {
    throw new OAuthError(400, 'invalid_request', 'mfa needs a user (sub)')
  }
  return {
    sub: user ?? clientId,
    scope: [...new Set(scopes)].join(' '),
    amr: user === undefined ? undefined : mfa === 'true' ? ['pwd', 'mfa'] : ['pwd'],
  }
}

/**
 * @typedef {object} IssuerOptions
 * @property {number} [port] TCP port on 127.0.0.1 (default 8082; 0 picks a free one).
 * @property {(line: string) => void} [log] One line per minted or refused token (never a token or secret).
 */

/**
 * @typedef {object} RunningIssuer
 * @property {string} url The issuer identifier (`iss`), e.g. http://127.0.0.1:8082.
 * @property {string} jwksUrl
 * @property {string} tokenUrl
 * @property {string} kid The key id of the signing key (its JWK thumbprint).
 * @property {() => Promise<void>} close
 */

/**
 * Starts the issuer.
 *
 * @example
 * const issuer = await startIssuer({ port: 0 })
 * console.log(issuer.url) // http://127.0.0.1:40123
 * await issuer.close()
 *
 * @param {IssuerOptions} [options]
 * @returns {Promise<RunningIssuer>}
 */
export async function startIssuer(options = {}) {
  const log = options.log ?? (() => {})
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  const jwks = { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }
  let url = ''

  const discovery = () => ({
    issuer: url,
    jwks_uri: `${url}/jwks.json`,
    token_endpoint: `${url}/token`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: DEMO_SCOPES,
  })

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   */
  async function token(req, res) {
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) {
      throw new OAuthError(413, 'invalid_request', `body over ${MAX_BODY_BYTES} bytes`, {
        connection: 'close',
      })
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== FORM) {
      throw new OAuthError(415, 'invalid_request', `content-type must be ${FORM}`, { connection: 'close' })
    }
    const body = await readBody(req, MAX_BODY_BYTES)
    if (body === undefined) {
      throw new OAuthError(413, 'invalid_request', `body over ${MAX_BODY_BYTES} bytes`, {
        connection: 'close',
      })
    }
    const params = parseForm(body)
    const clientId = authenticateClient(req.headers.authorization, params)
    const t = tokenRequest(params, clientId)
    const now = Math.floor(Date.now() / 1000)
    const jti = randomUUID()
    /** @type {import('jose').JWTPayload} */
    const claims = {
      iss: url,
      aud: DEMO_AUDIENCE,
      sub: t.sub,
      client_id: clientId,
      scope: t.scope,
      iat: now,
      exp: now + TOKEN_LIFETIME_SEC,
      jti,
    }
    if (t.amr) claims.amr = t.amr
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' })
      .sign(privateKey)
    log(`token for ${t.sub}: scope "${t.scope}"${t.amr ? `, amr ${t.amr.join('+')}` : ''}, jti ${jti}`)
    sendJson(
      res,
      200,
      { access_token: accessToken, token_type: 'Bearer', expires_in: TOKEN_LIFETIME_SEC, scope: t.scope },
      NO_STORE,
    )
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   */
  async function handle(req, res) {
    const path = (req.url ?? '/').split('?')[0]
    const method = req.method ?? 'GET'
    /** @type {string[]} */
    let allow
    if (path === '/.well-known/openid-configuration' || path === '/.well-known/oauth-authorization-server') {
      allow = ['GET', 'HEAD']
      if (allow.includes(method)) return sendJson(res, 200, discovery(), { 'cache-control': 'max-age=60' })
    } else if (path === '/jwks.json') {
      allow = ['GET', 'HEAD']
      if (allow.includes(method)) return sendJson(res, 200, jwks, { 'cache-control': 'max-age=60' })
    } else if (path === '/token') {
      allow = ['POST']
      if (method === 'POST') return token(req, res)
    } else {
      return sendJson(res, 404, { error: 'not_found' })
    }
    sendJson(res, 405, { error: 'method_not_allowed' }, { allow: allow.join(', '), connection: 'close' })
  }

  const server = createServer(
    { headersTimeout: 10_000, requestTimeout: 10_000, maxHeaderSize: 16_384 },
    (req, res) => {
      handle(req, res).catch((/** @type {unknown} */ err) => {
        if (res.headersSent) {
          res.destroy()
          return
        }
        if (err instanceof OAuthError) {
          log(`refused (${err.status} ${err.error}): ${err.message}`)
          sendJson(
            res,
            err.status,
            { error: err.error, error_description: err.message },
            { ...NO_STORE, ...err.headers },
          )
          return
        }
        log(`internal error: ${err instanceof Error ? err.message : String(err)}`)
        sendJson(res, 500, { error: 'server_error' }, { connection: 'close' })
      })
    },
  )
  server.maxConnections = 256
  server.keepAliveTimeout = 5_000

  await new Promise((done, fail) => {
    server.once('error', fail)
    server.listen(options.port ?? DEFAULT_PORT, HOST, () => {
      server.off('error', fail)
      done(undefined)
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  url = `http://${HOST}:${address.port}`
  return {
    url,
    jwksUrl: `${url}/jwks.json`,
    tokenUrl: `${url}/token`,
    kid,
    close: () =>
      new Promise((done, fail) => {
        server.close((err) => (err ? fail(err) : done()))
        server.closeAllConnections()
      }),
  }
}

const USAGE = `usage:
  node examples/token-issuer/issuer.mjs [serve] [--port N]     run the issuer on 127.0.0.1 (default port ${DEFAULT_PORT})
  node examples/token-issuer/issuer.mjs mint [--sub USER] [--scope "S1 S2"] [--mfa] [--url URL]
                                          ask the running issuer for a token; prints only the token`

/** @param {string} message @returns {never} */
function usageError(message) {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}

/**
 * `--name value` / `--name=value` / `--flag` arguments.
 * @param {string[]} argv
 * @param {string[]} valued flags that take a value
 * @param {string[]} flags flags without a value
 */
function parseArgs(argv, valued, flags) {
  /** @type {Map<string, string>} */
  const out = new Map()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const eq = arg.indexOf('=')
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg
    if (name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`)
      process.exit(0)
    }
    if (flags.includes(name) && eq < 0) out.set(name, 'true')
    else if (valued.includes(name)) {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i]
      if (v === undefined) usageError(`${name} needs a value`)
      out.set(name, v)
    } else usageError(`unknown argument: ${arg}`)
  }
  return out
}

async function serveCommand(/** @type {string[]} */ argv) {
  const args = parseArgs(argv, ['--port'], [])
  const raw = args.get('--port') ?? String(DEFAULT_PORT)
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) usageError(`invalid port: ${raw}`)
  const issuer = await startIssuer({
    port: Number(raw),
    log: (line) => process.stderr.write(`issuer: ${line}\n`),
  }).catch((/** @type {NodeJS.ErrnoException} */ err) => {
    const hint = err.code === 'EADDRINUSE' ? ' (is another copy running? try --port 0)' : ''
    process.stderr.write(`cannot start the token issuer: ${err.message}${hint}\n`)
    process.exit(2)
  })
  process.stdout.write(
    `Portcullis demo token issuer on ${issuer.url} (DEMO ONLY: fixed client secret, new key each start)\n` +
      `  discovery: ${issuer.url}/.well-known/openid-configuration\n` +
      `  JWKS:      ${issuer.jwksUrl}\n` +
      `  tokens:    POST ${issuer.tokenUrl}  client ${DEMO_CLIENT.id} / ${DEMO_CLIENT.secret}\n`,
  )
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    issuer.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

async function mintCommand(/** @type {string[]} */ argv) {
  const args = parseArgs(argv, ['--sub', '--scope', '--url'], ['--mfa'])
  const base = args.get('--url') ?? `http://${HOST}:${DEFAULT_PORT}`
  const form = new URLSearchParams({ grant_type: 'client_credentials' })
  const sub = args.get('--sub')
  const scope = args.get('--scope')
  if (sub !== undefined) form.set('sub', sub)
  if (scope !== undefined) form.set('scope', scope)
  if (args.has('--mfa')) form.set('mfa', 'true')
  const basic = Buffer.from(`${DEMO_CLIENT.id}:${DEMO_CLIENT.secret}`).toString('base64')
  let res
  try {
    res = await fetch(`${base.replace(/\/+$/, '')}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': FORM },
      body: form.toString(),
      signal: AbortSignal.timeout(5000),
    })
  } catch (err) {
    process.stderr.write(`cannot reach the issuer at ${base}: ${err instanceof Error ? err.message : err}\n`)
    process.exit(1)
  }
  const body = /** @type {{ access_token?: string, error?: string, error_description?: string }} */ (
    await res.json().catch(() => ({}))
  )
  if (res.status !== 200 || typeof body.access_token !== 'string') {
    process.stderr.write(
      `issuer refused (${res.status}): ${body.error ?? ''} ${body.error_description ?? ''}\n`,
    )
    process.exit(1)
  }
  process.stdout.write(`${body.access_token}\n`)
}

const main = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href
if (main) {
  const [command, ...rest] = process.argv.slice(2)
  if (command === 'mint') await mintCommand(rest)
  else if (command === 'serve') await serveCommand(rest)
  else if (command === undefined || command.startsWith('-')) await serveCommand(process.argv.slice(2))
  else usageError(`unknown command: ${command}`)
}
