/** The SSRF canary: a server on 127.0.0.1 handing out unique URLs and telling whether each was requested. */
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

interface CanaryHit {
  id: string
  hit: boolean
  waiters: (() => void)[]
}

export class Canary {
  private server: Server | undefined
  private base = ''
  private readonly tokens = new Map<string, CanaryHit>()

  async url(): Promise<{ url: string; wasHit(timeoutMs: number): Promise<boolean> }> {
    if (!this.server) {
      const server = createServer((req, res) => {
        const m = /^\/c\/([a-f0-9]{32})/.exec(req.url ?? '')
        const entry = m ? this.tokens.get(m[1] as string) : undefined
        if (entry && !entry.hit) {
          entry.hit = true
          for (const w of entry.waiters.splice(0)) w()
        }
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end('portcullis-canary')
      })
      server.maxConnections = 64
      server.requestTimeout = 5000
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      this.server = server
      this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    }
    if (this.tokens.size >= 10_000) throw new Error('too many canary URLs')
    const id = randomBytes(16).toString('hex')
    const entry: CanaryHit = { id, hit: false, waiters: [] }
    this.tokens.set(id, entry)
    return {
      url: `${this.base}/c/${id}`,
      wasHit: (timeoutMs: number) =>
        entry.hit
          ? Promise.resolve(true)
          : new Promise<boolean>((resolve) => {
              const t = setTimeout(() => resolve(entry.hit), timeoutMs)
              entry.waiters.push(() => {
                clearTimeout(t)
                resolve(true)
              })
            }),
    }
  }

  async close(): Promise<void> {
    const s = this.server
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
}
