import type { Hit } from '../types.js'
import { defineRule, nodeLoc } from './util.js'

const BINARY_MEDIA = /^(application\/octet-stream|image\/|video\/|audio\/|application\/pdf|application\/zip)/

export const uploadUnbounded = defineRule({
  id: 'upload-unbounded',
  title: 'File upload without a size limit',
  category: 'API4',
  severity: 'medium',
  why: 'An upload (`format: binary`, `contentEncoding: base64`, an image or octet-stream body) with no `maxLength` has no documented size: clients cannot know the limit, and the gateway cannot refuse a 10 GB body before the upstream spools it to disk. State the largest accepted size.',
  before: `paths:
  /avatar:
    put:
      requestBody:
        content:
          image/png:
            schema: { type: string, format: binary }
      responses:
        "204": { description: Stored }`,
  after: `paths:
  /avatar:
    put:
      requestBody:
        content:
          image/png:
            schema: { type: string, format: binary, maxLength: 1048576 }
      responses:
        "204": { description: Stored }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      const s = n.schema
      const binary =
        s.format === 'binary' ||
        s.format === 'byte' ||
        s.format === 'base64' ||
        s.contentEncoding !== undefined ||
        s.contentMediaType !== undefined
      if (!binary || typeof s.maxLength === 'number') continue
      out.push({
        message: `${n.op.label}: upload "${n.name ?? n.mediaType}" has no maxLength`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    for (const o of ctx.ops)
      for (const m of o.op.requestBody?.content ?? [])
        if (BINARY_MEDIA.test(m.type) && m.schema === undefined)
          out.push({
            message: `${o.label}: ${m.type} body with no schema, so no size`,
            locations: [ctx.loc(m.location, o)],
            ops: [o],
          })
    return out
  },
})
