/** One HTTP request on a fresh connection (no agent pooling), the whole answer as text. */
import http from 'node:http'

export interface Res {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

export interface RequestOptions {
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

export function request(url: string, opts: RequestOptions = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** GET `path` with `headers`: the short form the authentication tests use. */
export function get(url: string, path: string, headers: Record<string, string> = {}): Promise<Res> {
  return request(url, { path, headers })
}
