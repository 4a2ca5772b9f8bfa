/**
 * Injection probes (SQL, NoSQL, OS command, path traversal) in query, path and body parameters,
 * judged by error signatures that the benign value does not produce, and by a bounded timing probe
 * (a sleep of a few seconds, confirmed by a repeat).
 */
import type { Operation } from '../../openapi/index.js'
import { requestBody } from '../schema-tools.js'
import type { Check, Finding, ScanContext, ScanRequest, ScanResponse } from '../types.js'
import {
  concretePath,
  exampleBody,
  finding,
  findLogin,
  firstUser,
  opOf,
  paramValue,
  requiredQuery,
  stringProperties,
} from './probe.js'
import {
  COMMAND_OUTPUT,
  FILE_CONTENTS,
  matchSignature,
  NOSQL_ERRORS,
  type Signature,
  SQL_ERRORS,
  STACK_TRACES,
} from './signatures.js'

const MAX_PARAMS = 15
const MAX_TIMING_PARAMS = 4
/** Seconds the timing payloads ask the server to sleep. */
export const SLEEP_S = 4
const TIMING_MARGIN_MS = (SLEEP_S - 0.8) * 1000

const ERROR_PAYLOADS: readonly { value: string; sigs: readonly Signature[]; label: string }[] = [
  { value: "'", sigs: SQL_ERRORS, label: 'SQL' },
  { value: '1"', sigs: SQL_ERRORS, label: 'SQL' },
  { value: "')) OR 1=1--", sigs: SQL_ERRORS, label: 'SQL' },
  { value: '{"$gt": ""}', sigs: NOSQL_ERRORS, label: 'NoSQL' },
  { value: ';id', sigs: COMMAND_OUTPUT, label: 'OS command' },
  { value: '$(id)', sigs: COMMAND_OUTPUT, label: 'OS command' },
  { value: '../../../../../../../../etc/passwd', sigs: FILE_CONTENTS, label: 'path traversal' },
]
const TIMING_PAYLOADS: readonly { value: string; label: string }[] = [
  { value: `' OR SLEEP(${SLEEP_S})-- -`, label: 'SQL (MySQL SLEEP)' },
  { value: `'; SELECT pg_sleep(${SLEEP_S})--`, label: 'SQL (PostgreSQL pg_sleep)' },
  { value: `;sleep ${SLEEP_S};`, label: 'OS command (sleep)' },
]

interface Target {
  op: Operation
  where: 'query' | 'path' | 'body'
  name: string
  build(value: string): ScanRequest
  benign: string
}

function targets(ctx: ScanContext, user: string | undefined): Target[] {
  const out: Target[] = []
  const login = findLogin(ctx)
  for (const op of ctx.operations) {
    if (op.method === 'GET') {
      const query = requiredQuery(ctx, op)
      const path = concretePath(ctx, op, user)
      for (const p of op.parameters) {
        if (p.in === 'query' && path) {
          const benign = paramValue(ctx, p)
          out.push({
            op,
            where: 'query',
            name: p.name,
            benign,
            build: (v) => ({ method: 'GET', path, query: { ...query, [p.name]: v }, relogin: false }),
          })
        }
        if (p.in === 'path') {
          const benign = paramValue(ctx, p)
          const others: Record<string, string> = {}
          for (const o of op.parameters) if (o.in === 'path' && o !== p) others[o.name] = paramValue(ctx, o)
          out.push({
            op,
            where: 'path',
            name: p.name,
            benign,
            build: (v) => ({
              method: 'GET',
              path: op.path.replace(/\{([^{}/]+)\}/g, (_m, n: string) =>
                encodeURIComponent(n === p.name ? v : (others[n] ?? '1')),
              ),
              query,
              relogin: false,
            }),
          })
        }
      }
    }
    // Body fields: the login (changes nothing) always; other POSTs only outside safe mode.
    const isLogin = login !== undefined && login.op === op
    if (isLogin && login) {
      for (const name of [login.userField, login.passwordField]) {
        out.push({
          op,
          where: 'body',
          name,
          benign: name === login.userField ? 'pcl-user' : 'pcl-pass',
          build: (v) =>
            login.attempt(
              name === login.userField ? v : 'pcl-user',
              name === login.passwordField ? v : 'pcl-pass',
            ),
        })
      }
      continue
    }
    if (op.method === 'POST' && !ctx.safe) {
      const base = exampleBody(ctx, op)
      const path = concretePath(ctx, op, user)
      if (!base || !path) continue
      for (const f of stringProperties(requestBody(ctx.spec, op)?.schema)) {
        const benign = typeof base[f.name] === 'string' ? (base[f.name] as string) : 'pcl'
        out.push({
          op,
          where: 'body',
          name: f.name,
          benign,
          build: (v) => ({ method: 'POST', path, json: { ...base, [f.name]: v }, relogin: false }),
        })
      }
    }
  }
  return out
}

export const injectionSignatures: Check = {
  id: 'injection-signatures',
  title: 'Injection',
  owasp: 'API8:2023',
  severity: 'high',
  description:
    'Sends SQL, NoSQL, OS command and path traversal payloads in query, path and body parameters and looks ' +
    'for database errors, command output or file contents the benign value does not produce; a timing probe ' +
    `(a ${SLEEP_S} s sleep, confirmed by a repeat) catches blind cases.`,
  why:
    'Input that reaches a query, a shell or a file path unescaped lets an attacker read or change any data, ' +
    'run commands on the server or read its files.',
  fix:
    'Use parameterised queries (never string concatenation), never build shell commands from input (use ' +
    'execFile with an argument list), resolve file paths against a base directory and check the result, ' +
    'validate every input against the schema.',
  fixExample:
    "db.query('SELECT * FROM orders WHERE id = $1', [req.params.id])\n" +
    "execFile('convert', [input, output])\n" +
    'const file = path.resolve(BASE, name); if (!file.startsWith(BASE + path.sep)) throw badRequest()',
  async run(ctx) {
    const user = firstUser(ctx)
    const findings: Finding[] = []
    let timingParams = 0
    for (const t of targets(ctx, user).slice(0, MAX_PARAMS)) {
      const send = (v: string) => ctx.send(user, t.build(v))
      const base = await send(t.benign)
      const baseSig = (sigs: readonly Signature[]) => matchSignature(base.text, sigs)
      let found = false
      for (const p of ERROR_PAYLOADS) {
        if (baseSig(p.sigs)) continue
        const res = await send(p.value)
        const sig = matchSignature(res.text, p.sigs)
        if (!sig) continue
        findings.push(
          report(
            this,
            t,
            user,
            `${p.label} injection: ${sig.label}`,
            `a ${sig.label} in the answer, which the benign value does not give`,
            base,
            res,
            p.value,
          ),
        )
        found = true
        break
      }
      if (found || timingParams >= MAX_TIMING_PARAMS || baseSig(STACK_TRACES)) continue
      timingParams++
      for (const p of TIMING_PAYLOADS) {
        const timeoutMs = (SLEEP_S + 6) * 1000
        const first = await ctx.send(user, { ...t.build(p.value), timeoutMs, expectSlow: true })
        if (first.durationMs - base.durationMs < TIMING_MARGIN_MS) continue
        // Confirm: fast again with the benign value, slow again with the payload.
        const again = await ctx.send(user, { ...t.build(p.value), timeoutMs, expectSlow: true })
        const control = await send(t.benign)
        if (again.durationMs - control.durationMs < TIMING_MARGIN_MS) continue
        findings.push(
          report(
            this,
            t,
            user,
            `${p.label} injection (timing)`,
            `answers ${Math.round(first.durationMs)} ms and ${Math.round(again.durationMs)} ms against ${Math.round(control.durationMs)} ms for the benign value`,
            control,
            again,
            p.value,
          ),
        )
        break
      }
    }
    return findings
  },
}

function report(
  check: Check,
  t: Target,
  user: string | undefined,
  what: string,
  proof: string,
  base: ScanResponse,
  res: ScanResponse,
  payload: string,
): Finding {
  return finding(check, {
    title: `${what}`,
    operation: opOf(t.op),
    ...(user ? { identity: user } : {}),
    summary: `The ${t.where} parameter "${t.name}" of ${t.op.method} ${t.op.path} given ${JSON.stringify(payload)}: ${proof}. Likely ${what.split(':')[0]}.`,
    evidence: [
      { note: `benign value ${JSON.stringify(t.benign)}: ${base.status}`, exchanges: [base.exchange] },
      { note: `payload ${JSON.stringify(payload)}: ${res.status}, ${proof}`, exchanges: [res.exchange] },
    ],
  })
}
