/**
 * Pipelined requests on one connection are handled one at a time, in order (as nginx does): a
 * request behind one that closes the connection (a framing error, a denial) never starts, and
 * nothing is forwarded that the client could not have meant as a separate request. The state
 * lives on the socket under symbols.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

const kBusy = Symbol('portcullis.busy')
const kClosing = Symbol('portcullis.closing')
const kQueue = Symbol('portcullis.queue')

export interface Queued<L> {
  req: IncomingMessage
  res: ServerResponse
  listener: L
}

type ConnState = IncomingMessage['socket'] & {
  [kBusy]?: boolean
  [kClosing]?: boolean
  [kQueue]?: Queued<unknown>[]
}

/**
 * Admits a request on its connection: 'start' when it may run now, 'queued' when an earlier
 * request on the connection is still running (it starts from `next`), 'dropped' when the
 * connection is closing (the response was destroyed).
 */
export function admit<L>(
  req: IncomingMessage,
  res: ServerResponse,
  listener: L,
): 'start' | 'queued' | 'dropped' {
  const socket = req.socket as ConnState
  if (socket[kClosing]) {
    res.destroy()
    return 'dropped'
  }
  if (socket[kBusy]) {
    // Busy means an earlier request on this socket created the queue.
    ;(socket[kQueue] as Queued<unknown>[]).push({ req, res, listener })
    return 'queued'
  }
  socket[kBusy] = true
  if (socket[kQueue] === undefined) {
    socket[kQueue] = []
    socket.once('close', dropQueued)
  }
  return 'start'
}

/**
 * The request finished: the next pipelined request on the connection, if it may run. When this
 * response ends the connection (not fully written, not keep-alive, socket gone, or marked
 * closing), what the client pipelined after it is dropped with the connection.
 */
export function next<L>(socket: IncomingMessage['socket'], res: ServerResponse): Queued<L> | undefined {
  const s = socket as ConnState
  s[kBusy] = false
  const queued = s[kQueue]?.shift()
  if (queued === undefined) return undefined
  if (s[kClosing] || !res.writableFinished || !res.shouldKeepAlive || s.destroyed) {
    s[kClosing] = true
    dropQueued.call(s)
    return undefined
  }
  return queued as Queued<L>
}

/** Marks the connection as ending after the current response (nothing queued on it will run). */
export function markClosing(socket: IncomingMessage['socket']): void {
  ;(socket as ConnState)[kClosing] = true
}

/** Pipelined requests that never started: their responses are dropped with the connection. */
function dropQueued(this: ConnState): void {
  const q = this[kQueue]
  if (!q || q.length === 0) return
  this[kQueue] = []
  for (const { res } of q) res.destroy()
  this.destroy()
}
