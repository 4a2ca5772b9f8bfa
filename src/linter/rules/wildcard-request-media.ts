import { defineRule, perOperation } from './util.js'

export const wildcardRequestMedia = defineRule({
  id: 'wildcard-request-media',
  title: 'Request body of any media type',
  category: 'API8',
  severity: 'low',
  why: 'A request body declared as `*/*` (or `application/*`) accepts whatever the client claims to send. Servers that pick a parser from `Content-Type` then parse XML, YAML or serialized objects that were never meant to reach them, and the gateway cannot validate anything. Name the media types you accept.',
  before: `paths:
  /import:
    post:
      requestBody:
        content:
          "*/*":
            schema: { type: string, maxLength: 1000000 }
      responses:
        "202": { description: Accepted }`,
  after: `paths:
  /import:
    post:
      requestBody:
        content:
          text/csv:
            schema: { type: string, maxLength: 1000000 }
      responses:
        "202": { description: Accepted }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      const w = o.op.requestBody?.content.find((m) => m.type === '*/*' || m.type === 'application/*')
      return w ? `${o.label} accepts a body of any media type (${w.type})` : undefined
    }),
})
