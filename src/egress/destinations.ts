/**
 * The destinations of an `egress:` config: CA files read and OpenAPI documents compiled once, and
 * every problem found, with its path under `egress` (the config loader reports them, so `config
 * check`, `serve` and a reload agree; the proxy refuses to start or reload with any).
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path'
import { formatProblem, SpecError } from '../openapi/index.js'
import { type CompiledApi, compileApiCached } from '../policies/openapi-validation/compiled.js'
import { cidrListProblems } from '../util/cidr.js'
import type { EgressConfig, EgressDestination } from './config.js'

export interface Destination {
  cfg: EgressDestination
  ports: Set<number>
  ca: Buffer | undefined
  api: CompiledApi | undefined
}

/** A problem with the `egress:` section: its path under `egress` and what is wrong. */
export interface EgressProblem {
  segs: (string | number)[]
  message: string
}

/** The destinations of a config (CA files read, specs compiled), and every problem found. */
export function compileDestinations(
  cfg: EgressConfig,
  baseDir: string,
): { problems: EgressProblem[]; dests: Destination[] } {
  const problems: EgressProblem[] = []
  const ranges = (key: 'clients' | 'allowAddresses' | 'denyAddresses') =>
    cidrListProblems(key, cfg[key]).forEach((p, k) => {
      const i = /\[(\d+)\]/.exec(p)?.[1]
      problems.push({ segs: [key, Number(i ?? k)], message: p.slice(p.indexOf(': ') + 2) })
    })
  ranges('clients')
  ranges('allowAddresses')
  ranges('denyAddresses')
  const dests: Destination[] = []
  cfg.allow.forEach((d, i) => {
    let ca: Buffer | undefined
    let api: CompiledApi | undefined
    if (d.ca !== undefined) {
      try {
        ca = readFileSync(isAbsolute(d.ca) ? d.ca : resolvePath(baseDir, d.ca))
      } catch (err) {
        problems.push({
          segs: ['allow', i, 'ca'],
          message: `cannot read ${d.ca}: ${(err as { code?: string }).code ?? (err as Error).message}`,
        })
      }
    }
    if (d.openapi !== undefined) {
      const file = isAbsolute(d.openapi.spec) ? d.openapi.spec : resolvePath(baseDir, d.openapi.spec)
      try {
        api = compileApiCached(file, { rootDir: dirname(file), responses: true })
      } catch (err) {
        if (!(err instanceof SpecError)) throw err
        for (const p of err.problems)
          problems.push({ segs: ['allow', i, 'openapi', 'spec'], message: formatProblem(p) })
      }
      if (d.tls === 'required')
        problems.push({
          segs: ['allow', i, 'tls'],
          message: 'openapi validation needs to see the answers: set tls to originate (or optional)',
        })
    }
    dests.push({ cfg: d, ports: new Set(d.ports), ca, api })
  })
  return { problems, dests }
}

/**
 * The problems of an `egress:` section (paths relative to it), for the config loader: what the
 * proxy would refuse to start with. None when it is disabled.
 */
export function egressConfigProblems(cfg: EgressConfig, baseDir: string): EgressProblem[] {
  return cfg.enabled ? compileDestinations(cfg, baseDir).problems : []
}
