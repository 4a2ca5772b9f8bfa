// The bench upstream's answers, shared by the upstream server and bench/leak-guard-body.ts.

export const UPSTREAM_BODY = Buffer.from(
  JSON.stringify({
    id: 'b3c1f0e2-6a4d-4c1e-9a57-2f8d1e0c7b44',
    status: 'shipped',
    amount: { value: 4299, currency: 'EUR' },
    customer: { id: 'cus_7Q2xY9kL', email: 'jane.doe@example.com', tier: 'gold' },
    items: [
      { sku: 'SKU-1042', qty: 2, price: 1499 },
      { sku: 'SKU-2210', qty: 1, price: 1301 },
    ],
    createdAt: '2024-05-01T12:34:56Z',
  }),
)

/** GET /api/orders?big: a ~20 KB JSON list (45 orders) of orders (the leak-guard scenario; no secret in it). */
export const BIG_BODY = Buffer.from(
  JSON.stringify({
    orders: Array.from({ length: 45 }, (_, i) => ({
      id: `b3c1f0e2-6a4d-4c1e-9a57-${String(i).padStart(12, '0')}`,
      status: i % 3 === 0 ? 'shipped' : 'pending',
      amount: { value: 4299 + i, currency: 'EUR' },
      customer: {
        id: `cus_${i}Q2xY9kL`,
        email: `user${i}@example.com`,
        tier: 'gold',
        note: 'leave at the door, ring twice',
      },
      items: [
        { sku: `SKU-${1000 + i}`, qty: 2, price: 1499, title: 'Stainless steel water bottle, 750 ml' },
        { sku: `SKU-${2000 + i}`, qty: 1, price: 1301, title: 'Insulated lunch box with two compartments' },
      ],
      createdAt: '2024-05-01T12:34:56Z',
    })),
  }),
)
