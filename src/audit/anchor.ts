/**
 * Anchors: the head of the audit chain (its last written seq and that record's chain hash),
 * signed and kept **outside the chain's files**, so that a chain cut at its end — the last lines,
 * the last file, the last run's files removed, the log replaced by a genuine older copy of itself
 * — can no longer pass for a complete chain: the files end before the anchor.
 *
 * - Format: one canonical JSON line `{"hash","instance","kid","mac","seq","time","type":
 *   "audit.anchor","v":1}`; `mac` is HMAC-SHA-256 under the keyring key `kid` of
 *   `portcullis-audit-anchor:v1\n` + the canonical form without `mac` (a domain of its own: an
 *   anchor is never a record, nor a record an anchor). Whoever cannot sign records cannot forge one.
 * - Where ({@link AnchorTarget}): a witness file per instance in a directory on other storage
 *   (`<dir>/<instance>.anchor`, replaced atomically), and/or the gateway's Redis store (key
 *   `audit:anchor:<instance>`). Each holds the newest anchor of each instance.
 * - When ({@link Anchorer}): at most every `intervalMs` while the chain grows, and at a clean
 *   stop, after the closing checkpoint is written; never on the request path.
 * - On start, the writer reads the newest anchor: a chain whose files end before it was cut. It
 *   does not continue the shortened chain as if nothing happened: the new run's `audit.start`
 *   continues from the anchored head (seq and hash) and records the gap (`data.truncated`), the
 *   gateway log gets an error and the detectors an alert. `audit verify` and `audit report`, given
 *   the anchors, report a chain that ends before its anchor, or that records such a gap, as
 *   truncated (exit 1).
 */
import { createHmac } from 'node:crypto'
import { mkdir, open, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Store } from '../stores/types.js'
import { canonicalize } from './canonical.js'
import type { Keyring } from './keyring.js'
import { INSTANCE_RE, macMatches, type SigningKey } from './record.js'

/** The head of a chain: the last written record's seq and chain hash. */
export interface ChainHead {
  seq: number
  hash: string
}

/** A verified anchor and where it was read. */
export interface Anchor extends ChainHead {
  instance: string
  /** ISO time it was made. */
  time: string
  kid: string
  /** Where it was read (`witness <path>`, `redis`). */
  source: string
}

const DOMAIN = 'portcullis-audit-anchor:v1\n'
const HEX64 = /^[0-9a-f]{64}$/
/** Longest anchor line read (they are ~260 bytes). */
const MAX_ANCHOR_BYTES = 4096

function anchorMac(key: Buffer, body: Record<string, unknown>): string {
  return createHmac('sha256', key)
    .update(DOMAIN + canonicalize(body))
    .digest('base64url')
}

/** The anchor line for `head` of `instance` at `time` (canonical JSON, no newline). */
export function sealAnchor(instance: string, head: ChainHead, time: number, signer: SigningKey): string {
  const body = {
    hash: head.hash,
    instance,
    kid: signer.kid,
    seq: head.seq,
    time: new Date(time).toISOString(),
    type: 'audit.anchor',
    v: 1,
  }
  return canonicalize({ ...body, mac: anchorMac(signer.key, body) })
}

export type AnchorCheck = { ok: true; anchor: Anchor } | { ok: false; message: string }

/** Parses and checks an anchor line: its form, its MAC (with the keyring) and its instance. */
export function checkAnchor(text: string, keyring: Keyring, source: string, instance?: string): AnchorCheck {
  const line = text.trim()
  if (line.length === 0 || line.length > MAX_ANCHOR_BYTES) return { ok: false, message: 'not an anchor' }
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch {
    return { ok: false, message: 'not valid JSON' }
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return { ok: false, message: 'not an anchor' }
  const a = o as Record<string, unknown>
  const { mac, ...body } = a
  if (
    a.type !== 'audit.anchor' ||
    a.v !== 1 ||
    !Number.isSafeInteger(a.seq) ||
    (a.seq as number) < 0 ||
    typeof a.hash !== 'string' ||
    !HEX64.test(a.hash) ||
    typeof a.instance !== 'string' ||
    !INSTANCE_RE.test(a.instance) ||
    typeof a.time !== 'string' ||
    typeof a.kid !== 'string' ||
    typeof mac !== 'string' ||
    Object.keys(a).length !== 8
  ) {
    return { ok: false, message: 'not an anchor' }
  }
  if (instance !== undefined && a.instance !== instance)
    return { ok: false, message: `an anchor of instance "${a.instance}", not "${instance}"` }
  const key = keyring.keys.get(a.kid)
  if (key === undefined)
    return { ok: false, message: `signed with key id "${a.kid.slice(0, 64)}", which is not in the keyring` }
  if (!macMatches(anchorMac(key, body), mac)) return { ok: false, message: 'its MAC does not verify' }
  return {
    ok: true,
    anchor: {
      instance: a.instance,
      seq: a.seq as number,
      hash: a.hash,
      time: a.time,
      kid: a.kid,
      source,
    },
  }
}

/** Where anchors are kept. Reads return the stored line (undefined: none yet); errors reject. */
export interface AnchorTarget {
  readonly name: string
  write(instance: string, line: string): Promise<void>
  read(instance: string): Promise<string | undefined>
}

/** A witness file per instance in `dir` (other storage than the chain's), replaced atomically. */
export class WitnessDir implements AnchorTarget {
  readonly name: string
  constructor(readonly dir: string) {
    this.name = `witness ${dir}`
  }
  fileOf(instance: string): string {
    return join(this.dir, `${instance}.anchor`)
  }
  /** Written to a temporary file, synced, renamed over the old one (never blocks the event loop). */
  async write(instance: string, line: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const file = this.fileOf(instance)
    const tmp = `${file}.tmp-${process.pid}`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(`${line}\n`)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  }
  /** The file's first {@link MAX_ANCHOR_BYTES} bytes (a longer file is not an anchor). */
  async read(instance: string): Promise<string | undefined> {
    let fh: Awaited<ReturnType<typeof open>>
    try {
      fh = await open(this.fileOf(instance), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const buf = Buffer.alloc(MAX_ANCHOR_BYTES + 1)
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
      return buf.toString('utf8', 0, bytesRead)
    } finally {
      await fh.close()
    }
  }
}

/** The key of an instance's anchor in the store's key-value space. */
export const anchorKey = (instance: string): string => `audit:anchor:${instance}`

/** The gateway's store (Redis): `audit:anchor:<instance>` holds the newest anchor. */
export class StoreAnchors implements AnchorTarget {
  readonly name = 'redis'
  constructor(private readonly store: Store) {}
  write(instance: string, line: string): Promise<void> {
    return this.store.kv.set(anchorKey(instance), line)
  }
  read(instance: string): Promise<string | undefined> {
    return this.store.kv.get(anchorKey(instance))
  }
}

/** What reading the anchors of an instance found. */
export interface AnchorReading {
  /** The anchor with the highest seq that verified, from any target. */
  newest: Anchor | undefined
  /** Targets that could not be read (`name: code`), and anchors that did not verify. */
  problems: string[]
  /** The targets that could not be read. */
  unreadable: string[]
}

/** Reads and checks the anchors of `instance` from every target. Never rejects. */
export async function readAnchors(
  targets: readonly AnchorTarget[],
  instance: string,
  keyring: Keyring,
): Promise<AnchorReading> {
  const problems: string[] = []
  const unreadable: string[] = []
  let newest: Anchor | undefined
  for (const t of targets) {
    let line: string | undefined
    try {
      line = await t.read(instance)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      problems.push(`${t.name}: cannot be read (${e.code ?? e.message})`)
      unreadable.push(t.name)
      continue
    }
    if (line === undefined) continue
    const c = checkAnchor(line, keyring, t.name, instance)
    if (!c.ok) {
      problems.push(`${t.name}: the anchor does not verify (${c.message}); ignored`)
      continue
    }
    if (newest === undefined || c.anchor.seq > newest.seq) newest = c.anchor
  }
  return { newest, problems, unreadable }
}

/**
 * {@link readAnchors}, waiting up to `timeoutMs` for targets that cannot be read yet (Redis
 * connecting). Never rejects.
 */
export async function readAnchorsWithin(
  targets: readonly AnchorTarget[],
  instance: string,
  keyring: Keyring,
  timeoutMs: number,
): Promise<AnchorReading> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await readAnchors(targets, instance, keyring)
    if (r.unreadable.length === 0 || Date.now() >= deadline) return r
    await new Promise((res) => setTimeout(res, 100))
  }
}

export interface AnchorerOptions {
  instance: string
  signer: SigningKey
  targets: readonly AnchorTarget[]
  intervalMs: number
  logger: Logger
  now?: () => number
}

/**
 * Writes anchors of a running chain: every `intervalMs` when the head moved, one write in flight
 * at a time (to every target), and a last one at close. Failures are logged (at most one line a
 * minute per target, with the error's code) and retried at the next interval.
 */
export class Anchorer {
  /** Seq of the newest anchor written to every target (-1: none). */
  anchoredSeq = -1
  /** Anchors written (all targets), and write failures (per target). */
  written = 0
  failures = 0
  private head: (() => ChainHead | undefined) | undefined
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private readonly lastLog = new Map<string, number>()
  private readonly now: () => number

  constructor(private readonly o: AnchorerOptions) {
    this.now = o.now ?? Date.now
  }

  /** Starts anchoring the heads `head` reports. */
  start(head: () => ChainHead | undefined): void {
    this.head = head
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs)
    this.timer.unref()
  }

  /** Anchors the current head now, unless it is already anchored (tests, and `final`). */
  async tick(): Promise<void> {
    if (this.inFlight !== undefined) return this.inFlight
    const h = this.head?.()
    if (h === undefined || h.seq <= this.anchoredSeq) return
    this.inFlight = this.write(h).finally(() => {
      this.inFlight = undefined
    })
    return this.inFlight
  }

  private async write(h: ChainHead): Promise<void> {
    const line = sealAnchor(this.o.instance, h, this.now(), this.o.signer)
    let ok = true
    await Promise.all(
      this.o.targets.map((t) =>
        t.write(this.o.instance, line).catch((err: unknown) => {
          ok = false
          this.failures++
          const now = this.now()
          if (now - (this.lastLog.get(t.name) ?? Number.NEGATIVE_INFINITY) >= 60_000) {
            this.lastLog.set(t.name, now)
            const e = err as NodeJS.ErrnoException
            this.o.logger.error(
              { target: t.name, code: e.code ?? e.message, seq: h.seq },
              'AUDIT ANCHOR CANNOT BE WRITTEN; retrying (until it is, a cut at the end of the chain since the last anchor would go unseen)',
            )
          }
        }),
      ),
    )
    if (ok) {
      this.anchoredSeq = h.seq
      this.written++
    }
  }

  /** Stops the timer and anchors the final head (bounded by `deadlineMs`). */
  async final(deadlineMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    const deadline = new Promise<void>((r) => setTimeout(r, deadlineMs).unref())
    const run = (async () => {
      if (this.inFlight) await this.inFlight
      await this.tick()
    })()
    await Promise.race([run, deadline])
  }
}
