/**
 * "ledger": a deliberately vulnerable banking API for the scanner's tests, in the style of a
 * JSON:API service (every answer wrapped in `data`, errors as `{errors: [...]}`), and its secure
 * twin. Ground truth: ledger.truth.ts. Runs in a worker (host.ts); never outside a test.
 *
 * Static API keys in X-Api-Key; roles customer and support; the privileged operations carry no
 * marker (no tag, no /admin path, no x-roles), only their descriptions say who they are for.
 * Every client is limited to 15 requests per second (429 + Retry-After: 1) in both twins.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FixtureApp } from './host-worker.js'

export const LEDGER_KEYS = {
  carol: 'lk_support_4be1c0a9d27f61e3',
  alice: 'lk_cust_9d0f3b2a7c6e5184',
  bob: 'lk_cust_2a71e6c4b9d8f035',
} as const

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const wrapped = (schema: unknown) => ({
  'application/json': {
    schema: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: schema } },
  },
})
const listOf = (schema: unknown) => ({
  'application/json': {
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        data: { type: 'array', items: schema },
        meta: { type: 'object', properties: { count: { type: 'integer' } } },
      },
    },
  },
})
const problem = { description: 'error', content: { 'application/json': { schema: ref('Errors') } } }
const accountIdParam = {
  name: 'accountId',
  in: 'path',
  required: true,
  schema: { type: 'string', format: 'uuid' },
}

export const LEDGER_SPEC = {
  openapi: '3.1.0',
  info: { title: 'Ledger', version: '3.2.0' },
  servers: [{ url: '/' }],
  security: [{ apiKey: [] }],
  paths: {
    '/api/me': {
      get: {
        operationId: 'currentUser',
        summary: 'The caller',
        responses: { '200': { description: 'me', content: wrapped(ref('User')) }, '401': problem },
      },
    },
    '/api/users/{userId}': {
      parameters: [
        { name: 'userId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
      ],
      get: {
        operationId: 'getUser',
        summary: 'A user (the user themself)',
        responses: { '200': { description: 'user', content: wrapped(ref('User')) }, '403': problem },
      },
    },
    '/api/users/{userId}/role': {
      parameters: [
        { name: 'userId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
      ],
      put: {
        operationId: 'setUserRole',
        summary: "Change a user's role",
        description: 'Support staff only.',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                required: ['role'],
                properties: { role: { type: 'string', enum: ['customer', 'support'] } },
              },
            },
          },
        },
        responses: { '200': { description: 'user', content: wrapped(ref('User')) }, '403': problem },
      },
    },
    '/api/accounts': {
      get: {
        operationId: 'listAccounts',
        summary: "The caller's accounts",
        responses: { '200': { description: 'accounts', content: listOf(ref('Account')) } },
      },
      post: {
        operationId: 'openAccount',
        summary: 'Open an account',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: ref('AccountInput'),
              example: { nickname: 'Savings', currency: 'EUR' },
            },
          },
        },
        responses: {
          '201': { description: 'opened', content: wrapped(ref('Account')) },
          '400': problem,
          '403': problem,
        },
      },
    },
    '/api/accounts/{accountId}': {
      parameters: [accountIdParam],
      get: {
        operationId: 'getAccount',
        summary: 'One of the caller’s accounts',
        responses: { '200': { description: 'account', content: wrapped(ref('Account')) }, '404': problem },
      },
      delete: {
        operationId: 'closeAccount',
        summary: 'Close one of the caller’s accounts',
        responses: { '204': { description: 'closed' }, '404': problem },
      },
    },
    '/api/accounts/{accountId}/freeze': {
      parameters: [accountIdParam],
      post: {
        operationId: 'freezeAccount',
        summary: 'Freeze an account',
        description: 'Support desk: freeze an account suspected of fraud.',
        responses: { '200': { description: 'frozen', content: wrapped(ref('Account')) }, '403': problem },
      },
    },
    '/api/transactions': {
      get: {
        operationId: 'listTransactions',
        summary: 'Transactions of one of the caller’s accounts',
        parameters: [
          { name: 'accountId', in: 'query', required: true, schema: { type: 'string', format: 'uuid' } },
        ],
        responses: {
          '200': { description: 'transactions', content: listOf(ref('Transaction')) },
          '404': problem,
        },
      },
    },
    '/api/audit-events': {
      get: {
        operationId: 'listAuditEvents',
        summary: 'Audit trail',
        description: 'For the compliance team: every event of every customer.',
        responses: { '200': { description: 'events', content: listOf(ref('AuditEvent')) }, '403': problem },
      },
    },
    '/api/maintenance/reset': {
      post: {
        operationId: 'resetSandbox',
        summary: 'Reset the sandbox',
        description: 'Wipes every account and transaction and loads the demo data again.',
        responses: { '200': { description: 'reset' }, '403': problem },
      },
    },
    '/api/exchange-rates': {
      get: {
        operationId: 'exchangeRates',
        security: [],
        responses: { '200': { description: 'rates', content: listOf(ref('Rate')) } },
      },
    },
  },
  components: {
    securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' } },
    schemas: {
      Errors: {
        type: 'object',
        properties: {
          errors: {
            type: 'array',
            items: { type: 'object', properties: { status: { type: 'string' }, title: { type: 'string' } } },
          },
        },
      },
      User: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', format: 'uuid', readOnly: true },
          name: { type: 'string' },
          email: { type: 'string', format: 'email' },
          role: { type: 'string', enum: ['customer', 'support'], readOnly: true },
        },
      },
      AccountInput: {
        type: 'object',
        additionalProperties: false,
        required: ['nickname', 'currency'],
        properties: {
          nickname: { type: 'string', minLength: 1, maxLength: 60 },
          currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
        },
      },
      Account: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', format: 'uuid', readOnly: true },
          ownerId: { type: 'string', format: 'uuid', readOnly: true },
          nickname: { type: 'string' },
          currency: { type: 'string' },
          balance: { type: 'number', readOnly: true },
          frozen: { type: 'boolean', readOnly: true },
        },
      },
      Transaction: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', format: 'uuid' },
          accountId: { type: 'string', format: 'uuid' },
          amount: { type: 'number' },
          memo: { type: 'string' },
        },
      },
      AuditEvent: {
        type: 'object',
        additionalProperties: false,
        properties: { id: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' } },
      },
      Rate: {
        type: 'object',
        additionalProperties: false,
        properties: { currency: { type: 'string' }, rate: { type: 'number' } },
      },
    },
  },
}

export function ledgerAuthYaml(): string {
  const id = (name: keyof typeof LEDGER_KEYS, role: string) =>
    `  ${name}:\n    roles: [${role}]\n    apiKey: { header: X-Api-Key, value: ${LEDGER_KEYS[name]} }\n`
  // Support first: the identity listed first owns no account.
  return `identities:\n${id('carol', 'support')}${id('alice', 'customer')}${id('bob', 'customer')}`
}

interface User {
  id: string
  name: string
  email: string
  role: 'customer' | 'support'
}
interface Account {
  id: string
  ownerId: string
  nickname: string
  currency: string
  balance: number
  frozen: boolean
  riskScore: number
  kycDocumentNumber: string
}
interface Txn {
  id: string
  accountId: string
  amount: number
  memo: string
}

class JsonApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(title)
  }
}

let uuidSeq = 0
/** Deterministic v4-shaped UUIDs (the fixture's data must be the same at every start). */
function uuid(): string {
  uuidSeq++
  const hex = (uuidSeq * 2654435761).toString(16).padStart(12, '0').slice(-12)
  return `5e${hex.slice(0, 6)}-${hex.slice(6, 10)}-4${hex.slice(0, 3)}-a${hex.slice(3, 6)}-${hex}`
}

function seed() {
  const users: User[] = [
    { id: uuid(), name: 'Carol Support', email: 'carol@ledger.test', role: 'support' },
    { id: uuid(), name: 'Alice Martin', email: 'alice@ledger.test', role: 'customer' },
    { id: uuid(), name: 'Bob Stone', email: 'bob@ledger.test', role: 'customer' },
  ]
  const [, alice, bob] = users as [User, User, User]
  const accounts: Account[] = [
    {
      id: uuid(),
      ownerId: alice.id,
      nickname: 'Alice checking',
      currency: 'EUR',
      balance: 1250.5,
      frozen: false,
      riskScore: 12,
      kycDocumentNumber: 'P-ALICE-99812',
    },
    {
      id: uuid(),
      ownerId: bob.id,
      nickname: 'Bob checking',
      currency: 'USD',
      balance: 310,
      frozen: false,
      riskScore: 40,
      kycDocumentNumber: 'P-BOB-11873',
    },
  ]
  const [a1, b1] = accounts as [Account, Account]
  const txns: Txn[] = [
    { id: uuid(), accountId: a1.id, amount: -20, memo: 'coffee beans' },
    { id: uuid(), accountId: a1.id, amount: 2400, memo: 'salary march' },
    { id: uuid(), accountId: b1.id, amount: -75, memo: 'bike repair' },
  ]
  return { users, accounts, txns }
}

const AUDIT = [
  { id: 'ev-1', actor: 'alice@ledger.test', action: 'login' },
  { id: 'ev-2', actor: 'bob@ledger.test', action: 'transfer 75 USD' },
  { id: 'ev-3', actor: 'carol@ledger.test', action: 'freeze account' },
]

export function createApp(opts: { secure: boolean }): FixtureApp {
  const secure = opts.secure
  uuidSeq = 0
  let { users, accounts, txns } = seed()
  const keyOwner = new Map<string, string>(
    (Object.keys(LEDGER_KEYS) as (keyof typeof LEDGER_KEYS)[]).map((k, i) => [
      LEDGER_KEYS[k],
      (users[i] as User).id,
    ]),
  )
  const counters: Record<string, number> = { requests: 0, throttled: 0, resets: 0 }
  const windows = new Map<string, { start: number; n: number }>()

  const view = (a: Account) => {
    const { riskScore, kycDocumentNumber, ...pub } = a
    return secure ? pub : { ...pub, riskScore, kycDocumentNumber }
  }
  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of req) {
      n += (c as Buffer).length
      if (n > 64 * 1024) throw new JsonApiError(413, 'Payload Too Large')
      chunks.push(c as Buffer)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    if (text === '') return {}
    try {
      const v = JSON.parse(text) as unknown
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {
      // below
    }
    throw new JsonApiError(400, 'Malformed JSON')
  }
  const account = (id: string, me: User, ownerOnly: boolean): Account => {
    if (!UUID.test(id)) {
      // The flaw (vulnerable twin): the driver's exception, stack and all, reaches the client.
      if (!secure) throw new TypeError(`invalid input syntax for type uuid: "${id.slice(0, 40)}"`)
      throw new JsonApiError(400, 'accountId must be a UUID')
    }
    const a = accounts.find((x) => x.id === id)
    if (!a) throw new JsonApiError(404, 'Not Found')
    if (ownerOnly && a.ownerId !== me.id && !(secure && me.role === 'support'))
      throw new JsonApiError(404, 'Not Found')
    return a
  }

  async function handle(req: IncomingMessage, url: URL): Promise<[number, unknown?]> {
    const path = url.pathname
    const method = req.method ?? 'GET'
    if (path === '/api/exchange-rates' && method === 'GET')
      return [
        200,
        {
          data: [
            { currency: 'USD', rate: 1.08 },
            { currency: 'GBP', rate: 0.86 },
          ],
        },
      ]
    if (!secure && path === '/api/internal/debug' && method === 'GET')
      return [
        200,
        {
          data: {
            env: 'sandbox',
            db: 'postgres://ledger:l3dger@10.0.0.12/ledger',
            featureFlags: ['fast-transfers'],
          },
        },
      ]
    let key = req.headers['x-api-key']
    if (typeof key !== 'string' && !secure) key = url.searchParams.get('api_key') ?? undefined // The flaw: keys in URLs.
    const me = users.find((u) => u.id === keyOwner.get(String(key ?? '')))
    if (!me) throw new JsonApiError(401, 'Unauthorized')
    const support = me.role === 'support'
    let m: RegExpExecArray | null
    if (path === '/api/me' && method === 'GET') return [200, { data: me }]
    m = /^\/api\/users\/([^/]+)$/.exec(path)
    if (m && method === 'GET') {
      const u = users.find((x) => x.id === m?.[1])
      if (!u || (u !== me && !support)) throw new JsonApiError(403, 'Forbidden')
      return [200, { data: u }]
    }
    m = /^\/api\/users\/([^/]+)\/role$/.exec(path)
    if (m && method === 'PUT') {
      if (secure && !support) throw new JsonApiError(403, 'Forbidden')
      const u = users.find((x) => x.id === m?.[1])
      if (!u) throw new JsonApiError(404, 'Not Found')
      const b = await readJson(req)
      if (b.role !== 'customer' && b.role !== 'support')
        throw new JsonApiError(400, 'role: customer or support')
      u.role = b.role
      return [200, { data: u }]
    }
    if (path === '/api/accounts' && method === 'GET') {
      const mine = accounts.filter((a) => a.ownerId === me.id).map(view)
      return [200, { data: mine, meta: { count: mine.length } }]
    }
    if (path === '/api/accounts' && method === 'POST') {
      if (support) throw new JsonApiError(403, 'Support staff do not hold accounts')
      const b = await readJson(req)
      if (typeof b.nickname !== 'string' || b.nickname === '' || b.nickname.length > 60)
        throw new JsonApiError(400, 'nickname: 1 to 60 characters')
      if (b.currency !== 'EUR' && b.currency !== 'USD' && b.currency !== 'GBP')
        throw new JsonApiError(400, 'currency')
      if (accounts.length > 2000) throw new JsonApiError(503, 'Service Unavailable')
      const a: Account = {
        id: uuid(),
        ownerId: me.id,
        nickname: b.nickname,
        currency: b.currency,
        // The flaw (vulnerable twin): a readOnly balance from the body is kept.
        balance: !secure && typeof b.balance === 'number' ? b.balance : 0,
        frozen: false,
        riskScore: 50,
        kycDocumentNumber: 'pending',
      }
      accounts.push(a)
      return [201, { data: view(a) }]
    }
    m = /^\/api\/accounts\/([^/]+)$/.exec(path)
    if (m) {
      const id = decodeURIComponent(m[1] as string)
      if (method === 'GET') return [200, { data: view(account(id, me, secure)) }]
      if (method === 'DELETE') {
        const a = account(id, me, true)
        if (a.ownerId !== me.id) throw new JsonApiError(404, 'Not Found')
        accounts = accounts.filter((x) => x !== a)
        txns = txns.filter((t) => t.accountId !== a.id)
        return [204]
      }
    }
    m = /^\/api\/accounts\/([^/]+)\/freeze$/.exec(path)
    if (m && method === 'POST') {
      if (secure && !support) throw new JsonApiError(403, 'Forbidden')
      const a = account(decodeURIComponent(m[1] as string), me, false)
      a.frozen = true
      return [200, { data: view(a) }]
    }
    if (path === '/api/transactions' && method === 'GET') {
      const id = url.searchParams.get('accountId') ?? ''
      const a = account(id, me, secure)
      const list = txns.filter((t) => t.accountId === a.id)
      return [200, { data: list, meta: { count: list.length } }]
    }
    if (path === '/api/audit-events' && method === 'GET') {
      if (secure && !support) throw new JsonApiError(403, 'Forbidden')
      return [200, { data: AUDIT, meta: { count: AUDIT.length } }]
    }
    if (path === '/api/maintenance/reset' && method === 'POST') {
      if (secure && !support) throw new JsonApiError(403, 'Forbidden')
      counters.resets = (counters.resets ?? 0) + 1
      uuidSeq = 100_000
      accounts = []
      txns = []
      return [200, { data: { reset: true } }]
    }
    const known =
      /^\/api\/(me|users\/[^/]+(\/role)?|accounts(\/[^/]+(\/freeze)?)?|transactions|audit-events|maintenance\/reset)$/.test(
        path,
      )
    throw new JsonApiError(known ? 405 : 404, known ? 'Method Not Allowed' : 'Not Found')
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    counters.requests = (counters.requests ?? 0) + 1
    const url = new URL(req.url ?? '/', 'http://ledger.invalid')
    const headers: Record<string, string> = {
      'content-type': 'application/vnd.api+json',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    }
    // The flaw (vulnerable twin): sandboxed pages (Origin: null) are trusted with credentials.
    if (!secure && req.headers.origin === 'null') {
      headers['access-control-allow-origin'] = 'null'
      headers['access-control-allow-credentials'] = 'true'
    }
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, ...extra })
      res.end(body === undefined ? undefined : JSON.stringify(body))
    }
    // Both twins: 15 requests per second per client.
    const client = String(
      req.headers['x-api-key'] ?? url.searchParams.get('api_key') ?? req.socket.remoteAddress,
    )
    const now = Date.now()
    const w = windows.get(client)
    if (!w || now - w.start >= 1000) windows.set(client, { start: now, n: 1 })
    else if (++w.n > 15) {
      counters.throttled = (counters.throttled ?? 0) + 1
      req.resume()
      send(429, { errors: [{ status: '429', title: 'Too Many Requests' }] }, { 'retry-after': '1' })
      return
    }
    if (windows.size > 10_000) windows.clear()
    if (req.method === 'OPTIONS') {
      req.resume()
      send(
        204,
        undefined,
        headers['access-control-allow-origin']
          ? { 'access-control-allow-methods': 'GET, POST, PUT, DELETE' }
          : {},
      )
      return
    }
    handle(req, url).then(
      ([status, body]) => send(status, body),
      (e: unknown) => {
        req.resume()
        if (e instanceof JsonApiError)
          send(e.status, { errors: [{ status: String(e.status), title: e.title }] }, e.headers)
        else {
          const err = e as Error
          send(500, { errors: [{ status: '500', title: String(err), detail: err.stack }] })
        }
      },
    )
  }

  return {
    listener,
    state: () => ({ users, accounts, txns }),
    counters: () => ({ ...counters }),
    spec: JSON.stringify(LEDGER_SPEC, null, 2),
    specExt: 'json',
    authYaml: ledgerAuthYaml(),
  }
}
