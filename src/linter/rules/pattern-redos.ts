import { esc } from '../context.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

/**
 * A quantified group whose content starts with a repeated atom: `(a+)+`, `([a-z0-9]+-?)+`,
 * `(\w*)*`, `(.*x){2,}`. Groups that start with a literal delimiter (`(-[a-z]+)*`, `(\.\d+)*`)
 * match each repetition one way only and are not reported.
 */
function nestedQuantifier(p: string): boolean {
  const stack: number[] = []
  for (let i = 0; i < p.length; i++) {
    const c = p[i]
    if (c === '\\') {
      i++
      continue
    }
    if (c === '[') {
      const end = p.indexOf(']', i + 2)
      if (end === -1) return false
      i = end
      continue
    }
    if (c === '(') stack.push(i)
    else if (c === ')') {
      const start = stack.pop()
      if (start === undefined) return false
      const after = p.slice(i + 1)
      if (!/^([+*]|\{\d+,\d*\})/.test(after)) continue
      const content = p.slice(start + 1, i).replace(/^\?(:|<?[=!])/, '')
      if (/^(\[[^\]]*\]|\\[dwsDWS]|\.|[A-Za-z0-9])([+*]|\{\d+,\d*\})/.test(content)) return true
      if (/^(\\[dws]|\.)\|(\\[dws]|\.)$/.test(content)) return true
    }
  }
  return false
}

export const patternRedos = defineRule({
  id: 'pattern-redos',
  title: 'Regular expression prone to catastrophic backtracking',
  category: 'API4',
  severity: 'medium',
  why: "Servers and validators that run `pattern` with a backtracking engine (most of them) can be stalled for seconds by one crafted string when the pattern nests quantifiers (`^(a+)+$`). The spec's patterns run on attacker input. Rewrite without nested quantifiers (the gateway itself runs patterns on a linear-time engine).",
  before: `paths:
  /tags:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                name: { type: string, maxLength: 50, pattern: "^([a-z0-9]+-?)+$" }
      responses:
        "201": { description: Created }`,
  after: `paths:
  /tags:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                name: { type: string, maxLength: 50, pattern: "^[a-z0-9]+(-[a-z0-9]+)*$" }
      responses:
        "201": { description: Created }`,
  check(ctx) {
    const out: Hit[] = []
    const seen = new Set<string>()
    for (const n of ctx.requestNodes()) {
      const p = n.schema.pattern
      if (typeof p !== 'string' || p.length > 2000) continue
      const key = `${n.at.file}#${n.at.pointer}`
      if (seen.has(key) || !nestedQuantifier(p)) continue
      seen.add(key)
      out.push({
        message: `${n.op.label}: pattern of "${n.name ?? 'the body'}" nests quantifiers`,
        locations: [ctx.loc({ file: n.at.file, pointer: `${n.at.pointer}/${esc('pattern')}` }, n.op)],
        ops: [n.op],
      })
    }
    return out
  },
})
