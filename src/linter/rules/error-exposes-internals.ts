import { isInternalErrorName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc } from './util.js'

export const errorExposesInternals = defineRule({
  id: 'error-exposes-internals',
  title: 'Error response schema with stack trace or debug fields',
  category: 'API8',
  severity: 'medium',
  why: 'An error schema with `stack`, `trace`, `exception`, `sql` or `debug` properties documents that the API sends its internals to clients: file paths, library versions, queries, sometimes secrets. Return a problem document (RFC 9457: type, title, status, detail) and log the rest server-side with a correlation id.',
  before: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }
        "500":
          description: Error
          content:
            application/json:
              schema:
                type: object
                properties:
                  message: { type: string }
                  stackTrace: { type: string }`,
  after: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }
        "500":
          description: Error
          content:
            application/problem+json:
              schema:
                type: object
                properties:
                  title: { type: string }
                  instance: { type: string, description: Correlation id for support }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.responseNodes()) {
      if (n.name === undefined || !n.status || !/^[45]|default/.test(n.status)) continue
      if (!isInternalErrorName(n.name)) continue
      out.push({
        message: `${n.op.label}: error ${n.status} declares "${n.name}"`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    return out
  },
})
