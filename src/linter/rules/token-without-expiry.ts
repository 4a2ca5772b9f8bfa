import { norm, sensitiveKind } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const EXPIRY =
  /^(expiresin|expiresat|expires|expiry|expiration|expirationdate|exp|ttl|validuntil|lifetime|maxage|expirytime|expiretime|expiresafter)$/

export const tokenWithoutExpiry = defineRule({
  id: 'token-without-expiry',
  title: 'Issued token with no stated lifetime',
  category: 'API2',
  severity: 'medium',
  why: 'A login or token operation that returns a token without saying when it expires (`expiresIn`, `expires_at`, `exp`...) is usually backed by tokens that never expire: a token stolen once (from a log, a laptop, a browser extension) works forever. Issue short-lived tokens and say so in the contract.',
  before: `paths:
  /login:
    post:
      security: []
      responses:
        "200":
          description: Logged in
          content:
            application/json:
              schema:
                type: object
                properties:
                  token: { type: string }`,
  after: `paths:
  /login:
    post:
      security: []
      responses:
        "200":
          description: Logged in
          content:
            application/json:
              schema:
                type: object
                properties:
                  token: { type: string }
                  expiresIn: { type: integer, description: Seconds until the token expires }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops) {
      if (!o.authFlow) continue
      for (const r of o.op.responses) {
        if (!r.status.startsWith('2')) continue
        for (const m of r.content) {
          if (m.schema === undefined || m.schemaLocation === undefined) continue
          // Tokens and their lifetimes sit near the top of the answer: two levels are enough.
          const nodes = ctx.collect(m.schema, m.schemaLocation, 'response', o, 'response', 2)
          const token = nodes.find(
            (n) =>
              n.name !== undefined &&
              n.path.length <= 2 &&
              sensitiveKind(n.name) === 'token' &&
              !/refresh/i.test(n.name),
          )
          if (token === undefined) continue
          if (nodes.some((n) => n.name !== undefined && EXPIRY.test(norm(n.name)))) continue
          out.push({
            message: `${o.label} returns "${token.name}" but no expiry (expiresIn, expires_at, exp...)`,
            locations: [ctx.loc(token.at, o)],
            ops: [o],
          })
        }
      }
    }
    return out
  },
})
