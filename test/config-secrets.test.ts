/**
 * No config value that is a secret appears in a message: for every field of the config schema
 * whose name marks a secret (config/redact.ts' rule: token, password, secret, jwk, …), a value
 * written inline and one substituted from ${env:} are absent from every problem `config check`,
 * `serve` and a refused reload print (they all print loadGatewayConfig's problems), including
 * when the value itself is invalid.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import type { TSchema } from '@sinclair/typebox'
import { stringify } from 'yaml'
import { formatProblem } from '../src/config/load.js'
import { loadGatewayConfig } from '../src/config/policy-checks.js'
import { secretLikeName } from '../src/config/redact.js'
import { GatewayConfig } from '../src/config/schema.js'

type Seg = string | number

/** Paths of string fields in the schema under a secret-like name (arrays at index 0). */
function secretFieldPaths(
  schema: TSchema,
  segs: Seg[] = [],
  out: Seg[][] = [],
  depth = 0,
  secret = false,
): Seg[][] {
  if (depth > 12) return out
  const s = schema as Record<string, unknown>
  if (s.type === 'string' && secret) out.push(segs)
  const props = s.properties as Record<string, TSchema> | undefined
  if (props) {
    const isPolicyMap = segs[segs.length - 1] === 'policies'
    for (const [k, v] of Object.entries(props))
      secretFieldPaths(v, [...segs, k], out, depth + 1, secret || (!isPolicyMap && secretLikeName(k)))
  }
  if (s.items && typeof s.items === 'object')
    secretFieldPaths(s.items as TSchema, [...segs, 0], out, depth + 1, secret)
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = s[key] as TSchema[] | undefined
    if (Array.isArray(list)) for (const b of list) secretFieldPaths(b, segs, out, depth + 1, secret)
  }
  return out
}

function setAt(root: Record<string, unknown>, segs: Seg[], value: unknown): void {
  let cur: Record<string | number, unknown> = root
  segs.forEach((seg, i) => {
    if (i === segs.length - 1) {
      cur[seg] = value
      return
    }
    const next = segs[i + 1]
    if (cur[seg] === undefined || cur[seg] === null || typeof cur[seg] !== 'object')
      cur[seg] = typeof next === 'number' ? [] : {}
    cur = cur[seg] as Record<string | number, unknown>
  })
}

const base = () => ({
  listeners: [{ name: 'public' }],
  upstreams: { api: { targets: [{ url: 'http://127.0.0.1:3000' }] } },
  routes: [{ name: 'api', upstream: 'api' }],
})

describe('secrets never appear in config messages', () => {
  const paths = [
    ...new Map(
      secretFieldPaths(GatewayConfig).map((p) => [
        JSON.stringify(p.map((s) => (typeof s === 'number' ? 0 : s))),
        p,
      ]),
    ).values(),
  ]
  const dir = mkdtempSync(join(tmpdir(), 'pc-secrets-'))

  test(`the schema has secret fields to test (${paths.length})`, () => {
    const names = paths.map((p) => p.join('.'))
    for (const must of ['admin.token', 'stores.redis.password', 'audit.http.token'])
      assert.ok(names.includes(must), `${must} in ${names.join(', ')}`)
    assert.ok(names.some((n) => n.includes('clientSecret')))
  })

  test('inline and substituted, valid-looking and invalid values: absent from every problem', async () => {
    const leaks: string[] = []
    let n = 0
    for (const segs of paths) {
      for (const form of ['inline', 'env'] as const) {
        // Short (fails minLength where there is one), and a long random-looking one.
        for (const value of [`Sk${n}x`, `S3cret-${n}-${'q'.repeat(40)}`]) {
          n++
          const cfg = base()
          // a route-level policy field sits under routes[0]; the route must exist
          setAt(cfg, segs, form === 'inline' ? value : `\${env:PC_SECRET_${n}}`)
          const file = join(dir, `c${n}.yaml`)
          writeFileSync(file, stringify(cfg))
          const r = await loadGatewayConfig(file, { env: { [`PC_SECRET_${n}`]: value } })
          const text = [...r.errors, ...r.warnings].map(formatProblem).join('\n')
          if (text.includes(value)) leaks.push(`${segs.join('.')} (${form}): ${text}`)
        }
      }
    }
    assert.deepEqual(leaks, [])
  })

  test('the CLI prints no inline admin token, short or long', () => {
    const bin = join(new URL('../../', import.meta.url).pathname, 'bin/portcullis.js')
    for (const token of ['short-admin-token', `long-admin-token-${'z'.repeat(40)}`]) {
      const cfg = base() as Record<string, unknown>
      cfg.admin = { token }
      const file = join(dir, 'cli.yaml')
      writeFileSync(file, stringify(cfg))
      for (const format of ['text', 'json']) {
        const r = spawnSync(process.execPath, [bin, 'config', 'check', '--format', format, file], {
          encoding: 'utf8',
        })
        assert.ok(!`${r.stdout}${r.stderr}`.includes(token), `${format}: ${r.stdout}${r.stderr}`)
      }
    }
  })
})
