/**
 * Pieces shared by the clients that call an authorization server for each new token
 * (oauth2-introspection, userinfo-auth): reading a bounded JSON object answer, telling a timeout
 * from another failure, and dropping a body. Every message they produce is safe to log: it never
 * holds a token, a secret or the answer's content.
 */
import type { Readable } from 'node:stream'

/** Drops a response body; destroying an undici body emits an error nobody else would handle. */
export function discard(body: Readable): void {
  body.on('error', () => undefined)
  body.destroy()
}

/** `application/json` or any `application/*+json`, parameters ignored. */
export function isJsonMediaType(ct: string): boolean {
  const semi = ct.indexOf(';')
  const t = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase()
  return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'))
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/**
 * Why a call failed, from the error's code or class only (undici messages name the origin at
 * most, but a code is all an operator needs and cannot carry anything else).
 */
export function describeCallFailure(err: unknown, timedOut: boolean, timeoutMs: number): string {
  const e = err as { code?: unknown; name?: unknown } | undefined
  const what = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'error'
  if (timedOut || TIMEOUT_CODES.has(what)) {
    return `no answer within ${timeoutMs} ms (${timedOut ? 'deadline' : what})`
  }
  return `the endpoint could not be reached (${what})`
}

/**
 * Reads an answer body of at most `maxBytes` (checked against Content-Length first, then while
 * reading) and parses it as a JSON object. Errors: `fail(message)` for an oversized, invalid or
 * non-object body; `streamFailure(err)` when reading the body itself fails (a reset, the deadline).
 */
export async function readJsonObject(
  body: Readable,
  contentLength: unknown,
  maxBytes: number,
  fail: (message: string) => Error,
  streamFailure: (err: unknown) => Error,
): Promise<Record<string, unknown>> {
  const tooLarge = `the response is larger than ${maxBytes} bytes`
  if (Number(contentLength) > maxBytes) {
    discard(body)
    throw fail(tooLarge)
  }
  const chunks: Buffer[] = []
  let size = 0
  let over = false
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > maxBytes) {
        over = true
        discard(body)
        break
      }
      chunks.push(chunk)
    }
  } catch (err) {
    throw streamFailure(err)
  }
  if (over) throw fail(tooLarge)
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw fail('the response is not valid JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw fail('the response is not a JSON object')
  }
  return parsed as Record<string, unknown>
}
