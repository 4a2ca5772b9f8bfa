/**
 * Audit records and the hash chain.
 *
 * A record is one JSON object on one line: the event's members plus
 *   v         format version (1)
 *   seq       0, 1, 2, … per chain (one chain per gateway instance)
 *   time      ISO 8601 UTC, when the event was emitted
 *   instance  the gateway instance (the chain's id)
 *   kid       id of the keyring key the MAC is made with
 *   prev      SHA-256 (hex) of the previous record's line; for seq 0, of the genesis string
 *   mac       HMAC-SHA-256 (base64url) over the record's canonical form without `mac`
 * The line is the canonical form (canonical.ts) of all members, `mac` included; the chain hash of
 * a record is SHA-256 of that line (UTF-8).
 */
import * as nodeCrypto from 'node:crypto'
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { canonicalize, canonicalMember, joinMembers, members, withStringMember } from './canonical.js'
import type { AuditEvent } from './event.js'
import type { Keyring } from './keyring.js'

export const RECORD_VERSION = 1

/** Members the chain owns: events cannot set them. */
export const CHAIN_MEMBERS = ['v', 'seq', 'time', 'instance', 'kid', 'prev', 'mac'] as const

export const INSTANCE_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
export const INSTANCE_RE = new RegExp(INSTANCE_PATTERN)

/** `prev` of a chain's first record: SHA-256 of this string and the instance id. */
export function genesisHash(instance: string): string {
  return createHash('sha256').update(`portcullis-audit-genesis:v1:${instance}`).digest('hex')
}

/** The chain hash of a record: SHA-256 (hex) of its line, without the newline. */
export function recordHash(line: string | Buffer): string {
  return oneShot !== undefined
    ? oneShot('sha256', line, 'hex')
    : createHash('sha256').update(line).digest('hex')
}

// crypto.hash (Node ≥ 20.12): the one-shot digest, about twice as fast as a Hash object for a
// record-sized input; it runs once per audit record.
const oneShot = (nodeCrypto as { hash?: (alg: string, data: string | Buffer, enc: 'hex') => string }).hash

export function macOf(key: Buffer, canonicalWithoutMac: string): string {
  return createHmac('sha256', key).update(canonicalWithoutMac).digest('base64url')
}

/** Constant-time comparison of a record's MAC with the one computed (both base64url of 32 bytes). */
export function macMatches(expected: string, found: unknown): boolean {
  if (typeof found !== 'string' || found.length !== expected.length) return false
  return timingSafeEqual(Buffer.from(expected), Buffer.from(found))
}

export interface ChainPosition {
  seq: number
  prev: string
  instance: string
}

export interface SigningKey {
  kid: string
  key: Buffer
}

/** Top-level event members the fast path knows; an event with others takes the generic path. */
const EVENT_MEMBERS = new Set([
  'type',
  'time',
  'requestId',
  'clientIp',
  'principal',
  'authMethod',
  'route',
  'method',
  'path',
  'operation',
  'objects',
  'decision',
  'status',
  'code',
  'reason',
  'data',
])

function add(out: string, name: string, v: unknown): string {
  if (v === undefined) return out
  return `${out === '' ? '' : `${out},`}"${name}":${canonicalMember(v)}`
}

/**
 * The record for an event at a chain position: its line (canonical form, no newline) and hash.
 * Chain members in the event are ignored (`time` included: the record's time is `time`).
 */
export function sealRecord(
  event: AuditEvent,
  at: ChainPosition,
  time: number,
  signer: SigningKey,
): { line: string; hash: string } {
  for (const k in event) if (!EVENT_MEMBERS.has(k)) return sealGeneric(event, at, time, signer)
  const e = event
  // Members in canonical (sorted) order, written out: this runs once per record.
  let before = add('', 'authMethod', e.authMethod)
  before = add(before, 'clientIp', e.clientIp)
  before = add(before, 'code', e.code)
  before = add(before, 'data', e.data)
  before = add(before, 'decision', e.decision)
  before = add(before, 'instance', at.instance)
  before = add(before, 'kid', signer.kid)
  // 'mac' goes here.
  let after = add('', 'method', e.method)
  after = add(after, 'objects', e.objects)
  after = add(after, 'operation', e.operation)
  after = add(after, 'path', e.path)
  after = add(after, 'prev', at.prev)
  after = add(after, 'principal', e.principal)
  after = add(after, 'reason', e.reason)
  after = add(after, 'requestId', e.requestId)
  after = add(after, 'route', e.route)
  after = add(after, 'seq', at.seq)
  after = add(after, 'status', e.status)
  after = add(after, 'time', new Date(time).toISOString())
  after = add(after, 'type', e.type)
  after = add(after, 'v', RECORD_VERSION)
  const mac = macOf(signer.key, `{${before},${after}}`)
  const line = `{${before},"mac":"${mac}",${after}}`
  return { line, hash: recordHash(line) }
}

/** sealRecord for any event (members it does not know are sorted in): the reference the fast path matches. */
export function sealGeneric(
  event: AuditEvent,
  at: ChainPosition,
  time: number,
  signer: SigningKey,
): { line: string; hash: string } {
  const body: Record<string, unknown> = { ...event }
  for (const k of CHAIN_MEMBERS) body[k] = undefined
  body.v = RECORD_VERSION
  body.seq = at.seq
  body.time = new Date(time).toISOString()
  body.instance = at.instance
  body.kid = signer.kid
  body.prev = at.prev
  const m = members(body)
  const mac = macOf(signer.key, joinMembers(m))
  const line = withStringMember(m, 'mac', mac)
  return { line, hash: recordHash(line) }
}

/** A parsed record (the members verify and recovery look at). */
export interface ParsedRecord {
  v: number
  seq: number
  time: string
  instance: string
  kid: string
  prev: string
  mac: string
  type: string
  data?: Record<string, unknown>
  [member: string]: unknown
}

export type RecordCheck =
  | { ok: true; record: ParsedRecord }
  | { ok: false; kind: 'malformed' | 'altered' | 'unknown-key'; message: string; record?: ParsedRecord }

const HEX64 = /^[0-9a-f]{64}$/
const MAC_RE = /^[A-Za-z0-9_-]{43}$/

/**
 * Parses one line and checks it is a record: well-formed, in canonical form, and signed by a key
 * of the keyring. Chain position (seq, prev, instance) is the caller's to check.
 */
export function checkRecord(line: string, keyring: Keyring): RecordCheck {
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch {
    return { ok: false, kind: 'malformed', message: 'not valid JSON' }
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    return { ok: false, kind: 'malformed', message: 'not a JSON object' }
  }
  const r = o as ParsedRecord
  if (r.v !== RECORD_VERSION)
    return { ok: false, kind: 'malformed', message: `unknown format version ${String(r.v).slice(0, 20)}` }
  if (!Number.isSafeInteger(r.seq) || r.seq < 0)
    return { ok: false, kind: 'malformed', message: 'no valid seq' }
  if (typeof r.type !== 'string' || r.type === '') return { ok: false, kind: 'malformed', message: 'no type' }
  if (typeof r.time !== 'string') return { ok: false, kind: 'malformed', message: 'no time' }
  if (typeof r.instance !== 'string' || !INSTANCE_RE.test(r.instance))
    return { ok: false, kind: 'malformed', message: 'no valid instance' }
  if (typeof r.prev !== 'string' || !HEX64.test(r.prev))
    return { ok: false, kind: 'malformed', message: 'no valid prev' }
  if (typeof r.mac !== 'string' || !MAC_RE.test(r.mac))
    return { ok: false, kind: 'malformed', message: 'no valid mac' }
  if (typeof r.kid !== 'string') return { ok: false, kind: 'malformed', message: 'no kid' }
  let canonical: string
  let m: ReturnType<typeof members>
  try {
    canonical = canonicalize(r)
    const { mac: _mac, ...body } = r
    m = members(body)
  } catch {
    return { ok: false, kind: 'malformed', message: 'holds values a record cannot hold' }
  }
  if (canonical !== line) {
    return {
      ok: false,
      kind: 'altered',
      message: 'not in canonical form (the line was re-serialized or edited)',
      record: r,
    }
  }
  const key = keyring.keys.get(r.kid)
  if (key === undefined) {
    return {
      ok: false,
      kind: 'unknown-key',
      message: `signed with key id "${r.kid.slice(0, 64)}", which is not in the keyring`,
      record: r,
    }
  }
  if (!macMatches(macOf(key, joinMembers(m)), r.mac)) {
    return {
      ok: false,
      kind: 'altered',
      message: 'the MAC does not verify: the record was altered, or signed with another key',
      record: r,
    }
  }
  return { ok: true, record: r }
}
