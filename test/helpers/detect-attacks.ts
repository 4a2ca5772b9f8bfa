/**
 * For the scripted attacks on a real gateway (test/detect-attacks.test.ts): requests from any
 * loopback address (each attack its own client IP, over keep-alive agents), the admin API's alerts
 * and bans, and a small application to put behind the gateway.
 *
 * The application (`startAttackApp`):
 * - `POST /login` `{"username","password","otp"?}` (JSON) or `username=…&password=…` (form): it
 *   normalizes the user name as most applications do (Unicode NFKC, trimmed, lower case) and
 *   answers 200 for the right password, else 401. When the gateway asks for a second factor
 *   (`x-portcullis-step-up: required`), the right password alone is not enough: `otp` must be the
 *   user's (401 `second factor required` otherwise).
 * - `GET /api/orders/{id}`, `/api/docs/{id}`: 200 for ids 1..1000, else 404 — it checks no owner
 *   at all (the gateway's object-ownership does, on the routes where it is configured).
 * - `GET /api/items?page=N`: a page of a list; anything else: 200.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Res {
  status: number
  body: string
  headers: http.IncomingHttpHeaders
}

const agents = new Map<string, http.Agent>()

function agentFor(ip: string): http.Agent {
  let a = agents.get(ip)
  if (a === undefined) {
    a = new http.Agent({ keepAlive: true, maxSockets: 16, localAddress: ip } as http.AgentOptions)
    agents.set(ip, a)
  }
  return a
}

/** Closes every agent's connections. */
export function closeAgents(): void {
  for (const a of agents.values()) a.destroy()
  agents.clear()
}

export interface SendOptions {
  /** The client address (a 127.x.y.z loopback address). */
  from?: string
  method?: string
  path: string
  /** A JSON body (sent with content-type application/json) or a raw string with `contentType`. */
  json?: unknown
  body?: string
  contentType?: string
  headers?: Record<string, string>
}

/** One request to `base` from `o.from`. */
export function send(base: string, o: SendOptions): Promise<Res> {
  const u = new URL(base)
  const body = o.json !== undefined ? JSON.stringify(o.json) : o.body
  const ct = o.json !== undefined ? 'application/json' : o.contentType
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: o.method ?? (body !== undefined ? 'POST' : 'GET'),
        path: o.path,
        agent: agentFor(o.from ?? '127.0.0.1'),
        headers: {
          ...(body !== undefined
            ? { 'content-type': ct ?? 'text/plain', 'content-length': String(Buffer.byteLength(body)) }
            : {}),
          ...o.headers,
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

export interface AlertItem {
  id: string
  detector: string
  subject: string
  action: string
  summary: string
  data: Record<string, unknown>
}

/** The admin API of a gateway: alerts and bans. */
export class Admin {
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  private get(path: string): Promise<Res> {
    return send(this.url, { path, headers: { authorization: `Bearer ${this.token}` } })
  }

  async alerts(): Promise<AlertItem[]> {
    const r = await this.get('/v1/alerts?limit=1000')
    return (JSON.parse(r.body) as { items: AlertItem[] }).items
  }

  async bans(): Promise<{ id: string; by: string }[]> {
    const r = await this.get('/v1/bans')
    return (JSON.parse(r.body) as { items: { id: string; by: string }[] }).items
  }

  /**
   * Waits (bounded) until an alert of `detector` for `subject` is listed: the log phase, where the
   * detectors run, comes after the answer. Resolves the alert, or undefined after `timeoutMs`.
   */
  async waitForAlert(detector: string, subject: string, timeoutMs = 5000): Promise<AlertItem | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = (await this.alerts()).find((x) => x.detector === detector && x.subject === subject)
      if (a !== undefined || Date.now() > deadline) return a
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** The passwords and second factors of the application's users (u0..u199 share one password). */
export const USERS: Record<string, { password: string; otp: string }> = {
  alice: { password: 'alice-correct-horse', otp: '135790' },
  bob: { password: 'bob-battery-staple', otp: '246801' },
  carol: { password: 'carol-s3cret-pass', otp: '112233' },
  dave: { password: 'dave-pass-w0rd', otp: '445566' },
}
const SHARED_PASSWORD = 'user-shared-pass'

function userOf(name: unknown): { password: string; otp: string } | undefined {
  if (typeof name !== 'string') return undefined
  const n = name.normalize('NFKC').trim().toLowerCase()
  if (USERS[n]) return USERS[n]
  return /^u[0-9]{1,3}$/.test(n) ? { password: SHARED_PASSWORD, otp: '000000' } : undefined
}

export interface AttackApp {
  url: string
  /** Login requests it answered, by status. */
  logins: Map<number, number>
  /** Login requests that came with the step-up header. */
  stepUps: number
  close(): void
}

/** Starts the application on 127.0.0.1 (see the module comment). */
export function startAttackApp(): Promise<AttackApp> {
  const logins = new Map<number, number>()
  const app: Partial<AttackApp> = { logins, stepUps: 0 }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const [path, query = ''] = (req.url ?? '/').split('?') as [string, string?]
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (path === '/login' && req.method === 'POST') {
        const text = Buffer.concat(chunks).toString('utf8')
        let form: Record<string, unknown> = {}
        try {
          form = (req.headers['content-type'] ?? '').includes('json')
            ? (JSON.parse(text) as Record<string, unknown>)
            : Object.fromEntries(new URLSearchParams(text))
        } catch {
          form = {}
        }
        const u = userOf(form.username)
        const stepUp = req.headers['x-portcullis-step-up'] === 'required'
        if (stepUp) app.stepUps = (app.stepUps ?? 0) + 1
        let status = 401
        let body: unknown = { error: 'bad credentials' }
        if (u !== undefined && form.password === u.password) {
          if (stepUp && form.otp !== u.otp) body = { error: 'second factor required' }
          else {
            status = 200
            body = { ok: true }
          }
        }
        logins.set(status, (logins.get(status) ?? 0) + 1)
        return json(status, body)
      }
      const m = /^\/api\/(orders|docs)\/([0-9]+)$/.exec(path)
      if (m) {
        const id = Number(m[2])
        return id >= 1 && id <= 1000 ? json(200, { id, kind: m[1] }) : json(404, { error: 'not found' })
      }
      if (path === '/api/items') return json(200, { page: new URLSearchParams(query).get('page'), items: [] })
      return json(200, { ok: true })
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      app.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      app.close = () => {
        server.closeAllConnections()
        server.close()
      }
      resolve(app as AttackApp)
    }),
  )
}
