/**
 * "bazaar": a deliberately vulnerable shop API for the scanner's tests, and its secure twin.
 * Ground truth: bazaar.truth.ts. Runs in a worker (host.ts); never outside a test.
 *
 * A form-encoded login answering `{session: {token}}` (sent as X-Session), a profile at
 * /v2/profile answered as `{profile: {...}}`, addresses nested under the user, orders by number
 * (`ORD-1001`) with `items` lists, a cart → coupon → checkout flow, a gift-card redemption (a safe
 * scan must never call it), and an operation that never answers in time.
 */
import { randomBytes } from 'node:crypto'
import { get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http'
import type { FixtureApp } from './host-worker.js'

export const BAZAAR_PASSWORDS = { alice: 'alice-Baz4ar!', bob: 'bob-Baz4ar!' } as const

export const BAZAAR_SPEC = `openapi: 3.0.3
info: { title: Bazaar, version: 2.7.1 }
security:
  - session: []
paths:
  /auth/login:
    post:
      operationId: login
      security: []
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [email, password]
              properties:
                email: { type: string, format: email }
                password: { type: string, format: password }
      responses:
        '200':
          description: signed in
          content:
            application/json:
              schema:
                type: object
                properties:
                  session:
                    type: object
                    properties: { token: { type: string }, expiresIn: { type: integer } }
                  user: { $ref: '#/components/schemas/UserRef' }
        '401': { $ref: '#/components/responses/Error' }
        '429': { $ref: '#/components/responses/Error' }
  /v2/profile:
    get:
      operationId: getProfile
      responses:
        '200':
          description: profile
          content:
            application/json:
              schema:
                type: object
                properties: { profile: { $ref: '#/components/schemas/Profile' } }
    patch:
      operationId: updateProfile
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties: { name: { type: string, maxLength: 80 } }
      responses:
        '200':
          description: profile
          content:
            application/json:
              schema:
                type: object
                properties: { profile: { $ref: '#/components/schemas/Profile' } }
        '400': { $ref: '#/components/responses/Error' }
  /v2/users/{userId}/addresses:
    parameters:
      - { name: userId, in: path, required: true, schema: { type: string } }
    get:
      operationId: listAddresses
      responses:
        '200':
          description: addresses
          content:
            application/json:
              schema:
                type: object
                properties:
                  addresses: { type: array, items: { $ref: '#/components/schemas/Address' } }
        '403': { $ref: '#/components/responses/Error' }
    post:
      operationId: addAddress
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/AddressInput' }
            example: { street: 12 Scanner Lane, city: Lyon, zip: '69001' }
      responses:
        '201':
          description: added
          content:
            application/json:
              schema:
                type: object
                properties: { address: { $ref: '#/components/schemas/Address' } }
  /v2/users/{userId}/addresses/{addressId}:
    parameters:
      - { name: userId, in: path, required: true, schema: { type: string } }
      - { name: addressId, in: path, required: true, schema: { type: string } }
    get:
      operationId: getAddress
      responses:
        '200':
          description: address
          content:
            application/json:
              schema:
                type: object
                properties: { address: { $ref: '#/components/schemas/Address' } }
        '403': { $ref: '#/components/responses/Error' }
    delete:
      operationId: deleteAddress
      responses:
        '204': { description: deleted }
  /v2/orders:
    get:
      operationId: listOrders
      responses:
        '200':
          description: orders
          content:
            application/json:
              schema:
                type: object
                properties:
                  orders: { type: array, items: { $ref: '#/components/schemas/Order' } }
  /v2/orders/{orderNo}:
    parameters:
      - { name: orderNo, in: path, required: true, schema: { type: string, pattern: '^ORD-[0-9]+$' } }
    get:
      operationId: getOrder
      responses:
        '200':
          description: order
          content:
            application/json:
              schema:
                type: object
                properties: { order: { $ref: '#/components/schemas/Order' } }
        '404': { $ref: '#/components/responses/Error' }
    delete:
      operationId: deletePendingOrder
      summary: Delete one of my pending orders
      responses:
        '204': { description: deleted }
        '409': { $ref: '#/components/responses/Error' }
  /v2/cart:
    delete:
      operationId: emptyCart
      summary: Empty my cart
      responses:
        '204': { description: emptied }
  /v2/cart/items:
    post:
      operationId: addToCart
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [sku, qty]
              properties:
                sku: { type: string, enum: [SKU-TEA, SKU-MUG] }
                qty: { type: integer, minimum: 1, maximum: 10 }
      responses:
        '200': { description: cart }
  /v2/cart/coupon:
    post:
      operationId: applyCoupon
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [code]
              properties: { code: { type: string, maxLength: 20 } }
      responses:
        '200': { description: applied }
        '409': { $ref: '#/components/responses/Error' }
  /v2/checkout:
    post:
      operationId: checkout
      responses:
        '201':
          description: order placed
          content:
            application/json:
              schema:
                type: object
                properties: { order: { $ref: '#/components/schemas/Order' } }
        '400': { $ref: '#/components/responses/Error' }
        '429': { $ref: '#/components/responses/Error' }
  /v2/gift-cards/redeem:
    post:
      operationId: redeemGiftCard
      summary: Redeem a gift card into loyalty points
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [code]
              properties: { code: { type: string, example: GIFT-500 } }
      responses:
        '200': { description: redeemed }
  /v2/link-preview:
    post:
      operationId: linkPreview
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [link]
              properties: { link: { type: string } }
      responses:
        '200': { description: preview }
        '400': { $ref: '#/components/responses/Error' }
  /v2/products:
    get:
      operationId: searchProducts
      parameters:
        - { name: q, in: query, schema: { type: string, maxLength: 50 } }
      responses:
        '200':
          description: products
          content:
            application/json:
              schema:
                type: object
                properties:
                  products: { type: array, items: { $ref: '#/components/schemas/Product' } }
  /v2/recommendations:
    get:
      operationId: recommendations
      summary: Personal recommendations (slow)
      responses:
        '200':
          description: recommendations
          content:
            application/json:
              schema:
                type: object
                properties: { products: { type: array, items: { $ref: '#/components/schemas/Product' } } }
components:
  securitySchemes:
    session: { type: apiKey, in: header, name: X-Session }
  responses:
    Error:
      description: error
      content:
        application/json:
          schema:
            type: object
            properties: { message: { type: string } }
  schemas:
    UserRef:
      type: object
      properties: { id: { type: string }, email: { type: string } }
    Profile:
      type: object
      additionalProperties: false
      properties:
        id: { type: string, readOnly: true }
        email: { type: string, readOnly: true }
        name: { type: string }
        loyaltyPoints: { type: integer, readOnly: true }
        tier: { type: string, enum: [basic, silver, gold], readOnly: true }
    AddressInput:
      type: object
      additionalProperties: false
      required: [street, city, zip]
      properties:
        street: { type: string, maxLength: 100 }
        city: { type: string, maxLength: 60 }
        zip: { type: string, maxLength: 10 }
    Address:
      type: object
      additionalProperties: false
      properties:
        addressId: { type: string, readOnly: true }
        street: { type: string }
        city: { type: string }
        zip: { type: string }
    Order:
      type: object
      additionalProperties: false
      properties:
        number: { type: string }
        status: { type: string, enum: [pending, paid, shipped] }
        total: { type: number }
        couponCode: { type: string }
        items:
          type: array
          items:
            type: object
            additionalProperties: false
            properties: { sku: { type: string }, qty: { type: integer }, price: { type: number } }
    Product:
      type: object
      additionalProperties: false
      properties: { sku: { type: string }, name: { type: string }, price: { type: number } }
`

export function bazaarAuthYaml(): string {
  const id = (name: keyof typeof BAZAAR_PASSWORDS) => `  ${name}:
    login:
      path: /auth/login
      form: { email: ${name}@bazaar.test, password: "${BAZAAR_PASSWORDS[name]}" }
      tokenPointer: /session/token
      as: header X-Session
`
  return `identities:
${id('alice')}${id('bob')}flows:
  checkout-with-coupon:
    identity: alice
    steps:
      - { method: POST, path: /v2/cart/items, json: { sku: SKU-TEA, qty: 1 } }
      - { method: POST, path: /v2/cart/coupon, json: { code: WELCOME10 } }
      - { method: POST, path: /v2/checkout, capture: { orderNo: /order/number } }
    cleanup:
      - { method: DELETE, path: "/v2/orders/{{orderNo}}" }
      - { method: DELETE, path: /v2/cart }
`
}

interface User {
  id: string
  email: string
  name: string
  password: string
  loyaltyPoints: number
  tier: string
  [k: string]: unknown
}
interface Address {
  addressId: string
  userId: string
  street: string
  city: string
  zip: string
}
interface Item {
  sku: string
  qty: number
  price: number
}
interface Order {
  number: string
  userId: string
  status: string
  total: number
  couponCode?: string
  items: Item[]
  paymentCard: { brand: string; cardNumber: string }
}

const PRICES: Record<string, number> = { 'SKU-TEA': 12, 'SKU-MUG': 9 }
const PRODUCTS = [
  { sku: 'SKU-TEA', name: 'Green tea', price: 12 },
  { sku: 'SKU-MUG', name: 'Stoneware mug', price: 9 },
]

class Fail extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export function createApp(opts: { secure: boolean }): FixtureApp {
  const secure = opts.secure
  const users: User[] = [
    {
      id: 'u-1001',
      email: 'alice@bazaar.test',
      name: 'Alice',
      password: BAZAAR_PASSWORDS.alice,
      loyaltyPoints: 120,
      tier: 'silver',
    },
    {
      id: 'u-1002',
      email: 'bob@bazaar.test',
      name: 'Bob',
      password: BAZAAR_PASSWORDS.bob,
      loyaltyPoints: 15,
      tier: 'basic',
    },
  ]
  let addresses: Address[] = [
    { addressId: 'adr-7f1', userId: 'u-1001', street: '1 Rue Alice', city: 'Lyon', zip: '69002' },
    { addressId: 'adr-9c4', userId: 'u-1002', street: '8 Bob Street', city: 'Leeds', zip: 'LS1' },
  ]
  let orders: Order[] = [
    {
      number: 'ORD-1001',
      userId: 'u-1001',
      status: 'paid',
      total: 33,
      items: [
        { sku: 'SKU-TEA', qty: 2, price: 12 },
        { sku: 'SKU-MUG', qty: 1, price: 9 },
      ],
      paymentCard: { brand: 'visa', cardNumber: '4111111111111111' },
    },
    {
      number: 'ORD-1002',
      userId: 'u-1002',
      status: 'shipped',
      total: 9,
      items: [{ sku: 'SKU-MUG', qty: 1, price: 9 }],
      paymentCard: { brand: 'mastercard', cardNumber: '5555555555554444' },
    },
  ]
  const giftCards = [{ code: 'GIFT-500', value: 500, redeemed: false }]
  let nextOrder = 1003
  let nextAddress = 1
  const sessions = new Map<string, string>()
  const carts = new Map<string, { items: Item[]; coupon?: string }>()
  const couponUses = new Set<string>()
  const failures = new Map<string, number[]>()
  const checkouts = new Map<string, number[]>()
  const counters: Record<string, number> = { requests: 0, redeems: 0, slow: 0 }

  const body = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of req) {
      n += (c as Buffer).length
      if (n > 64 * 1024) throw new Fail(413, 'too large')
      chunks.push(c as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }
  const json = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const text = await body(req)
    try {
      const v = JSON.parse(text || '{}') as unknown
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {
      // below
    }
    throw new Fail(400, 'invalid JSON')
  }
  const who = (req: IncomingMessage): User => {
    const id = sessions.get(String(req.headers['x-session'] ?? ''))
    const u = users.find((x) => x.id === id)
    if (!u) throw new Fail(401, 'sign in first')
    return u
  }
  const profile = (u: User) => ({
    id: u.id,
    email: u.email,
    name: u.name,
    loyaltyPoints: u.loyaltyPoints,
    tier: u.tier,
  })
  const orderView = (o: Order) => {
    const { userId: _u, paymentCard, ...pub } = o
    return secure ? pub : { ...pub, paymentCard }
  }
  const selfOnly = (me: User, userId: string, readOnly: boolean) => {
    if (me.id !== userId && (secure || !readOnly)) throw new Fail(403, 'not your account')
  }
  const fetchStatus = (link: string) =>
    new Promise<number>((resolve, reject) => {
      const r = httpGet(link, { timeout: 2000 }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      r.on('timeout', () => r.destroy(new Error('timeout')))
      r.on('error', reject)
    })

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
  ): Promise<[number, unknown?, Record<string, string>?] | undefined> {
    const path = url.pathname
    const method = req.method ?? 'GET'
    let m: RegExpExecArray | null
    if (path === '/auth/login' && method === 'POST') {
      if (!/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? ''))
        throw new Fail(415, 'form expected')
      const f = new URLSearchParams(await body(req))
      const email = (f.get('email') ?? '').toLowerCase()
      const now = Date.now()
      const recent = (failures.get(email) ?? []).filter((t) => t > now - 60_000)
      if (secure && recent.length >= 5)
        throw new Fail(429, 'too many attempts, try later', { 'retry-after': '60' })
      const u = users.find((x) => x.email === email)
      if (!u || u.password !== f.get('password')) {
        if (failures.size > 10_000) failures.clear()
        failures.set(email, [...recent, now])
        throw new Fail(
          401,
          secure ? 'Invalid email or password' : u ? 'Wrong password' : 'No account with this email',
        )
      }
      const token = randomBytes(24).toString('hex')
      if (sessions.size > 10_000) sessions.clear()
      sessions.set(token, u.id)
      return [200, { session: { token, expiresIn: 3600 }, user: { id: u.id, email: u.email } }]
    }
    if (path === '/v1/products' && method === 'GET' && !secure) return [200, PRODUCTS]
    const me = who(req)
    if (path === '/v2/profile') {
      if (method === 'GET') return [200, { profile: profile(me) }]
      if (method === 'PATCH') {
        const b = await json(req)
        for (const [k, v] of Object.entries(b)) {
          if (secure && k !== 'name') throw new Fail(400, `${k} cannot be changed`)
          if (k === 'name' && (typeof v !== 'string' || v.length > 80)) throw new Fail(400, 'name: up to 80')
          // The flaw (vulnerable twin): any profile field is copied (loyaltyPoints, tier, …).
          if (k === 'name' || k === 'loyaltyPoints' || k === 'tier' || k === 'email')
            (me as Record<string, unknown>)[k] = v
        }
        return [200, { profile: profile(me) }]
      }
    }
    m = /^\/v2\/users\/([^/]+)\/addresses$/.exec(path)
    if (m) {
      const userId = decodeURIComponent(m[1] as string)
      if (method === 'GET') {
        selfOnly(me, userId, true)
        return [
          200,
          { addresses: addresses.filter((a) => a.userId === userId).map(({ userId: _u, ...a }) => a) },
        ]
      }
      if (method === 'POST') {
        selfOnly(me, userId, false)
        const b = await json(req)
        const s = (k: string, max: number) => {
          const v = b[k]
          if (typeof v !== 'string' || v === '' || v.length > max) throw new Fail(400, `${k}: 1 to ${max}`)
          return v
        }
        if (addresses.length > 2000) throw new Fail(503, 'full')
        const a: Address = {
          addressId: `adr-n${nextAddress++}`,
          userId,
          street: s('street', 100),
          city: s('city', 60),
          zip: s('zip', 10),
        }
        addresses.push(a)
        const { userId: _u, ...view } = a
        return [201, { address: view }]
      }
    }
    m = /^\/v2\/users\/([^/]+)\/addresses\/([^/]+)$/.exec(path)
    if (m) {
      const userId = decodeURIComponent(m[1] as string)
      const a = addresses.find(
        (x) => x.userId === userId && x.addressId === decodeURIComponent(m?.[2] as string),
      )
      if (method === 'GET') {
        selfOnly(me, userId, true)
        if (!a) throw new Fail(404, 'no such address')
        const { userId: _u, ...view } = a
        return [200, { address: view }]
      }
      if (method === 'DELETE') {
        selfOnly(me, userId, false)
        if (!a) throw new Fail(404, 'no such address')
        addresses = addresses.filter((x) => x !== a)
        return [204]
      }
    }
    if (path === '/v2/orders' && method === 'GET')
      return [200, { orders: orders.filter((o) => o.userId === me.id).map(orderView) }]
    m = /^\/v2\/orders\/([^/]+)$/.exec(path)
    if (m) {
      const o = orders.find((x) => x.number === decodeURIComponent(m?.[1] as string))
      if (method === 'GET') {
        if (!o || (secure && o.userId !== me.id)) throw new Fail(404, 'no such order')
        return [200, { order: orderView(o) }]
      }
      if (method === 'DELETE') {
        if (!o || o.userId !== me.id) throw new Fail(404, 'no such order')
        if (o.status !== 'pending') throw new Fail(409, 'only pending orders can be deleted')
        orders = orders.filter((x) => x !== o)
        if (o.couponCode) couponUses.delete(`${me.id}:${o.couponCode}`)
        return [204]
      }
    }
    if (path === '/v2/cart' && method === 'DELETE') {
      carts.delete(me.id)
      return [204]
    }
    if (path === '/v2/cart/items' && method === 'POST') {
      const b = await json(req)
      const price = PRICES[String(b.sku)]
      const qty = b.qty
      if (price === undefined || typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > 10)
        throw new Fail(400, 'sku and qty 1 to 10')
      const cart = carts.get(me.id) ?? { items: [] }
      if (cart.items.length >= 20) throw new Fail(400, 'cart full')
      cart.items.push({ sku: String(b.sku), qty, price })
      carts.set(me.id, cart)
      return [200, { cart }]
    }
    if (path === '/v2/cart/coupon' && method === 'POST') {
      const b = await json(req)
      if (b.code !== 'WELCOME10') throw new Fail(404, 'unknown coupon')
      // The flaw (vulnerable twin): the one-per-customer coupon is never marked used.
      if (secure && couponUses.has(`${me.id}:WELCOME10`)) throw new Fail(409, 'coupon already used')
      const cart = carts.get(me.id) ?? { items: [] }
      cart.coupon = 'WELCOME10'
      carts.set(me.id, cart)
      return [200, { cart }]
    }
    if (path === '/v2/checkout' && method === 'POST') {
      await body(req)
      const now = Date.now()
      const recent = (checkouts.get(me.id) ?? []).filter((t) => t > now - 60_000)
      if (secure && recent.length >= 3)
        throw new Fail(429, 'too many orders, slow down', { 'retry-after': '60' })
      const cart = carts.get(me.id)
      if (!cart || cart.items.length === 0) throw new Fail(400, 'cart is empty')
      checkouts.set(me.id, [...recent, now])
      const sum = cart.items.reduce((n, i) => n + i.qty * i.price, 0)
      const o: Order = {
        number: `ORD-${nextOrder++}`,
        userId: me.id,
        status: 'pending',
        total: cart.coupon ? Math.round(sum * 90) / 100 : sum,
        items: cart.items,
        paymentCard: { brand: 'visa', cardNumber: '4000056655665556' },
        ...(cart.coupon ? { couponCode: cart.coupon } : {}),
      }
      if (cart.coupon) couponUses.add(`${me.id}:${cart.coupon}`)
      orders.push(o)
      carts.delete(me.id)
      return [201, { order: orderView(o) }]
    }
    if (path === '/v2/gift-cards/redeem' && method === 'POST') {
      counters.redeems = (counters.redeems ?? 0) + 1
      const b = await json(req)
      const card = giftCards.find((c) => c.code === b.code && !c.redeemed)
      if (!card) throw new Fail(404, 'no such card')
      card.redeemed = true
      me.loyaltyPoints += card.value
      return [200, { profile: profile(me) }]
    }
    if (path === '/v2/link-preview' && method === 'POST') {
      const b = await json(req)
      let link: URL
      try {
        link = new URL(String(b.link))
      } catch {
        throw new Fail(400, 'link must be a URL')
      }
      if (link.protocol !== 'http:') throw new Fail(400, 'http links only')
      if (secure && /^(localhost|127\.|10\.|192\.168\.|169\.254\.|0\.|\[)/.test(link.hostname))
        throw new Fail(400, 'this address is not allowed')
      try {
        return [200, { link: link.href, status: await fetchStatus(link.href) }]
      } catch {
        throw new Fail(502, 'could not fetch the link')
      }
    }
    if (path === '/v2/products' && method === 'GET') {
      const q = url.searchParams.get('q') ?? ''
      if (!secure && q.includes("'"))
        return [
          500,
          {
            message: `SequelizeDatabaseError: unterminated quoted string at or near "'${q.split("'")[1]?.slice(0, 20) ?? ''}"`,
          },
        ]
      return [200, { products: PRODUCTS.filter((p) => p.name.toLowerCase().includes(q.toLowerCase())) }]
    }
    if (path === '/v2/recommendations' && method === 'GET') {
      // Both twins: a slow backend. Answers after 20 s (or never, if the client gives up first).
      counters.slow = (counters.slow ?? 0) + 1
      const t = setTimeout(() => {
        if (!res.writableEnded)
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"products":[]}')
      }, 20_000)
      res.on('close', () => clearTimeout(t))
      return undefined
    }
    throw new Fail(404, 'not found')
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    counters.requests = (counters.requests ?? 0) + 1
    const url = new URL(req.url ?? '/', 'http://bazaar.invalid')
    const send = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'SAMEORIGIN',
        'cache-control': 'private, no-store',
        ...extra,
      })
      res.end(payload === undefined ? undefined : JSON.stringify(payload))
    }
    handle(req, res, url).then(
      (r) => {
        if (r) send(r[0], r[1], r[2])
      },
      (e: unknown) => {
        req.resume()
        if (e instanceof Fail) send(e.status, { message: e.message }, e.headers)
        else send(500, { message: 'internal error' })
      },
    )
  }

  return {
    listener,
    state: () => ({
      users: users.map(({ password: _p, ...u }) => u),
      addresses,
      orders,
      giftCards,
      couponUses: [...couponUses].sort(),
      carts: [...carts.entries()],
    }),
    counters: () => ({ ...counters }),
    spec: BAZAAR_SPEC,
    specExt: 'yaml',
    authYaml: bazaarAuthYaml(),
  }
}
