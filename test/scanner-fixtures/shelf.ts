/**
 * "shelf": a deliberately vulnerable book-sharing API for the scanner's tests, written the way a
 * small Flask service would be (a route table, snake_case, Werkzeug-style error pages), and its
 * secure twin. Ground truth: shelf.truth.ts. Runs in a worker (host.ts); never outside a test.
 *
 * OAuth2 password grant at POST /oauth/token (form body), HS256 access tokens, usernames as ids,
 * versioned collections, creates answered 201 + Location with an empty body, its own spec at
 * GET /openapi.yaml.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FixtureApp } from './host-worker.js'

export const SHELF_PASSWORDS = {
  alice: 'alice-Sh3lf-pw',
  bob: 'bob-Sh3lf-pw',
  root: 'root-Sh3lf-pw',
} as const

/** The vulnerable twin's JWT secret: a common password. */
export const SHELF_WEAK_SECRET = 'sunshine'

export const SHELF_SPEC = `openapi: 3.0.3
info:
  title: Shelf
  version: 1.4.0
  description: Share books with friends.
security:
  - oauth: []
paths:
  /oauth/token:
    post:
      operationId: token
      summary: Password grant
      security: []
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [grant_type, username, password]
              properties:
                grant_type: { type: string, enum: [password] }
                username: { type: string, maxLength: 32 }
                password: { type: string, maxLength: 128 }
      responses:
        '200':
          description: token
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Token' }
        '400': { $ref: '#/components/responses/OAuthError' }
        '429': { $ref: '#/components/responses/OAuthError' }
  /users/v1:
    get:
      operationId: list_users
      summary: Usernames of every member
      responses:
        '200':
          description: members
          content:
            application/json:
              schema:
                type: array
                items:
                  type: object
                  additionalProperties: false
                  properties: { username: { type: string } }
  /users/v1/register:
    post:
      operationId: register_user
      summary: Create an account
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/Registration' }
            example: { username: reader42, password: correct-horse-battery, email: reader42@example.com }
      responses:
        '201':
          description: registered
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties: { message: { type: string }, username: { type: string } }
        '400': { $ref: '#/components/responses/Error' }
        '409': { $ref: '#/components/responses/Error' }
  /users/v1/me:
    get:
      operationId: get_me
      summary: My account
      responses:
        '200':
          description: me
          content:
            application/json:
              schema: { $ref: '#/components/schemas/User' }
        '401': { $ref: '#/components/responses/Error' }
    delete:
      operationId: delete_me
      summary: Close my account
      responses:
        '204': { description: closed }
  /users/v1/{username}:
    parameters:
      - { name: username, in: path, required: true, schema: { type: string, pattern: '^[a-z0-9_]{3,32}$' } }
    get:
      operationId: get_user
      summary: A member's account (the member or an admin)
      responses:
        '200':
          description: user
          content:
            application/json:
              schema: { $ref: '#/components/schemas/User' }
        '403': { $ref: '#/components/responses/Error' }
        '404': { $ref: '#/components/responses/Error' }
    delete:
      operationId: delete_user
      summary: Remove a member (admins)
      responses:
        '204': { description: removed }
        '403': { $ref: '#/components/responses/Error' }
  /books/v1:
    get:
      operationId: list_books
      summary: My books
      responses:
        '200':
          description: books
          content:
            application/json:
              schema:
                type: array
                items: { $ref: '#/components/schemas/BookSummary' }
    post:
      operationId: add_book
      summary: Add a book
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/BookInput' }
            example: { title: A scanner's notebook, secret_note: lent to nobody }
      responses:
        '201':
          description: created (see Location)
          headers:
            Location: { schema: { type: string } }
        '400': { $ref: '#/components/responses/Error' }
  /books/v1/{book_id}:
    parameters:
      - { name: book_id, in: path, required: true, schema: { type: integer, minimum: 1 } }
    get:
      operationId: get_book
      summary: One of my books
      responses:
        '200':
          description: book
          content:
            application/json:
              schema: { $ref: '#/components/schemas/Book' }
        '404': { $ref: '#/components/responses/Error' }
    put:
      operationId: replace_book
      summary: Replace one of my books
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: '#/components/schemas/BookInput' }
      responses:
        '204': { description: replaced }
        '404': { $ref: '#/components/responses/Error' }
    delete:
      operationId: delete_book
      summary: Remove one of my books
      responses:
        '204': { description: removed }
        '404': { $ref: '#/components/responses/Error' }
  /admin/v1/stats:
    get:
      operationId: stats
      summary: Member and book counts (admins)
      responses:
        '200':
          description: stats
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties: { users: { type: integer }, books: { type: integer } }
        '403': { $ref: '#/components/responses/Error' }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        password:
          tokenUrl: /oauth/token
          scopes: {}
  responses:
    Error:
      description: error
      content:
        application/json:
          schema:
            type: object
            properties: { message: { type: string } }
    OAuthError:
      description: OAuth2 error
      content:
        application/json:
          schema:
            type: object
            properties: { error: { type: string }, error_description: { type: string } }
  schemas:
    Token:
      type: object
      additionalProperties: false
      properties:
        access_token: { type: string }
        token_type: { type: string }
        expires_in: { type: integer }
    Registration:
      type: object
      additionalProperties: false
      required: [username, password, email]
      properties:
        username: { type: string, pattern: '^[a-z0-9_]{3,32}$' }
        password: { type: string, minLength: 8, maxLength: 128 }
        email: { type: string, format: email, maxLength: 254 }
    User:
      type: object
      additionalProperties: false
      properties:
        username: { type: string, readOnly: true }
        email: { type: string, format: email }
        phone: { type: string }
        admin: { type: boolean, readOnly: true }
    BookInput:
      type: object
      additionalProperties: false
      required: [title]
      properties:
        title: { type: string, minLength: 1, maxLength: 200 }
        secret_note: { type: string, maxLength: 2000 }
    BookSummary:
      type: object
      additionalProperties: false
      properties:
        book_id: { type: integer }
        title: { type: string }
    Book:
      type: object
      additionalProperties: false
      properties:
        book_id: { type: integer, readOnly: true }
        title: { type: string }
        secret_note: { type: string }
        owner: { type: string, readOnly: true }
`

export function shelfAuthYaml(): string {
  const id = (name: 'alice' | 'bob') => `  ${name}:
    roles: [user]
    login:
      path: /oauth/token
      form: { grant_type: password, username: ${name}, password: ${SHELF_PASSWORDS[name]} }
      tokenPointer: /access_token
      expiresInPointer: /expires_in
`
  return `identities:\n${id('alice')}${id('bob')}`
}

interface User {
  username: string
  password_hash: string
  email: string
  phone: string
  admin: boolean
}
interface Book {
  book_id: number
  title: string
  secret_note: string
  owner: string
}

class Abort extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? body.error ?? status))
  }
}

const hash = (pw: string) => createHmac('sha256', 'shelf-salt').update(pw).digest('hex')
const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url')

/** Catastrophic backtracking on "aaaa…!" (nested quantifiers): the flaw of the vulnerable twin. */
const EMAIL_EXPONENTIAL = /^([a-zA-Z0-9_.+-]+)*@[a-z0-9-]+\.[a-z]{2,}$/
const EMAIL_LINEAR = /^[^\s@]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,8}$/

export function createApp(opts: { secure: boolean }): FixtureApp {
  const secure = opts.secure
  const secret = secure ? randomBytes(32) : Buffer.from(SHELF_WEAK_SECRET)
  const users = new Map<string, User>()
  for (const [name, pw] of Object.entries(SHELF_PASSWORDS)) {
    users.set(name, {
      username: name,
      password_hash: hash(pw),
      email: `${name}@shelf.test`,
      phone: `+1-555-01${name.length}${name.charCodeAt(0) % 10}`,
      admin: name === 'root',
    })
  }
  let books: Book[] = [
    { book_id: 1, title: "Alice's diary", secret_note: 'the key is under the mat', owner: 'alice' },
    { book_id: 2, title: "Bob's ledger", secret_note: 'owes carol 20', owner: 'bob' },
  ]
  let nextBook = 3
  const failures = new Map<string, number[]>()
  const counters: Record<string, number> = { requests: 0, throttled: 0 }

  const sign = (claims: Record<string, unknown>) => {
    const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`
    return `${input}.${b64(createHmac('sha256', secret).update(input).digest())}`
  }
  const claimsOf = (req: IncomingMessage): Record<string, unknown> => {
    const m = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')
    if (!m) throw new Abort(401, { message: 'Missing token' })
    const parts = (m[1] as string).split('.')
    if (parts.length !== 3) throw new Abort(401, { message: 'Invalid token' })
    try {
      const head = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString()) as { alg?: string }
      const body = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString()) as Record<
        string,
        unknown
      >
      const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest()
      const got = Buffer.from(parts[2] as string, 'base64url')
      if (head.alg !== 'HS256' || got.length !== want.length || !timingSafeEqual(got, want)) throw new Error()
      if (typeof body.exp !== 'number' || body.exp * 1000 < Date.now()) throw new Error()
      return body
    } catch {
      throw new Abort(401, { message: 'Invalid token' })
    }
  }
  const caller = (req: IncomingMessage): User => {
    const u = users.get(String(claimsOf(req).sub))
    if (!u) throw new Abort(401, { message: 'Invalid token' })
    return u
  }
  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of req) {
      n += (c as Buffer).length
      if (n > 256 * 1024) throw new Abort(413, { message: 'Request Entity Too Large' })
      chunks.push(c as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }
  const jsonBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    if (!/application\/json/i.test(req.headers['content-type'] ?? ''))
      throw new Abort(415, { message: 'Unsupported Media Type' })
    try {
      const v = JSON.parse(await readBody(req)) as unknown
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
    } catch {
      // falls through
    }
    throw new Abort(400, {
      message: 'The browser (or proxy) sent a request that this server could not understand.',
    })
  }
  const userView = (u: User) => {
    const v: Record<string, unknown> = {
      username: u.username,
      email: u.email,
      phone: u.phone,
      admin: u.admin,
    }
    if (!secure) v.password_hash = u.password_hash
    return v
  }
  const bookFor = (id: string, who: User): Book => {
    const b = books.find((x) => x.book_id === Number(id))
    if (!b || (secure && b.owner !== who.username)) throw new Abort(404, { message: 'Book not found' })
    return b
  }
  const bookInput = (b: Record<string, unknown>) => {
    const title = b.title
    if (typeof title !== 'string' || title === '' || title.length > 200)
      throw new Abort(400, { message: 'title: 1 to 200 characters' })
    const note = b.secret_note ?? ''
    if (typeof note !== 'string' || note.length > 2000)
      throw new Abort(400, { message: 'secret_note: up to 2000' })
    return { title, secret_note: note }
  }

  type Handler = (
    req: IncomingMessage,
    p: Record<string, string>,
  ) => Promise<[number, unknown?, Record<string, string>?]>
  const routes: [string, RegExp, Handler][] = []
  const route = (method: string, pattern: string, h: Handler) =>
    routes.push([method, new RegExp(`^${pattern.replace(/<(\w+)>/g, '(?<$1>[^/]+)')}$`), h])

  route('POST', '/oauth/token', async (req) => {
    if (!/application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? ''))
      throw new Abort(400, { error: 'invalid_request', error_description: 'form body expected' })
    const f = new URLSearchParams(await readBody(req))
    if (f.get('grant_type') !== 'password') throw new Abort(400, { error: 'unsupported_grant_type' })
    const name = f.get('username') ?? ''
    const now = Date.now()
    const recent = (failures.get(name) ?? []).filter((t) => t > now - 60_000)
    if (secure && recent.length >= 5) {
      counters.throttled = (counters.throttled ?? 0) + 1
      throw new Abort(
        429,
        { error: 'slow_down', error_description: 'too many attempts' },
        { 'retry-after': '60' },
      )
    }
    const u = users.get(name)
    if (!u || u.password_hash !== hash(f.get('password') ?? '')) {
      if (failures.size > 10_000) failures.clear()
      failures.set(name, [...recent, now])
      const why = secure ? 'invalid username or password' : u ? 'wrong password' : 'unknown user'
      throw new Abort(400, { error: 'invalid_grant', error_description: why })
    }
    const iat = Math.floor(now / 1000)
    const token = sign({ sub: u.username, admin: u.admin, iat, exp: iat + 900 })
    return [
      200,
      { access_token: token, token_type: 'bearer', expires_in: 900 },
      { 'cache-control': 'no-store' },
    ]
  })
  route('GET', '/users/v1', async (req) => {
    caller(req)
    return [200, [...users.values()].map((u) => ({ username: u.username }))]
  })
  route('POST', '/users/v1/register', async (req) => {
    const b = await jsonBody(req)
    const username = b.username
    if (typeof username !== 'string' || !/^[a-z0-9_]{3,32}$/.test(username))
      throw new Abort(400, { message: 'username: 3 to 32 of a-z 0-9 _' })
    const email = b.email
    if (typeof email !== 'string') throw new Abort(400, { message: 'email is required' })
    if (secure ? email.length > 254 || !EMAIL_LINEAR.test(email) : !EMAIL_EXPONENTIAL.test(email))
      throw new Abort(400, { message: 'email is not valid' })
    if (typeof b.password !== 'string' || b.password.length < 8)
      throw new Abort(400, { message: 'password: 8+' })
    if (users.has(username)) throw new Abort(409, { message: 'User already exists' })
    if (users.size > 1000) throw new Abort(503, { message: 'full' })
    users.set(username, {
      username,
      password_hash: hash(b.password),
      email,
      phone: '',
      // The flaw (vulnerable twin): the body's "admin" is copied onto the account.
      admin: !secure && b.admin === true,
    })
    return [201, { message: 'User registered', username }]
  })
  route('GET', '/users/v1/me', async (req) => [200, userView(caller(req))])
  route('DELETE', '/users/v1/me', async (req) => {
    const me = caller(req)
    users.delete(me.username)
    books = books.filter((b) => b.owner !== me.username)
    return [204]
  })
  route('GET', '/users/v1/<username>', async (req, p) => {
    const me = caller(req)
    const u = users.get(p.username as string)
    if (!u) throw new Abort(404, { message: 'User not found' })
    if (secure && u !== me && !me.admin) throw new Abort(403, { message: 'Forbidden' })
    return [200, userView(u)]
  })
  route('DELETE', '/users/v1/<username>', async (req, p) => {
    if (claimsOf(req).admin !== true || !caller(req).admin) throw new Abort(403, { message: 'Forbidden' })
    if (!users.delete(p.username as string)) throw new Abort(404, { message: 'User not found' })
    return [204]
  })
  route('GET', '/books/v1', async (req) => {
    const me = caller(req)
    return [
      200,
      books.filter((b) => b.owner === me.username).map((b) => ({ book_id: b.book_id, title: b.title })),
    ]
  })
  route('POST', '/books/v1', async (req) => {
    const me = caller(req)
    const input = bookInput(await jsonBody(req))
    if (books.length > 5000) throw new Abort(503, { message: 'full' })
    const b: Book = { book_id: nextBook++, ...input, owner: me.username }
    books.push(b)
    return [201, undefined, { location: `/books/v1/${b.book_id}` }]
  })
  route('GET', '/books/v1/<book_id>', async (req, p) => [200, bookFor(p.book_id as string, caller(req))])
  route('PUT', '/books/v1/<book_id>', async (req, p) => {
    const b = bookFor(p.book_id as string, caller(req))
    Object.assign(b, bookInput(await jsonBody(req)))
    return [204]
  })
  route('DELETE', '/books/v1/<book_id>', async (req, p) => {
    const b = bookFor(p.book_id as string, caller(req))
    books = books.filter((x) => x !== b)
    return [204]
  })
  route('GET', '/admin/v1/stats', async (req) => {
    // Trusts the token's claim (safe only while tokens cannot be forged).
    if (claimsOf(req).admin !== true) throw new Abort(403, { message: 'Forbidden' })
    return [200, { users: users.size, books: books.length }]
  })
  route('GET', '/openapi.yaml', async () => [200, SHELF_SPEC, { 'content-type': 'application/yaml' }])
  if (!secure) {
    route('GET', '/internal/debug', async () => [
      200,
      {
        config: {
          SECRET_KEY: SHELF_WEAK_SECRET,
          DATABASE_URL: 'postgresql://shelf:shelfpass@db/shelf',
          DEBUG: true,
        },
      },
    ])
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    counters.requests = (counters.requests ?? 0) + 1
    const url = new URL(req.url ?? '/', 'http://shelf.invalid')
    const host = req.headers.host ?? ''
    const origin = req.headers.origin
    const headers: Record<string, string> = {
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    }
    // The flaw (vulnerable twin): "our" origins are those ending with our host.
    if (origin && (secure ? origin === `http://${host}` : origin.endsWith(host))) {
      headers['access-control-allow-origin'] = origin
      headers['access-control-allow-credentials'] = 'true'
      headers.vary = 'Origin'
    }
    const finish = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      const h: Record<string, string> = { ...headers, ...extra }
      h.server = !secure && status >= 400 ? 'Werkzeug/2.0.3 Python/3.9.7' : 'shelf'
      if (typeof body === 'string') {
        h['content-type'] ??= 'text/plain'
        res.writeHead(status, h).end(body)
      } else if (body === undefined) res.writeHead(status, h).end()
      else res.writeHead(status, { ...h, 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    if (req.method === 'OPTIONS') {
      finish(
        204,
        undefined,
        headers['access-control-allow-origin']
          ? {
              'access-control-allow-methods': 'GET, POST, PUT, DELETE',
              'access-control-allow-headers': 'authorization, content-type',
            }
          : {},
      )
      return
    }
    const path = url.pathname
    let pathMatched = false
    for (const [method, re, h] of routes) {
      const m = re.exec(path)
      if (!m) continue
      pathMatched = true
      if (method !== req.method) continue
      h(req, (m.groups ?? {}) as Record<string, string>)
        .then(([status, body, extra]) => finish(status, body, extra))
        .catch((e: unknown) => {
          if (e instanceof Abort) finish(e.status, e.body, e.headers)
          else finish(500, { message: 'Internal Server Error' })
        })
      return
    }
    req.resume()
    if (pathMatched) finish(405, { message: 'The method is not allowed for the requested URL.' })
    else finish(404, { message: 'The requested URL was not found on the server.' })
  }

  return {
    listener,
    state: () => ({
      users: [...users.values()].sort((a, b) => a.username.localeCompare(b.username)),
      books: [...books].sort((a, b) => a.book_id - b.book_id),
    }),
    counters: () => ({ ...counters }),
    spec: SHELF_SPEC,
    specExt: 'yaml',
    specPath: '/openapi.yaml',
    authYaml: shelfAuthYaml(),
  }
}
