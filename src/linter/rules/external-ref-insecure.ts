import { esc } from '../context.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const externalRefInsecure = defineRule({
  id: 'external-ref-insecure',
  title: '$ref to a document over plain HTTP',
  category: 'API10',
  severity: 'medium',
  why: 'A `$ref` fetched over `http://` lets anyone on the path change the schema your gateway validates against and your clients are generated from (loosen a pattern, add a field). Reference over HTTPS from a host you control, or vendor the document.',
  before: `components:
  schemas:
    Money:
      $ref: "http://schemas.example.com/money.json"`,
  after: `components:
  schemas:
    Money:
      $ref: "https://schemas.example.com/money.json"`,
  check(ctx) {
    const out: Hit[] = []
    let visits = 0
    const walk = (v: unknown, pointer: string, file: string, depth: number) => {
      if (++visits > 3_000_000 || depth > 200 || v === null || typeof v !== 'object') return
      if (Array.isArray(v)) {
        v.forEach((x, i) => {
          walk(x, `${pointer}/${i}`, file, depth + 1)
        })
        return
      }
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref' && typeof x === 'string' && /^http:\/\//i.test(x))
          out.push({
            message: `$ref ${x.slice(0, 100)} is fetched over http`,
            locations: [ctx.loc({ file, pointer: `${pointer}/$ref` })],
          })
        else if (k !== 'example' && k !== 'examples') walk(x, `${pointer}/${esc(k)}`, file, depth + 1)
      }
    }
    for (const file of ctx.spec.documents.fileNames()) walk(ctx.spec.documents.document(file), '', file, 0)
    return out
  },
})
