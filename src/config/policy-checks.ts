/**
 * The checks that need more than the document: each enabled policy's `prepare` (remote spec
 * documents) and `check` (its rules, pipeline/policy.ts), for every route it is enabled on, and
 * each spec-driven route's OpenAPI document. `loadGatewayConfig` runs them after `loadConfigFile`;
 * `portcullis config check`, `serve` and every reload load configs through it, so they agree.
 */
import { dirname, isAbsolute, resolve } from 'node:path'
import pino, { type Logger } from 'pino'
import { egressConfigProblems } from '../egress/destinations.js' // egress:
import { checkByBuilding } from '../gateway/pipeline/check.js'
import type { PolicyProblem } from '../gateway/pipeline/policy.js'
import { enabledPolicies, preparePolicies } from '../gateway/runtime.js'
import { formatProblem as formatSpecProblem, loadOpenApi, SpecError } from '../openapi/index.js'
import {
  type ConfigProblem,
  formatPath,
  type LoadOptions,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
} from './load.js'
import type { GatewayConfig } from './schema.js'

type Seg = string | number

export interface GatewayLoadOptions extends LoadOptions {
  /** Where policies' `prepare` and checks log (silent by default). */
  logger?: Logger
  /** The document itself; `file` then only names it (messages, relative paths) and is not read. */
  text?: string | undefined
}

/**
 * Loads a gateway config completely: the document (schema and cross-field rules), then every
 * policy's `prepare` and `check` and every spec-driven route's document. Never throws for bad
 * content; `config` is undefined when there is any error.
 */
export async function loadGatewayConfig(file: string, opts: GatewayLoadOptions = {}): Promise<LoadResult> {
  const r = opts.text !== undefined ? loadConfigText(opts.text, file, opts) : loadConfigFile(file, opts)
  if (!r.config) return r
  const logger = opts.logger ?? pino({ level: 'silent' })
  const baseDir = dirname(resolve(file))
  const locate = r.locate ?? (() => ({}))
  const scrub = r.scrub ?? ((m: string) => m)
  const written = r.asWritten ?? ((segs: readonly Seg[]) => [...segs])
  // located and named as the document writes it (`remote.maxStale`, not `remote.maxStaleMs`)
  const at = (segs: readonly Seg[], message: string): ConfigProblem => ({
    file,
    path: formatPath(written(segs)),
    ...locate(written(segs)),
    message: scrub(message),
  })
  try {
    await preparePolicies(r.config, { logger, baseDir })
  } catch (err) {
    return {
      ...r,
      config: undefined,
      errors: [at([], `a policy could not be prepared: ${(err as Error).message}`)],
    }
  }
  const errors = checkPolicies(r.config, baseDir, logger).map((p) => at(p.segs, p.message))
  // egress: the egress proxy's destinations (CA files, OpenAPI documents, ranges)
  for (const p of egressConfigProblems(r.config.egress, baseDir))
    errors.push(at(['egress', ...p.segs], p.message))
  if (errors.length === 0) return r
  return { ...r, config: undefined, errors: errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)) }
}

/** Every policy problem and spec-route problem of a (schema-valid) config, deduplicated. */
export function checkPolicies(
  config: GatewayConfig,
  baseDir: string,
  logger: Logger,
): { segs: Seg[]; message: string }[] {
  const out: { segs: Seg[]; message: string }[] = []
  const seen = new Set<string>()
  const add = (segs: Seg[], message: string) => {
    const key = `${formatPath(segs)}\u0000${message}`
    if (seen.has(key)) return
    seen.add(key)
    out.push({ segs, message })
  }
  config.routes.forEach((route, i) => {
    for (const s of specRouteProblems(route, baseDir)) add(['routes', i, 'match', ...s.path], s.message)
    for (const p of enabledPolicies(config, route)) {
      const ctx = { baseDir, logger, route, config }
      let problems: PolicyProblem[]
      try {
        problems = p.def.check
          ? p.def.check(p.config as never, ctx)
          : p.def.checkByBuilding
            ? checkByBuilding(p.def.create.bind(p.def))(p.config as never, ctx)
            : []
      } catch (err) {
        problems = [{ path: [], message: `cannot be checked: ${(err as Error).message}` }]
      }
      const base: Seg[] = p.global ? ['policies', p.id] : ['routes', i, 'policies', p.id]
      for (const prob of problems) {
        const where = p.global && config.routes.length > 1 ? ` (on route ${route.name})` : ''
        add([...base, ...prob.path], `${prob.message}${where}${prob.hint ? ` — ${prob.hint}` : ''}`)
      }
    }
  })
  return out
}

/** A route with `match.openapi`: its document must load, and it gives the methods. */
function specRouteProblems(route: GatewayConfig['routes'][number], baseDir: string): PolicyProblem[] {
  const cfg = route.match.openapi
  if (!cfg) return []
  const out: PolicyProblem[] = []
  if (route.match.methods)
    out.push({ path: ['methods'], message: 'not with match.openapi (the spec gives the methods)' })
  const file = isAbsolute(cfg.spec) ? cfg.spec : resolve(baseDir, cfg.spec)
  try {
    loadOpenApi(file, { rootDir: dirname(file) })
  } catch (err) {
    if (!(err instanceof SpecError)) throw err
    for (const p of err.problems) out.push({ path: ['openapi', 'spec'], message: formatSpecProblem(p) })
  }
  return out
}
