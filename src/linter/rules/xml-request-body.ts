import { defineRule, perOperation } from './util.js'

export const xmlRequestBody = defineRule({
  id: 'xml-request-body',
  title: 'XML request bodies accepted',
  category: 'API8',
  severity: 'low',
  why: 'Every XML parser configured with its defaults is a candidate for XXE (external entities reading local files or calling internal URLs) and entity expansion bombs. If the API must accept XML, the parser needs DTDs and external entities off; if it does not, stop listing XML.',
  before: `paths:
  /orders:
    post:
      requestBody:
        content:
          application/xml:
            schema: { type: object }
      responses:
        "201": { description: Created }`,
  after: `paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "201": { description: Created }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      const xml = o.op.requestBody?.content.find((m) => /[/+]xml$/.test(m.type))
      return xml ? `${o.label} accepts ${xml.type}` : undefined
    }),
})
