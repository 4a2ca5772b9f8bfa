import { defineRule, documentsRateLimit, perOperation } from './util.js'

export const missing429Response = defineRule({
  id: 'missing-429-response',
  title: 'Operations with no documented rate limit (429)',
  category: 'API4',
  severity: 'low',
  why: 'An operation that documents neither a 429 response nor rate-limit headers gives clients no way to back off and reviewers no sign that a limit exists. Reported once, with every operation concerned, rather than once per operation.',
  before: `paths:
  /search:
    get:
      responses:
        "200": { description: Results }`,
  after: `paths:
  /search:
    get:
      responses:
        "200": { description: Results }
        "429":
          description: Too many requests
          headers:
            Retry-After: { schema: { type: integer } }`,
  check: (ctx) =>
    perOperation(ctx, (o) => (documentsRateLimit(o) ? undefined : `${o.label} documents no 429`)),
})
