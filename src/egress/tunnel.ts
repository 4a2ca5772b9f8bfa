/**
 * CONNECT tunnels through the egress proxy: the destination checked, the address checked at
 * connect time, and, where TLS is required, the tunnel must open with a ClientHello whose SNI is
 * the CONNECT host; idle timeout and a byte cap over both directions.
 */
import http from 'node:http'
import { isIP, type Socket, connect as netConnect } from 'node:net'
import type { AuditDecision } from '../audit/event.js'
import { MAX_HELLO_BYTES, parseClientHello } from './client-hello.js'
import type { Destination } from './destinations.js'
import type { EgressEnv } from './forward.js'
import { checkedAddress, EgressRefusal, normalizeHost, unmapped } from './rules.js'

const TARGET = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/

/** Starts the proxy listener. Throws a ConfigError for a bad config, before listening. */

/** Handles one CONNECT request to the proxy. */
export function handleConnect(env: EgressEnv, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  const { record } = env
  const r = env.rules()
  const started = performance.now()
  const client = unmapped(socket.remoteAddress)
  const m = TARGET.exec(req.url ?? '')
  let host = m ? normalizeHost((m[1] ?? m[2]) as string) : ''
  const port = m ? Number(m[3]) : 0
  let address: string | undefined
  let bytesIn = 0
  let bytesOut = 0
  let done = false
  let tlsMode = 'tunnel'
  const finish = (status: number | 'tunnel', decision: AuditDecision, reason?: string) => {
    if (done) return
    done = true
    record({
      method: 'CONNECT',
      host,
      port,
      address,
      status,
      decision,
      reason,
      client,
      bytesIn,
      bytesOut,
      started,
      tls: tlsMode,
    })
  }
  socket.on('error', () => undefined)
  const refuse = (status: number, reason: string) => {
    const text = http.STATUS_CODES[status] ?? 'Error'
    if (socket.writable)
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    socket.destroySoon()
    finish(status, 'deny', reason)
  }
  if (!r.clients.has(client)) {
    refuse(403, 'client not allowed')
    return
  }
  if (!m || port < 1 || port > 65535) {
    host = (req.url ?? '').slice(0, 253)
    refuse(400, 'bad CONNECT target')
    return
  }
  const dest = r.find(host, port)
  if (dest === undefined) {
    refuse(403, 'destination not allowed')
    return
  }
  if (dest.cfg.tls === 'originate') {
    refuse(403, 'CONNECT refused: the proxy originates TLS to this destination')
    return
  }
  tlsMode = dest.cfg.tls === 'required' ? 'required' : 'tunnel'
  socket.pause()
  checkedAddress(r, host).then(
    (addr) => {
      address = addr
      open(addr, dest)
    },
    (err: unknown) =>
      refuse(
        err instanceof EgressRefusal && err.code === 'GW_ERR_FORBIDDEN' ? 403 : 502,
        err instanceof EgressRefusal ? err.reason : String(err),
      ),
  )

  function open(addr: string, dest: Destination): void {
    const up = netConnect({ host: addr, port })
    let connected = false
    const timer = setTimeout(() => {
      up.destroy()
      refuse(504, 'connect timeout')
    }, r.cfg.connectTimeoutMs)
    up.once('error', (err: Error) => {
      clearTimeout(timer)
      if (!connected) {
        refuse(502, `upstream: ${(err as { code?: string }).code ?? err.message}`)
        return
      }
      socket.destroy()
      finish('tunnel', 'error', `upstream: ${(err as { code?: string }).code ?? err.message}`)
    })
    up.once('connect', () => {
      connected = true
      clearTimeout(timer)
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      const idle = () => {
        socket.destroy()
        up.destroy()
      }
      socket.setTimeout(r.cfg.idleTimeoutMs, idle)
      up.setTimeout(r.cfg.idleTimeoutMs, idle)
      const count = (n: number, dir: 'in' | 'out') => {
        if (dir === 'in') bytesIn += n
        else bytesOut += n
        if (bytesIn + bytesOut > r.cfg.maxTunnelBytes) {
          socket.destroy()
          up.destroy()
          finish('tunnel', 'error', 'tunnel over maxTunnelBytes (closed)')
        }
      }
      const pipeAll = (first: Buffer) => {
        if (first.length > 0) {
          count(first.length, 'out')
          up.write(first)
        }
        socket.on('data', (c: Buffer) => {
          count(c.length, 'out')
          if (!up.write(c)) {
            socket.pause()
            up.once('drain', () => socket.resume())
          }
        })
        up.on('data', (c: Buffer) => {
          count(c.length, 'in')
          if (!socket.write(c)) {
            up.pause()
            socket.once('drain', () => up.resume())
          }
        })
        socket.on('end', () => up.end())
        up.on('end', () => socket.end())
        const closed = () => {
          socket.destroy()
          up.destroy()
          finish('tunnel', 'allow')
        }
        socket.once('close', closed)
        up.once('close', closed)
        socket.resume()
      }
      if (dest.cfg.tls !== 'required') {
        pipeAll(head)
        return
      }
      // TLS required: the tunnel must open with a ClientHello for this host.
      let buf = head
      const onHello = (c: Buffer) => {
        buf = Buffer.concat([buf, c])
        decide()
      }
      const decide = () => {
        const h = parseClientHello(buf.subarray(0, MAX_HELLO_BYTES))
        if (h.kind === 'incomplete' && buf.length < MAX_HELLO_BYTES) return
        socket.off('data', onHello)
        if (h.kind !== 'hello') {
          socket.destroy()
          up.destroy()
          finish('tunnel', 'deny', 'TLS required: the tunnel did not start with a TLS ClientHello')
          return
        }
        if (h.sni !== undefined && h.sni !== host && isIP(host) === 0) {
          socket.destroy()
          up.destroy()
          finish('tunnel', 'deny', `TLS SNI ${h.sni.slice(0, 253)} is not the CONNECT host`)
          return
        }
        socket.pause()
        pipeAll(buf)
      }
      socket.on('data', onHello)
      socket.resume()
      if (buf.length > 0) decide()
    })
  }
}
