/**
 * TLS for client-facing listeners: secure defaults (Mozilla's "intermediate" profile: TLS 1.2 and
 * 1.3 only, forward-secret AEAD cipher suites only), several certificates chosen by SNI, and
 * certificates reloaded from disk while the listener runs (renewals by certbot, cert-manager,
 * a secret mount swapping its symlink) without a restart or a dropped connection.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type https from 'node:https'
import { resolve } from 'node:path'
import { createSecureContext, type SecureContext } from 'node:tls'
import type { Logger } from 'pino'
import type { TlsConfig } from '../config/schema.js'

/**
 * Mozilla's intermediate TLS 1.2 cipher list (ssl-config.mozilla.org, guideline 5.7): ECDHE/DHE key
 * exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305 (AEAD, no CBC). TLS 1.3 suites are
 * all forward-secret AEAD and stay OpenSSL's defaults. DHE suites are only used with `dhparam`.
 */
export const MOZILLA_INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':')

/** Mozilla intermediate's curves. */
export const MOZILLA_CURVES = 'X25519:prime256v1:secp384r1'

interface Pair {
  cert: Buffer
  key: Buffer
}

interface Built {
  /** The options of the default certificate (for https.createServer and setSecureContext). */
  options: https.ServerOptions
  /** SNI name (lower-case; `*.example.com` for wildcards) → context. */
  byName: Map<string, SecureContext>
  /** Hash of every file read, to notice a change on disk. */
  digest: string
}

function read(baseDir: string, file: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, file))
  } catch (err) {
    const e = new Error(
      `invalid config: TLS: cannot read ${file}: ${(err as { code?: string }).code ?? (err as Error).message}`,
    )
    e.name = 'ConfigError'
    throw e
  }
}

/** The DNS names of a certificate (subjectAltName, else its CN), lower-case. */
export function certificateNames(pem: Buffer): string[] {
  const x = new X509Certificate(pem)
  const names: string[] = []
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const p = part.trim()
    if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase())
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)
    if (cn?.[1]) names.push(cn[1].trim().toLowerCase())
  }
  return names
}

function build(tls: TlsConfig, baseDir: string): Built {
  const hash = createHash('sha256')
  const pair = (cert: string, key: string): Pair => {
    const p = { cert: read(baseDir, cert), key: read(baseDir, key) }
    hash.update(p.cert).update(p.key)
    return p
  }
  const main = pair(tls.cert, tls.key)
  const common = {
    minVersion: tls.minVersion,
    ciphers: tls.ciphers ?? MOZILLA_INTERMEDIATE_CIPHERS,
    ecdhCurve: MOZILLA_CURVES,
    // Mozilla intermediate: the client's preference (all offered suites are strong).
    honorCipherOrder: false,
    ...(tls.clientAuth
      ? {
          ca: (() => {
            const ca = read(baseDir, tls.clientAuth.ca)
            hash.update(ca)
            return ca
          })(),
          requestCert: true,
          // `optional`: verified against the CA but not enforced here; the mtls policy decides
          // per route from socket.authorized.
          rejectUnauthorized: tls.clientAuth.mode === 'required',
        }
      : {}),
  }
  const byName = new Map<string, SecureContext>()
  for (const c of tls.certificates ?? []) {
    const p = pair(c.cert, c.key)
    // createSecureContext checks that the key belongs to the certificate.
    let ctx: SecureContext
    try {
      ctx = createSecureContext({ ...common, cert: p.cert, key: p.key })
    } catch (err) {
      const e = new Error(`invalid config: TLS: ${c.cert} / ${c.key}: ${(err as Error).message}`)
      e.name = 'ConfigError'
      throw e
    }
    const names = c.serverNames ?? certificateNames(p.cert)
    for (const n of names) {
      const name = n.toLowerCase()
      if (!byName.has(name)) byName.set(name, ctx)
    }
  }
  const options: https.ServerOptions = { ...common, cert: main.cert, key: main.key }
  // Fail now (at start or reload) on a key that does not match its certificate.
  try {
    createSecureContext(options)
  } catch (err) {
    const e = new Error(`invalid config: TLS: ${tls.cert} / ${tls.key}: ${(err as Error).message}`)
    e.name = 'ConfigError'
    throw e
  }
  return { options, byName, digest: hash.digest('hex') }
}

/** The context for an SNI name: exact, then the wildcard one level up; undefined → the default. */
function lookup(byName: Map<string, SecureContext>, servername: string): SecureContext | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '')
  const exact = byName.get(name)
  if (exact !== undefined) return exact
  const dot = name.indexOf('.')
  return dot === -1 ? undefined : byName.get(`*${name.slice(dot)}`)
}

/** The TLS state of each running HTTPS listener (for reloads). */
export const listenerTls = new WeakMap<https.Server, ListenerTls>()

/** A TLS listener's certificates: built once, swapped on reload or when the files change. */
export class ListenerTls {
  private current: Built
  private tls: TlsConfig
  private timer: NodeJS.Timeout | undefined
  private server: https.Server | undefined

  constructor(
    tls: TlsConfig,
    private readonly baseDir: string,
    private readonly logger: Logger,
  ) {
    this.tls = tls
    this.current = build(tls, baseDir)
  }

  /** Options for https.createServer: the default certificate, the TLS profile, and SNI selection. */
  serverOptions(): https.ServerOptions {
    return {
      ...this.current.options,
      SNICallback: (servername, cb) => cb(null, lookup(this.current.byName, servername)),
    }
  }

  /**
   * Starts checking the files every `reloadIntervalSec` (content hash, so a symlink swap or an
   * in-place rewrite are both seen). A change is applied to new handshakes; a bad new pair (a key
   * that does not match, a half-written file) is logged and the old one keeps serving.
   */
  watch(server: https.Server): void {
    this.server = server
    server.once('close', () => this.close())
    this.schedule()
  }

  private schedule(): void {
    clearInterval(this.timer)
    const sec = this.tls.reloadIntervalSec
    if (sec === 0) return
    this.timer = setInterval(() => this.check('file change'), sec * 1000)
    this.timer.unref()
  }

  /** Applies a new TLS config (config reload), or re-reads the files when `tls` is undefined. */
  update(tls?: TlsConfig): void {
    if (tls !== undefined) {
      const interval = tls.reloadIntervalSec !== this.tls.reloadIntervalSec
      this.tls = tls
      if (interval && this.server) this.schedule()
    }
    this.apply(build(this.tls, this.baseDir), 'config reload')
  }

  private check(trigger: string): void {
    let next: Built
    try {
      next = build(this.tls, this.baseDir)
    } catch (err) {
      this.logger.error(
        { err: (err as Error).message },
        'TLS certificate reload failed; the old certificate stays',
      )
      return
    }
    if (next.digest !== this.current.digest) this.apply(next, trigger)
  }

  private apply(next: Built, trigger: string): void {
    const changed = next.digest !== this.current.digest
    this.current = next
    this.server?.setSecureContext(next.options)
    if (changed) this.logger.info({ trigger }, 'TLS certificates reloaded')
  }

  close(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
