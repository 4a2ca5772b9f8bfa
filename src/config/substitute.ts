/**
 * `${env:NAME}` and `${file:PATH}` references in config values: replaced before validation, their
 * values recorded as secrets (scrubbed from every message) and their paths as secret paths.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { formatPath, type Problem, type Seg } from './messages.js'

const SUBST = /\$\{(env|file):([^}]*)\}/g

/**
 * Replaces ${env:NAME} and ${file:PATH} in every string; records where secrets came from and
 * their values (scrubbed from every message). Returns a copy: YAML aliases become independent
 * values, an alias that contains itself is a problem (not an endless recursion), and a
 * `__proto__` key stays an ordinary (unknown) field instead of replacing the prototype.
 */
export function substitute(
  node: unknown,
  segs: Seg[],
  ctx: {
    baseDir: string
    env: NodeJS.ProcessEnv
    problems: Problem[]
    secretPaths: Set<string>
    secretValues: Set<string>
    ancestors: Set<object>
  },
): unknown {
  if (typeof node === 'string') {
    if (!node.includes('${')) return node
    let secret = false
    const out = node.replace(SUBST, (_m, kind: string, ref: string) => {
      secret = true
      ctx.secretPaths.add(formatPath(segs))
      if (kind === 'env') {
        const v = ctx.env[ref]
        if (v === undefined) {
          ctx.problems.push({ segs: [...segs], message: `environment variable ${ref} is not set` })
          return ''
        }
        ctx.secretValues.add(v)
        return v
      }
      const p = isAbsolute(ref) ? ref : resolve(ctx.baseDir, ref)
      try {
        const v = readFileSync(p, 'utf8').replace(/\r?\n$/, '')
        ctx.secretValues.add(v)
        return v
      } catch (err) {
        ctx.problems.push({
          segs: [...segs],
          message: `cannot read ${p}: ${(err as NodeJS.ErrnoException).code}`,
        })
        return ''
      }
    })
    if (secret) ctx.secretValues.add(out)
    return out
  }
  if (node === null || typeof node !== 'object') return node
  if (ctx.ancestors.has(node)) {
    ctx.problems.push({ segs: [...segs], message: 'a YAML alias that contains itself is not allowed' })
    return null
  }
  ctx.ancestors.add(node)
  try {
    if (Array.isArray(node)) return node.map((v, i) => substitute(v, [...segs, i], ctx))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node)) {
      Object.defineProperty(out, k, {
        value: substitute(v, [...segs, k], ctx),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  } finally {
    ctx.ancestors.delete(node)
  }
}
