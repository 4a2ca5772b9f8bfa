/**
 * The scanner's shared vocabulary: checks, findings, evidence and the report. The engine
 * (src/scanner/engine.ts) runs checks against a live API through a `ScanContext`; reporters
 * (src/scanner/report/) render a `ScanReport`. Checks never print: they return findings.
 */
import type { OpenApiSpec, Operation } from '../openapi/index.js'

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info'

/** Highest first; `SEVERITY_RANK[a] > SEVERITY_RANK[b]` means a is worse. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = {
  critical: 4,
  high: 3,
  medium: 2,
  low: 1,
  info: 0,
}

/** OWASP API Security Top 10 (2023) categories. */
export type OwaspCategory =
  | 'API1:2023'
  | 'API2:2023'
  | 'API3:2023'
  | 'API4:2023'
  | 'API5:2023'
  | 'API6:2023'
  | 'API7:2023'
  | 'API8:2023'
  | 'API9:2023'
  | 'API10:2023'

export const OWASP_TITLES: Readonly<Record<OwaspCategory, string>> = {
  'API1:2023': 'Broken Object Level Authorization',
  'API2:2023': 'Broken Authentication',
  'API3:2023': 'Broken Object Property Level Authorization',
  'API4:2023': 'Unrestricted Resource Consumption',
  'API5:2023': 'Broken Function Level Authorization',
  'API6:2023': 'Unrestricted Access to Sensitive Business Flows',
  'API7:2023': 'Server Side Request Forgery',
  'API8:2023': 'Security Misconfiguration',
  'API9:2023': 'Improper Inventory Management',
  'API10:2023': 'Unsafe Consumption of APIs',
}

/** One HTTP exchange as the scanner saw it, already masked (tokens, keys, cookies, passwords). */
export interface Exchange {
  request: {
    method: string
    url: string
    headers: Record<string, string>
    /** Body excerpt (at most a few KiB), masked. */
    body?: string
  }
  response?: {
    status: number
    headers: Record<string, string>
    /** Body excerpt (at most a few KiB), masked. */
    body?: string
    durationMs: number
  }
  /** Set when the request failed before a response (timeout, connection refused). */
  error?: string
}

/** Proof attached to a finding: the exchanges and what in them proves the flaw. */
export interface Evidence {
  /** One line: what this exchange shows (e.g. "bob's token read alice's order 1"). */
  note: string
  exchanges: Exchange[]
}

/** A check's static description: what it tests, why it matters, how to fix it. */
export interface CheckInfo {
  /** Stable id, kebab-case, e.g. `bola-swap-ids`. Used by `--checks` and as the SARIF rule id. */
  id: string
  title: string
  owasp: OwaspCategory
  /** Default severity of its findings (a finding may override it). */
  severity: Severity
  /** What the check does, one paragraph. */
  description: string
  /** Why it matters, one paragraph. */
  why: string
  /** How to fix it, one paragraph. */
  fix: string
  /** A short code or config example of the fix. */
  fixExample: string
  /** True when the check sends requests that change or delete data. */
  destructive?: boolean
}

export interface Finding {
  checkId: string
  title: string
  severity: Severity
  owasp: OwaspCategory
  /**
   * The operation concerned, when there is one. `line`/`column`: where the operation is written
   * in the spec's root file (1-based), when the engine could tell.
   */
  operation?: { method: string; path: string; operationId?: string; line?: number; column?: number }
  /** The identity whose request showed the flaw (auth.yaml name), if any. */
  identity?: string
  /** One or two sentences: what was found, in plain words. */
  summary: string
  evidence: Evidence[]
  /**
   * Stable across scans of the same target (check, operation template, identity, title with ids
   * taken out): set by the engine. Baselines and SARIF `partialFingerprints` use it.
   */
  fingerprint?: string
  /** With a baseline: `unchanged` when the baseline has the same fingerprint, else `new`. */
  baselineState?: 'new' | 'unchanged'
}

/** An identity from auth.yaml, resolved (credentials ready to send). */
export interface IdentityInfo {
  name: string
  /** Roles declared in auth.yaml (`user`, `admin`, `anonymous`, …). */
  roles: readonly string[]
  anonymous: boolean
  /**
   * Privilege rank: 0 anonymous, 1 an ordinary user, 2 a privileged role (admin, support, staff,
   * manager, moderator, …, see roles.ts). Checks that act as "a user" start with the lowest.
   */
  rank: number
  /** True for an account the scanner registered itself (deleted at the end when it can be). */
  throwaway?: boolean
}

/** A request a check wants to send. `path` is relative to the target's base URL. */
export interface ScanRequest {
  method: string
  path: string
  query?: Record<string, string | string[]>
  headers?: Record<string, string>
  /** JSON-serialisable body (sent as application/json) or a raw string (give content-type). */
  json?: unknown
  body?: string
  /** An application/x-www-form-urlencoded body. */
  form?: Record<string, string>
  /** Send without the identity's credentials even when an identity is given. */
  noAuth?: boolean
  timeoutMs?: number
  /**
   * A 429 (or 503 with Retry-After) is waited out and the request sent again, up to 3 times
   * (default). Bursts that look for a limit set `false`: their 429 is the answer.
   */
  retry429?: boolean
  /**
   * A 401 may trigger a new login of the identity (default true; at most once per identity per
   * 30 s). Probes whose odd input may itself cause a 401 set `false`: they never cost a login.
   */
  relogin?: boolean
  /** A slow answer or a timeout is expected (timing probes): not counted towards "unreachable". */
  expectSlow?: boolean
  /**
   * Lets a user-declared request through the safe-mode guard (flows from auth.yaml): the user
   * asked for it. Checks never set it for requests of their own making.
   */
  declared?: boolean
}

export interface ScanResponse {
  status: number
  headers: Record<string, string>
  /** Body text, bounded (the engine reads at most a configured size). */
  text: string
  /** Parsed body when it is JSON, else undefined. */
  json: unknown
  durationMs: number
  /** The masked exchange, ready to put in evidence. */
  exchange: Exchange
  /** Set when the engine did not send the request (safe mode, an excluded operation, a dead target). */
  blocked?: string
  /** How often a 429 was waited out before this answer. */
  retries?: number
}

/** An object the scanner knows: created by an identity during seeding, or given in config. */
export interface SeededObject {
  /** Resource type, e.g. `orders` (from the collection path). */
  type: string
  id: string
  /** Identity that owns it. */
  owner: string
  /** Path of the object (e.g. `/api/v2/orders/4`). */
  path: string
  /** The owner's view of the object (response body of the create or a read), if known. */
  body?: unknown
  /** True when the scanner created it (so safe mode may change or delete it). */
  createdByScanner: boolean
  /** True for the identity's own profile (learned from a `…/me` operation). */
  profile?: boolean
  /** The path the owner reads it by when that differs from `path` (e.g. `/api/v2/users/me`). */
  selfPath?: string
  /** The item path template (`/v2/users/{userId}/addresses/{addressId}`), when known. */
  template?: string
  /** Values of the template's parameters for this object (`{userId: 'u-1', addressId: 'a-9'}`). */
  params?: Record<string, string>
}

/** A request sequence declared in auth.yaml (`flows:`), replayed by the business-flow check. */
export interface DeclaredFlow {
  name: string
  identity: string
  /** Replays (default 8). */
  repeat: number
  steps: FlowStep[]
  /** Run after each replay, whatever happened (steps naming a value that was not captured are skipped). */
  cleanup: FlowStep[]
}

export interface FlowStep {
  method: string
  path: string
  json?: unknown
  form?: Record<string, string>
  headers?: Record<string, string>
  /** Status codes that count as success (default: any 2xx). */
  expect?: number[]
  /** Values to take from the JSON answer for later steps (`{{name}}`): name → JSON pointer. */
  capture?: Record<string, string>
}

/** A login operation: how an identity (or a throwaway account) logs in. */
export interface LoginInfo {
  method: string
  path: string
  /** How the body is sent. */
  encoding: 'json' | 'form'
  userField: string
  passwordField: string
  /** Other fields of the body (grant_type, client_id, …). */
  base: Record<string, string | number | boolean>
  /** Where the answer holds the token (JSON pointer), when known. */
  tokenPointer?: string
  /** A user name the spec or auth.yaml gives, if any. */
  exampleUser?: string
  /** The user names auth.yaml's identities log in with (existing accounts). */
  knownUsers?: string[]
  /** Where it was learned from. */
  source: 'auth.yaml' | 'security-scheme' | 'spec'
}

/** What a check gets to work with. Implemented by the engine. */
export interface ScanContext {
  spec: OpenApiSpec
  /** Every operation of the spec, in document order. */
  operations: readonly Operation[]
  /** Base URL of the target (scheme, host, port, base path), without a trailing slash. */
  target: URL
  identities: readonly IdentityInfo[]
  /** Objects per identity name, after seeding. */
  objects: readonly SeededObject[]
  /** True in `--safe` mode (default): no destructive calls outside objects the scanner created. */
  safe: boolean
  /** Sends one request as an identity (its credentials added unless `noAuth`), rate-limited. */
  send(identity: string | undefined, req: ScanRequest): Promise<ScanResponse>
  /** The canary server on 127.0.0.1 for SSRF checks: a unique URL and a way to see whether it was hit. */
  canary(): Promise<{ url: string; wasHit(timeoutMs: number): Promise<boolean> }>
  /** A log line for `--verbose` (never secrets). */
  debug(message: string): void
  /**
   * The identity's current credentials (logged in first when needed): what the engine adds to its
   * requests. For checks that tamper with them (JWT weaknesses, a token moved into the URL); they
   * are secrets: send them only to the target, never put them in a finding's text. Optional so an
   * engine without it still runs the other checks (those checks then skip).
   */
  credentials?(
    identity: string,
  ): Promise<
    { headers: Record<string, string>; query: Record<string, string>; credentialHeader?: string } | undefined
  >
  /**
   * Opt-in behaviours the user turned on (`--chain`), and where the target serves the spec when
   * it was given as a URL on the target's origin (not an undocumented endpoint, then).
   */
  options?: { chain: boolean; specPath?: string; jwtWordlist?: readonly string[]; timeoutMs?: number }
  /** The login operations the scan knows (auth.yaml's first, then the spec's security schemes, then heuristics). */
  logins?: readonly LoginInfo[]
  /** Flows declared in auth.yaml. */
  flows?: readonly DeclaredFlow[]
  /** Answers seen so far by the engine (bounded), for checks that look at every answer. */
  observed?(): readonly ObservedAnswer[]
  /**
   * Registers an account of the scanner's own through the spec's sign-up operation (extra body
   * fields allowed), logs it in, and returns its identity name. In safe mode only when the API
   * has a way for the account to delete itself, which the engine calls at the end.
   */
  throwaway?(opts?: { extra?: Record<string, unknown> }): Promise<ThrowawayAccount | undefined>
  /**
   * Adds an identity whose credentials the scanner forged (chaining, opt-in): it sends the given
   * headers instead of logging in. Returns its name.
   */
  forgeIdentity?(base: string, label: string, headers: Record<string, string>): string
  /** A line for the report's notes (why seeding found nothing for a resource, what was not sent). */
  note?(message: string): void
  /** Waits until the target answers a cheap request again (after a hang), bounded. */
  waitForTarget?(maxMs: number): Promise<boolean>
}

/** A throwaway account the scanner registered. */
export interface ThrowawayAccount {
  identity: string
  username: string
  /** The sign-up exchange and the first login's. */
  exchanges: Exchange[]
  /** The sign-up operation used. */
  operation: { method: string; path: string; operationId?: string }
}

/** One answer the engine saw: enough for header checks over every answer. */
export interface ObservedAnswer {
  method: string
  /** The spec operation it matched (template), if any. */
  operation?: string
  status: number
  headers: Record<string, string>
  authenticated: boolean
  exchange: Exchange
}

export interface Check extends CheckInfo {
  run(ctx: ScanContext): Promise<Finding[]>
  /**
   * Runs after the scanner cleaned up what it created, as the very last step: for probes that may
   * lock the scanner's own client out (a login burst).
   */
  last?(ctx: ScanContext): Promise<Finding[]>
  /** Its findings may rest on a timeout (a request the target could not answer in time). */
  timingEvidence?: boolean
}

export interface ScanReport {
  tool: { name: 'portcullis'; version: string }
  target: string
  spec: string
  startedAt: string
  finishedAt: string
  durationMs: number
  safe: boolean
  identities: string[]
  /** Every check that ran (with its texts), in run order. */
  checks: CheckInfo[]
  findings: Finding[]
  /** Checks that could not run and why (e.g. no second identity, no object to swap). */
  skipped: { checkId: string; reason: string }[]
  stats: { requests: number; errors: number; retries?: number; blocked?: number }
  /**
   * Set when the target did not answer, or answered mostly with errors: the scan has no verdict
   * and `findings` is empty (the CLI exits 3).
   */
  unreachable?: string
  /** What the scanner could not do and why (seeding, safe mode, exclusions), one line each. */
  notes?: string[]
  /** Destructive-looking operations safe mode calls only on objects the scanner created (and refusals). */
  blocked?: { operation: string; reason: string }[]
  /** With `--baseline`: its file and how many findings it already had. */
  baseline?: { file: string; unchanged: number; new: number }
}

/**
 * Thrown by a check that cannot run against this API or these identities (no second user, no
 * object to swap); the engine lists it under `skipped` with the message as the reason.
 */
export class SkipCheck extends Error {
  override name = 'SkipCheck'
}
