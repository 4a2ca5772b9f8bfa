/**
 * `portcullis inventory`: the API inventory of a running gateway (`--admin URL`, with the admin
 * token) or of a fleet's shared store (`--config FILE` whose `stores:` is Redis), as a table, JSON,
 * CSV or the OpenAPI 3.1 document reconstructed from traffic; `--diff SPEC` compares it with a spec.
 *
 * Exit codes: 0; with `--diff`, 1 when traffic reaches operations the spec does not have (shadow)
 * or the spec marks deprecated (zombie); 2 usage or config error; 3 the gateway did not answer.
 */
import { writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { formatProblem, loadConfigFile } from '../../../config/load.js'
import { Inventory } from '../../../inventory/inventory.js'
import { inventorySpecs } from '../../../inventory/observer.js'
import { toOpenApi } from '../../../inventory/openapi-export.js'
import { SpecIndex } from '../../../inventory/spec-index.js'
import type { InventoryOperation, InventoryView } from '../../../inventory/view.js'
import { createStore } from '../../../stores/config.js'
import { ConfigError, EXIT, UsageError } from '../../command.js'
import { INVENTORY_USAGE } from '../../usage.js'

type Format = 'text' | 'json' | 'csv' | 'openapi'

/** A problem reaching the gateway (exit 3). */
class Unreachable extends Error {}

async function fromAdmin(url: string, token: string, path: string): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(new URL(path, url.endsWith('/') ? url : `${url}/`), {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(30_000),
    })
  } catch (err) {
    throw new Unreachable(`cannot reach ${url}: ${(err as Error).message}`)
  }
  const body = (await res.json().catch(() => ({}))) as { title?: string; detail?: string }
  if (res.status === 401) throw new UsageError('the admin API refused the token (401)')
  if (!res.ok) throw new Unreachable(`${url}${path}: ${res.status} ${body.detail ?? body.title ?? ''}`.trim())
  return body
}

async function fromConfig(file: string): Promise<InventoryView> {
  const loaded = loadConfigFile(file)
  if (!loaded.config) throw new ConfigError(loaded.errors.map(formatProblem))
  const config = loaded.config
  if (config.stores.backend !== 'redis') {
    throw new UsageError(
      'with the memory store the inventory lives in the gateway process: use --admin URL --token T',
    )
  }
  const store = createStore(config.stores, { logger: pino({ level: 'silent' }) })
  try {
    // A fresh connection refuses commands until it is ready: retry the ping for a few seconds.
    const deadline = Date.now() + 5000
    for (;;) {
      try {
        await store.ping()
        break
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const spec = new SpecIndex(inventorySpecs(config, dirname(resolve(file))))
    const inv = new Inventory({ config: config.inventory, store, spec, logger: pino({ level: 'silent' }) })
    try {
      return await inv.view()
    } finally {
      await inv.close()
    }
  } catch (err) {
    if ((err as Error).name === 'StoreError') throw new Unreachable((err as Error).message)
    throw err
  } finally {
    await store.close()
  }
}

const csvCell = (v: unknown): string => {
  const s = String(v ?? '')
  // Cells that a spreadsheet would run as a formula are prefixed with a quote.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe
}

function toCsv(ops: readonly InventoryOperation[]): string {
  const head = [
    'method',
    'path',
    'in_spec',
    'requests',
    'denied',
    'errors',
    'authenticated_share',
    'principals',
    'p50_ms',
    'p99_ms',
    'first_seen',
    'last_seen',
    'data_classes',
    'flags',
  ]
  const rows = ops.map((o) =>
    [
      o.method,
      o.path,
      o.inSpec,
      o.requests,
      o.denied,
      o.errors,
      o.authenticatedShare,
      o.principals,
      o.latencyMs.p50 ?? '',
      o.latencyMs.p99 ?? '',
      o.firstSeen ?? '',
      o.lastSeen ?? '',
      o.dataClasses.map((d) => d.class).join(' '),
      o.flags.join(' '),
    ]
      .map(csvCell)
      .join(','),
  )
  return `${[head.join(','), ...rows].join('\n')}\n`
}

/** Control characters (terminal escapes in a hostile path) are shown escaped. */
const clean = (s: string) =>
  s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)

function toText(v: InventoryView, ops: readonly InventoryOperation[]): string {
  const rows = ops.map((o) => [
    o.method,
    clean(o.path),
    String(o.requests),
    `${Math.round(o.authenticatedShare * 100)}%`,
    o.latencyMs.p99 === undefined ? '-' : `${o.latencyMs.p99}`,
    o.dataClasses.map((d) => d.class).join(',') || '-',
    o.flags.join(',') || '-',
  ])
  const head = ['METHOD', 'PATH', 'REQUESTS', 'AUTH', 'P99_MS', 'DATA', 'FLAGS']
  const widths = head.map((h, i) =>
    Math.min(60, Math.max(h.length, ...rows.map((r) => (r[i] as string).length))),
  )
  const line = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')
  return `${[
    line(head),
    ...rows.map(line),
    '',
    `${ops.length} operations; observing since ${v.observingSince}; store ${v.store}; ${v.specs.operations} operations in the specs`,
  ].join('\n')}\n`
}

interface Diff {
  spec: string
  /** In traffic, not in the spec. */
  shadow: string[]
  /** In the spec as deprecated, or an older version, still called. */
  zombie: string[]
  /** In the spec, never seen. */
  unseen: string[]
  /** In both. */
  matched: string[]
}

function diffAgainst(ops: readonly InventoryOperation[], specFile: string, prefix: string): Diff {
  const spec = new SpecIndex([{ file: resolve(specFile), prefix }])
  if (spec.problems.length > 0) throw new ConfigError(spec.problems)
  const d: Diff = { spec: specFile, shadow: [], zombie: [], unseen: [], matched: [] }
  const seen = new Set<string>()
  for (const o of ops) {
    if (o.requests === 0 || o.path === '(overflow)') continue
    const concrete = o.path
      .split('/')
      .map((s) => (s.startsWith('{') && s.endsWith('}') ? 'x' : s))
      .join('/')
    const m = spec.match(o.method, concrete)
    if (m.kind !== 'found') {
      d.shadow.push(o.id)
      continue
    }
    seen.add(`${m.op.method} ${m.op.template}`)
    d.matched.push(o.id)
    if (m.op.deprecated || o.flags.includes('zombie')) d.zombie.push(o.id)
  }
  for (const s of spec.operations)
    if (!seen.has(`${s.method} ${s.template}`)) d.unseen.push(`${s.method} ${s.template}`)
  return d
}

function diffText(d: Diff): string {
  const part = (title: string, list: string[]) =>
    `${title} (${list.length})\n${list.map((x) => `  ${clean(x)}`).join('\n')}${list.length ? '\n' : ''}`
  return [
    `compared with ${d.spec}`,
    part('in traffic, not in the spec (shadow)', d.shadow),
    part('deprecated or older versions still called (zombie)', d.zombie),
    part('in the spec, not seen in traffic', d.unseen),
    `${d.matched.length} operations in both`,
  ].join('\n')
}

/** `portcullis inventory ...` */
export async function inventoryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string' },
      token: { type: 'string' },
      config: { type: 'string' },
      format: { type: 'string', default: 'text' },
      diff: { type: 'string' },
      'diff-prefix': { type: 'string', default: '' },
      flag: { type: 'string' },
      output: { type: 'string' },
    },
    allowPositionals: false,
    strict: true,
  })
  if (positionals.length > 0) throw new UsageError(INVENTORY_USAGE)
  const format = values.format as Format
  if (!['text', 'json', 'csv', 'openapi'].includes(format))
    throw new UsageError('--format is text, json, csv or openapi')
  if ((values.admin === undefined) === (values.config === undefined)) {
    throw new UsageError(`give --admin URL (with --token) or --config FILE\n${INVENTORY_USAGE}`)
  }
  if (values.diff !== undefined && format === 'openapi') throw new UsageError('--diff prints text or json')
  const token = values.token ?? process.env.PORTCULLIS_ADMIN_TOKEN
  let view: InventoryView
  // From a gateway, the OpenAPI document is its own export (the list leaves the field paths out).
  let openapiDoc: unknown
  try {
    if (values.admin !== undefined) {
      if (!token) throw new UsageError('--admin needs --token T (or $PORTCULLIS_ADMIN_TOKEN)')
      if (!/^https?:\/\//.test(values.admin))
        throw new UsageError('--admin is the admin listener URL, http(s)://host:port')
      view = (await fromAdmin(values.admin, token, 'v1/inventory')) as InventoryView
      if (format === 'openapi') openapiDoc = await fromAdmin(values.admin, token, 'v1/inventory/openapi')
    } else {
      view = await fromConfig(values.config as string)
    }
  } catch (err) {
    if (err instanceof Unreachable) {
      process.stderr.write(`portcullis inventory: ${err.message}\n`)
      return EXIT.UNREACHABLE
    }
    throw err
  }
  let ops = view.operations
  if (values.flag !== undefined) ops = ops.filter((o) => o.flags.includes(values.flag as never))
  let out: string
  let code: number = EXIT.OK
  if (values.diff !== undefined) {
    const d = diffAgainst(ops, values.diff, values['diff-prefix'] as string)
    out = format === 'json' ? `${JSON.stringify(d, null, 2)}\n` : diffText(d)
    if (d.shadow.length > 0 || d.zombie.length > 0) code = EXIT.FINDINGS
  } else if (format === 'openapi') {
    out = `${JSON.stringify(openapiDoc ?? toOpenApi(view), null, 2)}\n`
  } else if (format === 'json') out = `${JSON.stringify({ ...view, operations: ops }, null, 2)}\n`
  else if (format === 'csv') out = toCsv(ops)
  else out = toText(view, ops)
  if (values.output !== undefined) writeFileSync(values.output, out)
  else process.stdout.write(out)
  return code
}
