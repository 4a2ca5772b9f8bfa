/**
 * `checkByBuilding`: the `check` of a policy whose rules are part of compiling its config (a
 * spec's operations, rule expressions): it builds the policy once with inert dependencies (a
 * silent logger, a private memory store, no audit), turns a PolicyConfigError into problems and
 * closes what it built. The same code that `create` runs decides, so `config check` and `serve`
 * cannot disagree. Only for policies whose `create` has no effect outside the instance (no
 * timers, connections or file watches before the first request).
 */
import pino from 'pino'
import { noopAudit } from '../../audit/event.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import type { PolicyCheckContext, PolicyDefinition, PolicyInstance, PolicyProblem } from './policy.js'

const silent = pino({ level: 'silent' })

export function checkByBuilding<C>(
  create: (config: C, deps: Parameters<PolicyDefinition['create']>[1]) => PolicyInstance,
): (config: C, ctx: PolicyCheckContext) => PolicyProblem[] {
  return (config, ctx) => {
    const store = createMemoryStore({})
    let inst: PolicyInstance | undefined
    try {
      inst = create(config, {
        logger: silent,
        now: Date.now,
        routeName: ctx.route.name,
        store,
        baseDir: ctx.baseDir,
        audit: noopAudit,
      })
      return []
    } catch (err) {
      const e = err as Error & { problems?: readonly string[] }
      if (e.name !== 'ConfigError') throw err
      if (e.problems === undefined) return [{ path: [], message: e.message }]
      return e.problems.map((p) => problemFromString(p, config))
    } finally {
      void Promise.resolve(inst?.close?.()).catch(() => undefined)
      void store.close().catch(() => undefined)
    }
  }
}

const LEAD =
  /^((?:[A-Za-z_$][\w$-]*)(?:\[\d+\]|\.[A-Za-z_$][\w$-]*)*)((?: \([^)]*\))?)((?:\[\d+\]|\.[A-Za-z_$][\w$-]*)*): ([\s\S]*)$/

/**
 * `rules[0] (admins).match: give at least one key` → path ['rules', 0, 'match'] when `rules` is
 * a field of the policy's config; anything else keeps the whole string as the message.
 */
export function problemFromString(s: string, config: unknown): PolicyProblem {
  const m = LEAD.exec(s)
  if (m) {
    const path = segments(`${m[1]}${m[3]}`)
    const first = path[0]
    if (
      typeof first === 'string' &&
      config !== null &&
      typeof config === 'object' &&
      Object.hasOwn(config, first)
    ) {
      const label = m[2] ? `${m[2].trim()} ` : ''
      return { path, message: `${label}${m[4]}` }
    }
  }
  return { path: [], message: s }
}

function segments(path: string): (string | number)[] {
  const out: (string | number)[] = []
  for (const m of path.matchAll(/([A-Za-z_$][\w$-]*)|\[(\d+)\]/g))
    out.push(m[1] !== undefined ? m[1] : Number(m[2]))
  return out
}
