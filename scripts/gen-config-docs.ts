/**
 * Generates the configuration reference from the schema (src/config/schema.ts):
 *
 *   docs/config.schema.json  JSON Schema (draft-07) for editors: autocomplete and inline checks
 *   docs/config.md           the reference: intro, one section per top-level key, one table per object
 *
 * `--check` generates in memory and exits 1 when a file on disk differs (CI: `npm run docs:check`).
 * The output is deterministic: no dates, no absolute paths, stable key order.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatProblem, loadConfigText, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH } from '../src/config/load.js'
import { durationStem, durationUnitOf } from '../src/config/durations.js'
import { GatewayConfig } from '../src/config/schema.js'
import { durationFields } from './migrate-durations.js'
import { formatDuration } from '../src/util/duration.js'
import { ERROR_CATALOGUE } from '../src/gateway/errors.js'

/** A JSON Schema node, as TypeBox emits it (after a JSON round trip). */
type Schema = {
  type?: string
  title?: string
  description?: string
  default?: unknown
  const?: unknown
  anyOf?: Schema[]
  properties?: Record<string, Schema>
  patternProperties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  minimum?: number
  maximum?: number
  minLength?: number
  minItems?: number
  pattern?: string
  [k: string]: unknown
}

const SCHEMA_URL = 'http://json-schema.org/draft-07/schema#'
const REGENERATE = 'npm run docs:config'

/** The repository root: the nearest ancestor holding package.json (works from scripts/ and dist/scripts/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the repository root (package.json)')
    dir = up
  }
  return dir
}

// ---------------------------------------------------------------------------------------------
// JSON Schema
// ---------------------------------------------------------------------------------------------

/** Keywords first in this order, then the rest alphabetically; property maps keep field order. */
const KEY_ORDER = [
  '$schema',
  '$id',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'anyOf',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'items',
  'required',
  'properties',
  'patternProperties',
  'additionalProperties',
]

function orderKeys(keys: string[]): string[] {
  const rank = (k: string) => {
    const i = KEY_ORDER.indexOf(k)
    return i === -1 ? KEY_ORDER.length : i
  }
  return [...keys].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * Normalizes one schema node for editors. TypeBox lists every non-optional field as `required`,
 * but the loader fills defaults before it checks: a field with a default may be left out, so it
 * is not required in the file (otherwise editors would flag every short config).
 */
function normalize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(normalize)
  if (node === null || typeof node !== 'object') return node
  const src = node as Schema
  const out: Record<string, unknown> = {}
  for (const k of orderKeys(Object.keys(src))) {
    const v = src[k]
    if (k === 'properties' || k === 'patternProperties') {
      const props: Record<string, unknown> = {}
      for (const [name, s] of Object.entries(v as Record<string, Schema>)) {
        const unit = k === 'properties' ? durationUnitOf(name, s as never) : undefined
        // A duration field: its duration spelling (`timeout: 5s`) only; the unit-named number
        // (`timeoutMs: 5000`) is the old form, which a config file may not use (durations.ts).
        if (unit !== undefined) props[durationStem(name)] = durationSchema(name, s, unit)
        else props[name] = normalize(s)
      }
      out[k] = props
    } else if (k === 'required' && Array.isArray(v)) {
      const req = (v as string[])
        .filter((name) => src.properties?.[name]?.default === undefined)
        .map((name) =>
          durationUnitOf(name, src.properties?.[name] as never) !== undefined ? durationStem(name) : name,
        )
      if (req.length > 0) out[k] = req
    } else if (k === 'default' || k === 'const') {
      out[k] = v // values, not schemas
    } else {
      out[k] = normalize(v)
    }
  }
  return out
}

const DURATION_NAMES = new RegExp(`\`((?:[\\w.-]+\\.)?)(${[...durationFields().keys()].join('|')})\``, 'g')

/**
 * Descriptions name duration fields as a config file writes them: \`windowSec\` becomes
 * \`window\` (the schema's descriptions use the unit-named names the code reads).
 */
function inFileForm(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(inFileForm)
  if (node === null || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === 'description' && typeof v === 'string')
      out[k] = v.replace(
        DURATION_NAMES,
        (_m, prefix: string, name: string) => `\`${prefix}${durationStem(name)}\``,
      )
    else if (k === 'default' || k === 'const') out[k] = v
    else out[k] = inFileForm(v)
  }
  return out
}

/** The duration grammar (src/util/duration.ts) as a JSON Schema pattern. */
const DURATION_PATTERN = '^(0|[0-9]{1,12}(ms|s|m|h|d|w))$'

function unitWord(unit: number): string {
  return unit === 1 ? 'milliseconds' : unit === 1000 ? 'seconds' : 'days'
}

/** The schema of a duration field's duration spelling (`timeout` for `timeoutMs`). */
function durationSchema(name: string, s: Schema, unit: number): Schema {
  const out: Schema = {
    description:
      `${s.description ?? ''} A duration (500ms, 30s, 5m, 1h, 7d), counted in whole ${unitWord(unit)} (the old form \`${name}\`, a number, is refused).`.trim(),
    type: 'string',
  }
  if (s.default !== undefined) out.default = formatDuration((s.default as number) * unit)
  out.pattern = DURATION_PATTERN
  return out
}

export function jsonSchema(): Schema {
  // The JSON round trip drops TypeBox's symbol keys ([Kind], [OptionalKind], ...).
  const plain = inFileForm(JSON.parse(JSON.stringify(GatewayConfig))) as Schema
  return normalize({
    $schema: SCHEMA_URL,
    description:
      'Configuration of the Portcullis API security gateway. Reference: docs/config.md. ' +
      'Generated from src/config/schema.ts; do not edit.',
    ...plain,
    title: plain.title ?? 'Portcullis configuration',
  }) as Schema
}

// ---------------------------------------------------------------------------------------------
// Markdown reference
// ---------------------------------------------------------------------------------------------

const code = (s: string) => (s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``)
/** Table cells: `|` must be escaped, even inside code spans (GFM). */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
const anchorOf = (path: string) =>
  path
    .replace(/<name>/g, 'name')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()

function isObject(s: Schema): boolean {
  return s.type === 'object' && s.properties !== undefined
}
function isRecord(s: Schema): boolean {
  return s.type === 'object' && s.patternProperties !== undefined
}
function recordValue(s: Schema): [pattern: string, value: Schema] {
  const [entry] = Object.entries(s.patternProperties ?? {})
  if (!entry) throw new Error('record without patternProperties')
  return entry
}

/** A literal as written in YAML: bare words and numbers, quoted only when needed. */
function literal(v: unknown): string {
  if (typeof v === 'string' && /^[A-Za-z][A-Za-z0-9.+_-]*$/.test(v) && !/^(true|false|null)$/.test(v))
    return v
  return JSON.stringify(v)
}

function typeOf(s: Schema): string {
  if (s.anyOf) return s.anyOf.map((b) => (b.const !== undefined ? literal(b.const) : typeOf(b))).join(' | ')
  if (s.const !== undefined) return literal(s.const)
  if (s.type === 'array') return `${s.items ? typeOf(s.items) : 'any'}[]`
  if (isRecord(s)) {
    const [, v] = recordValue(s)
    return `map of ${typeOf(v)}`
  }
  return s.type ?? 'any'
}

function range(s: Schema): string | undefined {
  if (s.minimum !== undefined && s.maximum !== undefined) return `${s.minimum} to ${s.maximum}`
  if (s.minimum !== undefined) return `≥ ${s.minimum}`
  if (s.maximum !== undefined) return `≤ ${s.maximum}`
  return undefined
}

/** Constraints worth stating, in words. */
function constraints(s: Schema): string[] {
  const out: string[] = []
  const r = range(s)
  if (r) out.push(r)
  if (s.minLength === 1) out.push('non-empty')
  else if (s.minLength !== undefined) out.push(`at least ${s.minLength} characters`)
  if (s.pattern) out.push(`matches ${code(s.pattern)}`)
  if (s.minItems !== undefined) out.push(`at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`)
  if (s.type === 'array' && s.items && !isObject(s.items)) {
    for (const c of constraints(s.items)) out.push(`items: ${c}`)
  }
  if (isRecord(s)) {
    const [keyPattern, v] = recordValue(s)
    if (keyPattern !== '^(.*)$') out.push(`names match ${code(keyPattern)}`)
    if (!isObject(v)) for (const c of constraints(v)) out.push(`values: ${c}`)
  }
  for (const b of s.anyOf ?? []) for (const c of constraints(b)) out.push(c)
  return out
}

/** A duration field's bounds, as durations. */
function durationRange(s: Schema, unit: number): string | undefined {
  const bound = (b: Schema): [number | undefined, number | undefined] => [b.minimum, b.maximum]
  const [min, max] = s.anyOf
    ? (s.anyOf.map(bound).find((x) => x[0] !== undefined || x[1] !== undefined) ?? [])
    : bound(s)
  const f = (n: number) => formatDuration(n * unit)
  if (min !== undefined && max !== undefined) return `${f(min)} to ${f(max)}`
  if (min !== undefined) return `≥ ${f(min)}`
  if (max !== undefined) return `≤ ${f(max)}`
  return undefined
}

interface Table {
  path: string
  description: string | undefined
  rows: string[]
}

const POLICIES_NOTE =
  'Same fields as the global [`policies`](#policies); a route entry overrides the global one.'

/**
 * Tables for an object at `path` and every object below it (depth first, parent first).
 * `policies` objects are not expanded here: they are documented once, under Policies.
 */
function tables(s: Schema, path: string, out: Table[], description = s.description): Table[] {
  const table: Table = { path, description, rows: [] }
  out.push(table)
  const required = new Set(s.required ?? [])
  const nested: [Schema, string][] = []
  for (const [key, child] of Object.entries(s.properties ?? {})) {
    const unit = durationUnitOf(key, child as never)
    if (unit !== undefined) {
      // A duration field: documented under its duration spelling (config/durations.ts).
      const cons = durationRange(child, unit)
      const typeCell = code('duration') + (cons ? `<br>${cons}` : '')
      const def = child.default !== undefined ? code(formatDuration((child.default as number) * unit)) : '—'
      const req = required.has(key) && child.default === undefined
      // a duration carries its unit: "…, in seconds" described the old number only
      const desc =
        `${(child.description ?? '').replace(/,? in (?:ms|milliseconds|seconds|days)\b/g, '')} The old form \`${key}\` (a number of ${unitWord(unit)}) is refused.`.trim()
      table.rows.push(
        `| ${code(`${path}.${durationStem(key)}`)} | ${cell(typeCell)} | ${cell(def)} | ${req ? '**yes**' : 'no'} | ${cell(desc)} |`,
      )
      continue
    }
    const childPath = `${path}.${key}`
    let desc = child.description ?? ''
    let type = typeOf(child)
    let target: [Schema, string] | undefined
    if (key === 'policies' && path !== '') {
      desc = `${desc} ${POLICIES_NOTE}`
      type = 'object'
    } else if (isObject(child)) target = [child, childPath]
    else if (child.type === 'array' && child.items && isObject(child.items))
      target = [child.items, `${childPath}[]`]
    else if (isRecord(child) && isObject(recordValue(child)[1]))
      target = [recordValue(child)[1], `${childPath}.<name>`]
    if (target) {
      desc = `${desc} See [${code(target[1])}](#${anchorOf(target[1])}).`
      nested.push(target)
    }
    const cons = constraints(child)
    const typeCell = code(type) + (cons.length ? `<br>${cons.join(', ')}` : '')
    const isRequired = required.has(key) && child.default === undefined
    const def = child.default !== undefined ? code(JSON.stringify(child.default)) : '—'
    table.rows.push(
      `| ${code(childPath)} | ${cell(typeCell)} | ${cell(def)} | ${isRequired ? '**yes**' : 'no'} | ${cell(desc.trim())} |`,
    )
  }
  for (const [child, childPath] of nested) tables(child, childPath, out)
  return out
}

function renderTables(list: Table[], level: string, firstHasHeading: boolean): string {
  const parts: string[] = []
  list.forEach((t, i) => {
    if (i > 0 || firstHasHeading) {
      parts.push(`<a id="${anchorOf(t.path)}"></a>\n\n${level} ${code(t.path)}\n`)
      if (t.description) parts.push(`${t.description}\n`)
    }
    parts.push('| Field | Type | Default | Required | Description |')
    parts.push('| --- | --- | --- | --- | --- |')
    parts.push(`${t.rows.join('\n')}\n`)
  })
  return parts.join('\n')
}

/** The sample shown under "Checking a config": real loader output, so it cannot go stale. */
const SAMPLE_BAD = `listeners:
  - name: public
    port: "8080"
upstreams:
  api:
    targets:
      - url: http://user:hunter2@10.0.0.5:3000
routes:
  - name: api
    upstream: apis
    match:
      pathPrefix: /api/../admin
    policies:
      request-size-limit:
        maxBodySize: 1000
`

function sampleOutput(): string {
  const r = loadConfigText(SAMPLE_BAD, 'portcullis.yaml', { env: {} })
  const lines = r.errors.map((e) => `error: ${formatProblem(e)}`)
  lines.push(`portcullis.yaml: ${r.errors.length} errors`)
  return lines.join('\n')
}

function topLevelSection(key: string, s: Schema, required: boolean): string {
  const parts: string[] = [`<a id="${anchorOf(key)}"></a>\n\n## ${code(key)}\n`]
  const facts: string[] = [required ? '**Required.**' : 'Optional.', `Type: ${code(typeOf(s))}.`]
  if (s.default !== undefined) facts.push(`Default: ${code(JSON.stringify(s.default))}.`)
  const cons = constraints(s)
  if (cons.length) facts.push(`Constraints: ${cons.join(', ')}.`)
  parts.push(`${s.description ?? ''} ${facts.join(' ')}\n`)
  if (key === 'policies') {
    parts.push(policiesIntro(s.required ?? []))
    for (const [id, entry] of Object.entries(s.properties ?? {})) {
      parts.push(`<a id="policy-${anchorOf(id)}"></a>\n\n### ${code(id)}\n`)
      parts.push(`${entry.description ?? ''}\n`)
      parts.push(renderTables(tables(entry, `policies.${id}`, [], undefined), '####', false))
    }
  } else if (isObject(s)) parts.push(renderTables(tables(s, key, [], undefined), '###', false))
  else if (s.type === 'array' && s.items && isObject(s.items)) {
    parts.push(`Each item:\n`)
    parts.push(renderTables(tables(s.items, `${key}[]`, [], undefined), '###', false))
  } else if (isRecord(s)) {
    const [, v] = recordValue(s)
    parts.push(`Each entry, \`${key}.<name>\`:\n`)
    parts.push(renderTables(tables(v, `${key}.<name>`, [], undefined), '###', false))
  }
  return parts.join('\n')
}

function policiesIntro(onByDefault: string[]): string {
  const list = onByDefault.map(code).join(' and ')
  const one = onByDefault.length === 1
  const defaults =
    onByDefault.length > 0
      ? `- ${list} ${one ? 'is' : 'are'} **on by default**: ${one ? 'it runs' : 'they run'} on every route with ${one ? 'its' : 'their'}
  defaults even when \`policies\` does not name ${one ? 'it' : 'them'}, unless set to \`enabled: false\`. Any
  other policy runs only where it is named.`
      : '- No policy is on by default: a policy runs only where it is named.'
  return `Policies run on every request of a route, in a fixed order (each policy has a priority).
The top-level \`policies\` section applies to **every route**; \`routes[].policies\` takes the
same ids and fields and applies to that route only:

${defaults}
- A route entry **replaces** the global entry of the same id as a whole: fields it leaves out
  take their defaults, not the global values. Policies the route does not name keep their
  global config.
- \`enabled: false\` in a route entry turns a global policy **off** for that route; a route may
  also turn on a policy that is not global.
- A policy id that is not known is an error that lists the known ids.

\`\`\`yaml
policies: # every route
  request-size-limit:
    maxBodyBytes: 1048576
routes:
  - name: uploads
    upstream: files
    match: { pathPrefix: /uploads }
    policies: # this route only
      request-size-limit:
        maxBodyBytes: 52428800
      security-headers:
        enabled: false
\`\`\`
`
}

function intro(minimal: string): string {
  return `<!-- Generated by scripts/gen-config-docs.ts from src/config/schema.ts. Do not edit: change the
schema (or the script) and run \`${REGENERATE}\`. \`npm run docs:check\` fails when this file is stale. -->

# Configuration reference

Portcullis reads one configuration file: \`portcullis serve --config FILE\` (else the
\`PORTCULLIS_CONFIG\` environment variable, else \`./portcullis.yaml\`). This page lists every field, its type, default and meaning. It is generated
from the schema that the gateway validates against, so it is always complete.

- [File format](#file-format)
- [Durations](#durations)
- [Secrets](#secrets)
- [Checking a config](#checking-a-config)
- [Hot reload](#hot-reload)
- [Editor support](#editor-support)
- [Top-level keys](#top-level-keys)
- [Complete example](#complete-example)

## File format

The file is **YAML** (1.2) or **JSON**. JSON is valid YAML, so the format is not chosen by the file
extension. Rules:

- **Unknown fields are errors.** Every object is closed, so a misspelt field is reported (with
  the list of the fields that the object takes) instead of being silently ignored.
- **Duplicate keys are errors.**
- Every field has a **default** unless it is marked required. Write only what you change.
- Anchors and aliases (\`&name\` / \`*name\`) may be used to repeat a block, up to 50 aliases. An
  alias inside itself is an error.
- A document is at most ${MAX_CONFIG_BYTES} bytes and nests at most ${MAX_CONFIG_DEPTH} levels. Larger or deeper
  input is refused before parsing.
- Relative file paths (TLS \`cert\`, \`key\`, \`ca\`, \`\${file:…}\`, an access log file) are relative
  to the **directory of the config file**, not to the working directory.

The smallest useful config (\`examples/config/minimal.yaml\`):

\`\`\`yaml
${minimal.trimEnd()}
\`\`\`

## Durations

Every duration is written in one grammar, the same in the config, the CLI flags and the admin API:
a whole number and its unit, \`500ms\`, \`30s\`, \`5m\`, \`1h\`, \`7d\` (also \`2w\`), or \`0\`. No
fractions, no spaces, no compound forms (\`1h30m\`: write \`90m\`), no bare numbers.

A duration field is written without a unit in its name (\`timeout: 5s\`, \`window: 1m\`,
\`retention: 30d\`); the tables below list it so, with its bounds and default as durations.

**The old form is refused.** Before this grammar, a config file named each duration field with
its unit and gave a plain number (\`timeoutMs: 5000\`, \`windowSec: 60\`, \`retentionDays: 30\`).
That form is no longer accepted in a config file (\`serve\`, reload, \`config check\`, every
command that reads a gateway config): each such field is an error at its key, and the message
names the new form with the same value, so the fix is one line per field:

\`\`\`text
portcullis.yaml:12:5 routes[0].policies.rate-limit.limits[0].throttle.maxWaitMs: the old form (a number of milliseconds); write \`maxWait: 5s\`
\`\`\`

A whole file is migrated by \`node dist/scripts/migrate-durations.js FILE...\` from a checkout of
Portcullis (it rewrites the old fields of YAML and JSON files and of the config blocks of
Markdown files, and lists what it could not convert, such as a \`\${env:…}\` value).

Refused, with the duration form in the message:

| Written | Message |
| --- | --- |
| \`timeoutMs: 5000\` | the old form (a number of milliseconds); write \`timeout: 5s\` |
| \`"timeoutMs": 5000\` (JSON) | the old form (a number of milliseconds); write \`"timeout": "5s"\` |
| \`timeoutMs: 5s\` | the old form; write \`timeout: 5s\` |
| \`timeout: 5000\` | a duration needs its unit: write \`timeout: 5000ms\` |
| \`timeout: 5s\` and \`timeoutMs: 5000\` | \`timeoutMs\` is the old form of \`timeout\`, which is also set: remove \`timeoutMs\` |
| \`window: 1500ms\` (a field counted in seconds) | counted in whole seconds: 1500ms is not one |
| \`timeout: 1.5s\`, \`timeout: 1h30m\` | expected a duration (500ms, 30s, 5m, 1h, 7d) |

**A config object built in code** ([embedding.md](embedding.md): \`createGateway({...})\`,
\`checkConfig({...})\`) is the schema's own form: its duration fields are the unit-named numbers
(\`timeoutMs: 5000\`), which the TypeScript type (\`GatewayConfigInput\`) declares, and which the
gateway reads (the effective config of \`GET /v1/config\` shows them so too).

## Secrets

**Never write a secret inline.** Any string value (not a key) may reference one:

| Reference | Replaced by |
| --- | --- |
| \`\${env:NAME}\` | the environment variable \`NAME\`. If it is not set, that is an error. |
| \`\${file:PATH}\` | the contents of the file \`PATH\`, with one trailing newline removed. A relative \`PATH\` is relative to the config file. If it cannot be read, that is an error. |

A reference may be the whole value or part of it (\`https://\${env:API_HOST}/v1\`). A value that
came from a reference is **treated as a secret**: it never appears in an error or warning
message, either from \`portcullis config check\` or in the log of a refused reload (they say
\`a string (secret, not shown)\` or \`(secret)\` instead). Substitution always gives a
**string**, so it cannot supply a number or a boolean (\`port: \${env:PORT}\` is an error). The
core gateway fields hold no secrets (TLS keys are given as file paths). Policies that take
credentials use these references.

## Checking a config

\`\`\`sh
portcullis config check portcullis.yaml                 # text
portcullis config check --format json portcullis.yaml   # {"valid": …, "errors": […], "warnings": […]}
\`\`\`

The check loads the file exactly as \`portcullis serve\` does. It runs the schema (types, ranges,
unknown fields, required fields), then the rules that cross fields: a route names an existing
upstream, route and listener names are unique, two listeners do not share an address, target
URLs are \`http(s)\` without credentials, a query or a fragment, path prefixes are canonical,
\`trustedProxies\` are IP addresses or CIDRs, and TLS files can be read. It reports **every
problem at once**, in document order, each as \`file:line:column path: message\`. The message
says what was expected and what was found. Exit status: **0** valid (warnings allowed), **2** any
error, a file that cannot be read, or a usage error.

For example, this file:

\`\`\`yaml
${SAMPLE_BAD.trimEnd()}
\`\`\`

gives:

\`\`\`text
${sampleOutput()}
\`\`\`

Warnings do not make a config invalid. For example, an admin listener bound to a non-loopback
address or an upstream with \`tls.rejectUnauthorized: false\` gives a warning.

## Hot reload

The gateway reloads its config on **SIGHUP**, and when the file changes if \`reload.watch\` is
true (the default). The watcher watches the file's directory, so a file replaced by rename (as
editors and config management tools do) is seen too.

- The new file is loaded and checked exactly like \`portcullis config check\`. **A config with any
  error is refused, and the running config keeps serving.** The errors are logged, and
  \`portcullis_config_reloads_total{result="rejected"}\` counts the refusals
  (\`result="applied"\` counts the reloads that were applied).
- Routes, upstreams, policies and \`proxy\` apply to the requests that start after the reload.
  Requests already in flight finish on the config they started with, and the old upstream
  connections close after the last of them. \`shutdown\` applies to the next shutdown.
- TLS certificate and key files are re-read on every reload, so a renewed certificate needs no
  restart.
- Changes to **\`listeners\`** (other than \`tls\`), **\`admin\`** and **\`accessLog\`** need a
  **restart**. A reload that changes them applies the rest and logs a warning. \`log.level\` and
  \`reload.watch\` are also read only at start.

## Editor support

\`docs/config.schema.json\` is a JSON Schema (draft-07) of this file. Editors use it to complete
and check fields as you type. With the YAML language server (VS Code's YAML extension, and
others), put this on the first line of the config:

\`\`\`yaml
# yaml-language-server: $schema=./node_modules/portcullis/docs/config.schema.json
\`\`\`

The path is relative to the config file. In this repository, \`examples/config/*.yaml\` use
\`../../docs/config.schema.json\`. A JSON config can set \`"$schema"\` the same way only if the tool
strips it. Portcullis rejects unknown fields, so prefer the editor's schema mapping setting
(\`yaml.schemas\` / \`json.schemas\`) for JSON files.
`
}

export function markdown(minimal: string, full: string): string {
  const root = inFileForm(JSON.parse(JSON.stringify(GatewayConfig))) as Schema
  const required = new Set(root.required ?? [])
  const props = Object.entries(root.properties ?? {})
  const parts: string[] = [intro(minimal)]
  parts.push('## Top-level keys\n')
  parts.push('| Key | Type | Required | Description |')
  parts.push('| --- | --- | --- | --- |')
  for (const [key, s] of props) {
    const req = required.has(key) && s.default === undefined
    parts.push(
      `| [${code(key)}](#${anchorOf(key)}) | ${cell(code(typeOf(s)))} | ${req ? '**yes**' : 'no'} | ${cell(s.description ?? '')} |`,
    )
  }
  parts.push('')
  for (const [key, s] of props)
    parts.push(topLevelSection(key, s, required.has(key) && s.default === undefined))
  parts.push(`## Complete example

\`examples/config/full.yaml\` uses every section. It passes \`portcullis config check\`.

\`\`\`yaml
${full.trimEnd()}
\`\`\`
`)
  // One blank line between blocks, one newline at the end.
  return `${parts
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`
}

// ---------------------------------------------------------------------------------------------

/** docs/errors.md: the error catalogue, so that the page cannot drift from the code. */
export function errorsMarkdown(): string {
  const rows = Object.entries(ERROR_CATALOGUE).map(
    ([code, e]) => `| \`${code}\` | ${e.status} | ${e.title} |`,
  )
  return `<!-- Generated by scripts/gen-config-docs.ts from src/gateway/errors.ts. Do not edit. -->

# Error codes

Every response the gateway makes itself (a denial, a limit, an upstream failure) is an RFC 9457
\`application/problem+json\` document with a stable \`code\`:

\`\`\`json
{
  "type": "urn:portcullis:error:GW_ERR_ROUTE_NOT_FOUND",
  "title": "No route matches this request",
  "status": 404,
  "code": "GW_ERR_ROUTE_NOT_FOUND",
  "instance": "urn:portcullis:request:4ec58203-a6c9-49de-b9ab-319f72f276f7"
}
\`\`\`

\`instance\` carries the request id (also in the \`X-Request-Id\` response header and the access log),
so one failing request can be found in the logs. \`detail\`, when present, is safe to show; the
cause of an error (an upstream's connection error, a stack) is only in the gateway log. Clients
should branch on \`code\`, never on \`title\` or \`detail\`. Responses to framing errors
(\`GW_ERR_REQUEST_SMUGGLING\`, a missing Host, too many headers) close the connection. This
includes what Node's HTTP layer would otherwise answer itself: a request its parser refuses, an
\`Expect\` other than \`100-continue\` (\`GW_ERR_EXPECTATION_FAILED\`), an \`Upgrade\`
(\`GW_ERR_NOT_IMPLEMENTED\`), \`CONNECT\` and \`TRACE\` (\`GW_ERR_METHOD_NOT_ALLOWED\`).

| code | status | title |
| --- | --- | --- |
${rows.join('\n')}
`
}

function main(argv: string[]): number {
  const check = argv.includes('--check')
  const unknown = argv.filter((a) => a !== '--check')
  if (unknown.length > 0) {
    process.stderr.write(`usage: gen-config-docs [--check] (unknown: ${unknown.join(' ')})\n`)
    return 2
  }
  const root = repoRoot()
  const read = (rel: string) => readFileSync(join(root, rel), 'utf8')
  const outputs: [string, string][] = [
    ['docs/config.schema.json', `${JSON.stringify(jsonSchema(), null, 2)}\n`],
    ['docs/config.md', markdown(read('examples/config/minimal.yaml'), read('examples/config/full.yaml'))],
    ['docs/errors.md', errorsMarkdown()],
  ]
  if (check) {
    const stale = outputs.filter(([rel, text]) => {
      const p = join(root, rel)
      return !existsSync(p) || readFileSync(p, 'utf8') !== text
    })
    if (stale.length > 0) {
      for (const [rel] of stale)
        process.stderr.write(`${rel} is stale: it differs from what scripts/gen-config-docs.ts generates\n`)
      process.stderr.write(`Regenerate with: ${REGENERATE}\n`)
      return 1
    }
    process.stdout.write(`${outputs.map(([rel]) => rel).join(', ')} are up to date\n`)
    return 0
  }
  for (const [rel, text] of outputs) {
    writeFileSync(join(root, rel), text)
    process.stdout.write(`wrote ${rel}\n`)
  }
  return 0
}

process.exitCode = main(process.argv.slice(2))
