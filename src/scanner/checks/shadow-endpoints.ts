/**
 * API9: undocumented endpoints found by probing common paths (/debug, /admin, /internal,
 * /swagger.json, /actuator, /.env, …) and an older API version beside the documented one
 * (`/v1` beside `/v2`). A 2xx that the spec does not document, and that is not what the API
 * answers for any path (catch-all), is a finding; body excerpts are masked.
 */
import type { Check, Finding, Severity } from '../types.js'
import {
  concretePath,
  finding,
  firstUser,
  is2xx,
  maskedExchange,
  randomName,
  templateRegex,
} from './probe.js'

const COMMON: readonly { path: string; severity: Severity }[] = [
  { path: '/debug', severity: 'medium' },
  { path: '/debug/vars', severity: 'medium' },
  { path: '/debug/config', severity: 'medium' },
  { path: '/admin', severity: 'medium' },
  { path: '/internal', severity: 'medium' },
  { path: '/internal/debug', severity: 'medium' },
  { path: '/internal/config', severity: 'medium' },
  { path: '/swagger.json', severity: 'low' },
  { path: '/swagger', severity: 'low' },
  { path: '/openapi.json', severity: 'low' },
  { path: '/openapi.yaml', severity: 'low' },
  { path: '/swagger.yaml', severity: 'low' },
  { path: '/v3/api-docs', severity: 'low' },
  { path: '/api-docs', severity: 'low' },
  { path: '/actuator', severity: 'medium' },
  { path: '/actuator/env', severity: 'high' },
  { path: '/.env', severity: 'high' },
  { path: '/config', severity: 'medium' },
  { path: '/metrics', severity: 'low' },
]
const MAX_VERSION_PROBES = 6
const UNDER_PREFIX: readonly { path: string; severity: Severity }[] = [
  { path: '/debug', severity: 'medium' },
  { path: '/debug/config', severity: 'medium' },
  { path: '/config', severity: 'medium' },
  { path: '/internal', severity: 'medium' },
  { path: '/internal/debug', severity: 'medium' },
  { path: '/internal/config', severity: 'medium' },
  { path: '/admin/debug', severity: 'medium' },
  { path: '/.env', severity: 'high' },
  { path: '/admin', severity: 'medium' },
  { path: '/swagger.json', severity: 'low' },
  { path: '/openapi.json', severity: 'low' },
]

/** Up to three prefixes of the documented paths: the first segment and the path up to a version segment. */
export function apiPrefixes(paths: readonly string[]): string[] {
  const out = new Set<string>()
  for (const p of paths) {
    const segs = p.split('/').filter(Boolean)
    if (segs.length > 1 && !segs[0]?.includes('{')) out.add(`/${segs[0]}`)
    const v = segs.findIndex((s) => /^v\d+$/.test(s))
    if (v >= 0 && !segs.slice(0, v + 1).some((s) => s.includes('{')))
      out.add(`/${segs.slice(0, v + 1).join('/')}`)
  }
  out.delete('/')
  return [...out].slice(0, 3)
}

export const shadowEndpoints: Check = {
  id: 'shadow-endpoints',
  title: 'Undocumented endpoint',
  owasp: 'API9:2023',
  severity: 'medium',
  description:
    'Probes common undocumented paths (/debug, /admin, /internal, /swagger.json, /openapi.json, /actuator, ' +
    '/.env, …) and the previous API version of documented paths (/v1 beside /v2); reports 2xx answers the ' +
    'spec does not document.',
  why:
    'Forgotten debug routes, old API versions and exposed configuration are rarely protected like the ' +
    'documented API: they often skip authentication, rate limits and the fixes the current version got.',
  fix:
    'Keep an inventory: serve only what the OpenAPI document describes (a gateway that rejects the rest), ' +
    'retire old versions with a date, and never deploy debug routes or .env files.',
  fixExample:
    '# Portcullis route policy: openapi-validation: { spec: openapi.yaml, undeclaredRoutes: block }\n' +
    "if (process.env.NODE_ENV === 'production') app.disable('debug routes')",
  async run(ctx) {
    const documented = ctx.operations.map((op) => templateRegex(op.path))
    const isDocumented = (path: string) => documented.some((re) => re.test(path))
    const user = firstUser(ctx)
    // A path no API has: what a catch-all answers.
    const baseline = await ctx.send(user, { method: 'GET', path: `/${randomName('pcl-nothing-')}` })
    const catchAll = is2xx(baseline.status) ? normalise(baseline.text) : undefined
    const findings: Finding[] = []
    const specPath = ctx.options?.specPath
    const probe = async (path: string, severity: Severity, why: string) => {
      if (isDocumented(path) || path === specPath) return
      const res = await ctx.send(user, { method: 'GET', path })
      if (!is2xx(res.status)) return
      if (catchAll !== undefined && normalise(res.text) === catchAll) return
      if (res.text.trim() === '') return
      findings.push(
        finding(this, {
          severity,
          title: `Undocumented endpoint ${path}`,
          ...(user ? { identity: user } : {}),
          summary: `GET ${path} answered ${res.status} (${res.text.length} bytes) but the spec does not document it (${why}).`,
          evidence: [
            {
              note: `GET ${path}: ${res.status}, not in the spec`,
              exchanges: [maskedExchange(res.exchange)],
            },
          ],
        }),
      )
    }
    for (const c of COMMON) await probe(c.path, c.severity, 'common debug/admin/docs path')
    // The same names under the API's own prefixes (`/api`, `/api/v2`).
    for (const prefix of apiPrefixes(ctx.operations.map((op) => op.path))) {
      for (const c of UNDER_PREFIX)
        await probe(`${prefix}${c.path}`, c.severity, `common debug/admin path under ${prefix}`)
    }
    // Older versions: `/v2/…` → `/v1/…` for a few documented GET paths (templates filled).
    const versioned = ctx.operations.filter((op) => op.method === 'GET' && /\/v(\d+)(\/|$)/.test(op.path))
    const tried = new Set<string>()
    for (const op of versioned) {
      if (tried.size >= MAX_VERSION_PROBES) break
      const path = concretePath(ctx, op, user)
      const m = path ? /\/v(\d+)(\/|$)/.exec(path) : null
      const n = Number(m?.[1])
      if (!path || !(n > 1)) continue
      const older = path.replace(/\/v\d+(\/|$)/, `/v${n - 1}$1`)
      if (tried.has(older)) continue
      tried.add(older)
      await probe(older, 'medium', `an older version of ${op.path}`)
    }
    return findings
  },
}

function normalise(text: string): string {
  return text
    .replace(/pcl-nothing-[a-z0-9]+/g, '')
    .replace(/\s+/g, ' ')
    .trim()
}
