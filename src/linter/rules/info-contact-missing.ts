import type { Hit } from '../types.js'
import { defineRule, isObject } from './util.js'

export const infoContactMissing = defineRule({
  id: 'info-contact-missing',
  title: 'No owner contact in info',
  category: 'API9',
  severity: 'info',
  why: 'An API inventory needs an owner for each API: who to call when it leaks, who decides when an old version goes away. `info.contact` is where the contract says it.',
  before: `info:
  title: Orders
  version: 1.0.0
openapi: 3.1.0
paths: {}`,
  after: `info:
  title: Orders
  version: 1.0.0
  contact: { name: Orders team, email: orders-team@example.com }
openapi: 3.1.0
paths: {}`,
  check(ctx) {
    const info = ctx.root.info
    if (
      isObject(info) &&
      isObject(info.contact) &&
      (info.contact.email || info.contact.url || info.contact.name)
    )
      return []
    const h: Hit = {
      message: 'info.contact is missing',
      locations: [ctx.loc({ file: ctx.rootFile, pointer: '/info' })],
    }
    return [h]
  },
})
