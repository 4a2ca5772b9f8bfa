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
    for (const r of ctx.documentIndex().refs)
      if (/^http:\/\//i.test(r.ref))
        out.push({
          message: `$ref ${r.ref.slice(0, 100)} is fetched over http`,
          locations: [ctx.loc({ file: r.file, pointer: r.pointer })],
        })
    return out
  },
})
