import { defineRule, perOperation } from './util.js'

const READ = /(^|[:._-])(read|readonly|view|get|list)($|[:._-])|^read/i
const NOT_READ = /write|admin|manage|delete|create|update|modify|edit|full|all/i

export const writeWithReadScope = defineRule({
  id: 'write-with-read-scope',
  title: 'Write operation guarded only by a read scope',
  category: 'API5',
  severity: 'high',
  why: 'A POST, PUT, PATCH or DELETE whose requirement asks only for `*:read` scopes lets every read-only integration change data. Usually a copy-paste from the GET beside it.',
  before: `paths:
  /orders/{id}:
    delete:
      security:
        - oauth: [orders:read]
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "204": { description: Deleted }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { orders:read: Read, orders:write: Write }`,
  after: `paths:
  /orders/{id}:
    delete:
      security:
        - oauth: [orders:write]
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "204": { description: Deleted }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { orders:read: Read, orders:write: Write }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      if (!o.write || o.security === undefined || o.anonymous || o.authFlow) return undefined
      const weak = o.security.some((r) => {
        const scopes = Object.values(r).flat()
        return scopes.length > 0 && scopes.every((s) => READ.test(s) && !NOT_READ.test(s))
      })
      return weak ? `${o.label} changes state but a read-only scope is enough` : undefined
    }),
})
