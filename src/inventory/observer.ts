/**
 * The gateway's one hook into the inventory and the dashboard's live data: `observe` from the log
 * phase, `responseTee` when an upstream response starts (a bounded copy of sampled bodies). Built
 * once per process at start (gateway/serve.ts), kept across reloads.
 */
import { isAbsolute, resolve } from 'node:path'
import type { GatewayConfig } from '../config/schema.js'
import type { Telemetry } from '../dashboard/telemetry.js'
import type { RequestContext } from '../gateway/pipeline/context.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import type { Inventory } from './inventory.js'
import type { SpecSource } from './spec-index.js'

/** A sink for a response body's chunks (a sampled response). */
export interface BodyTee {
  push(chunk: Buffer): void
}

export interface TrafficObserver {
  /** Log phase; never throws. */
  observe(entry: LogEntry): void
  /** Response phase: a tee for a sampled response's body, else undefined. Never throws. */
  responseTee(
    ctx: RequestContext,
    status: number,
    headers: Readonly<Record<string, unknown>>,
  ): BodyTee | undefined
}

/** One observer feeding the inventory and the dashboard's telemetry (either may be off). */
export function trafficObserver(
  inventory: Inventory | undefined,
  telemetry: Telemetry | undefined,
): TrafficObserver | undefined {
  if (inventory === undefined && telemetry === undefined) return undefined
  return {
    observe(entry) {
      inventory?.observe(entry)
      telemetry?.observe(entry)
    },
    responseTee(ctx, status, headers) {
      if (inventory === undefined) return undefined
      try {
        return inventory.responseTee(ctx, status, headers)
      } catch {
        return undefined
      }
    },
  }
}

/**
 * The specs the inventory compares traffic with: `inventory.specs` when given, else every spec
 * the config names — routes with `match.openapi` (at their path prefix) and policies with a `spec`
 * (at their `basePath`), global and per route — each file and prefix once.
 */
export function inventorySpecs(config: GatewayConfig, baseDir: string): SpecSource[] {
  const abs = (f: string) => (isAbsolute(f) ? f : resolve(baseDir, f))
  const out = new Map<string, SpecSource>()
  const add = (file: string, prefix: string) => {
    const p = prefix === '/' ? '' : prefix.replace(/\/+$/, '')
    const src = { file: abs(file), prefix: p }
    out.set(`${src.file}\u0000${p}`, src)
  }
  if (config.inventory.specs) {
    for (const s of config.inventory.specs) add(s.file, s.pathPrefix)
    return [...out.values()]
  }
  const fromPolicies = (policies: Record<string, unknown> | undefined) => {
    for (const pc of Object.values(policies ?? {})) {
      if (pc === null || typeof pc !== 'object') continue
      const o = pc as { spec?: unknown; basePath?: unknown; enabled?: unknown }
      if (o.enabled === false || typeof o.spec !== 'string') continue
      add(o.spec, typeof o.basePath === 'string' ? o.basePath : '')
    }
  }
  for (const r of config.routes) {
    const oa = r.match.openapi
    if (oa) add(oa.spec, r.match.pathPrefix)
    fromPolicies(r.policies as Record<string, unknown> | undefined)
  }
  fromPolicies(config.policies as Record<string, unknown>)
  return [...out.values()]
}
