import { defineRule, documentsRateLimit, perOperation } from './util.js'

export const businessFlowNoRateLimit = defineRule({
  id: 'business-flow-no-rate-limit',
  title: 'Sensitive business flow with no documented limit',
  category: 'API6',
  severity: 'medium',
  why: 'Checkout, orders, coupons, gift cards, bookings, invitations, reviews: flows a bot automates to buy up stock, drain promotions or spam. They need limits per user (and often per device or payment instrument) that ordinary rate limits do not give. If the contract documents none (no 429), there usually is none.',
  before: `paths:
  /coupons/redeem:
    post:
      responses:
        "200": { description: Redeemed }`,
  after: `paths:
  /coupons/redeem:
    post:
      responses:
        "200": { description: Redeemed }
        "429":
          description: Too many redemptions
          headers:
            Retry-After: { schema: { type: integer } }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      o.businessFlow && !o.authFlow && !documentsRateLimit(o)
        ? `${o.label} is a business flow a bot can automate, with no documented limit`
        : undefined,
    ),
})
